"""The portfolio as Markdown: for a CI step summary or a wiki page.

Every value that comes from a history (project names, gate names, releases, paths) is
escaped: control characters are shown as escapes, HTML is escaped, and Markdown syntax is
backslashed, so a project called ``*[x](http://…)`` is shown as written, not as a link.
"""

from __future__ import annotations

import html
import re

from pytest_mlfunnel.portfolio import FunnelGroup, Portfolio, ProjectSummary
from pytest_mlfunnel.render.portfolio_terminal import days_text, percent

MAX_PROJECTS = 500
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md(value: object) -> str:
    """Inline text safe in a Markdown table cell."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(value))
    text = " ".join(text.split())
    return _MARKDOWN_SYNTAX.sub(r"\\\1", html.escape(text, quote=False))


def group_table(group: FunnelGroup) -> list[str]:
    lines = ["| # | gate | reached | from the gate before | median days to pass | "
             "stopped here | stalled here |",
             "|--:|------|--------:|---------------------:|--------------------:|"
             "-------------:|--------------|"]
    days = {p.name: p.days_in_stage for p in group.projects}
    for step in group.steps:
        median = (f"{days_text(step.median_days)} ({step.measured} measured)"
                  if step.measured else "–")
        stalled = ", ".join(f"{md(n)} ({days[n]} d)" for n in step.stalled_here[:20])
        if len(step.stalled_here) > 20:
            stalled += f" and {len(step.stalled_here) - 20} more"
        lines.append(f"| {step.index} | {md(step.gate)} | {step.reached} | "
                     f"{step.reached}/{step.previous} ({percent(step.reached, step.previous)})"
                     f" | {median} | {step.stopped_here} | {stalled} |")
    return lines


def project_line(project: ProjectSummary) -> str:
    status = []
    if project.stalled:
        status.append("‖ stalled")
    if project.fell_back:
        status.append(f"↘ fell back from {md(project.best)}")
    if project.through:
        status.append("✅ through")
    reached = f"{md(project.reached or 'none')} {project.stage}/{len(project.funnel)}"
    return (f"| {md(project.name)} | {reached} | {md(project.stopped_at or '–')} | "
            f"{project.since.isoformat()} | {project.days_in_stage} | "
            f"{md(project.best or 'none')} {project.best_stage}/{len(project.funnel)} | "
            f"{'; '.join(status)} |")


def render_portfolio_markdown(portfolio: Portfolio) -> str:
    projects = portfolio.projects
    stalled = sum(p.stalled for p in projects)
    plural = "s" if len(projects) != 1 else ""
    lines = [f"### ml funnel portfolio · {len(projects)} project{plural} · as of "
             f"{portfolio.as_of.isoformat()}", "",
             f"{stalled} stalled (no stage change for over {portfolio.stalled_after_days} "
             "days).", ""]
    for group in portfolio.groups:
        lines.append(f"**Funnel** {' → '.join(md(g) for g in group.gates)} · "
                     f"{len(group.projects)} projects · {group.through} through every gate")
        lines.append("")
        lines += group_table(group)
        lines.append("")
    for mismatch in portfolio.mismatches:
        lines.append(f"- mismatch: {md(mismatch)}")
    if portfolio.mismatches:
        lines.append("")
    lines += [f"<details><summary>{len(projects)} projects</summary>", "",
              "| project | reached | stopped at | since | days in stage | best | status |",
              "|---------|---------|------------|-------|--------------:|------|--------|"]
    lines += [project_line(p) for p in projects[:MAX_PROJECTS]]
    if len(projects) > MAX_PROJECTS:
        lines.append(f"| … and {len(projects) - MAX_PROJECTS} more | | | | | | |")
    lines += ["", "</details>", ""]
    if portfolio.problems:
        skipped = len(portfolio.problems)
        lines.append(f"<details><summary>{skipped} input{'s' if skipped != 1 else ''} "
                     "skipped</summary>\n")
        lines += [f"- {md(problem)}" for problem in portfolio.problems]
        lines += ["", "</details>", ""]
    return "\n".join(lines)

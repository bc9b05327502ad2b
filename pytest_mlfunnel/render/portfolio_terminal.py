"""The portfolio as plain text for a terminal: one table per funnel, then the projects."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_mlfunnel.portfolio import FunnelGroup, Portfolio, ProjectSummary
from pytest_mlfunnel.render.escape import one_line

BAR_WIDTH = 20
MAX_NAME = 40
MAX_STALLED_LISTED = 10


def clean(value: object, limit: int | None = None) -> str:
    """Text safe for a terminal: control characters shown as escapes, long text cut."""
    text = one_line(str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def days_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in right and number else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def stage_text(project: ProjectSummary) -> str:
    return f"{project.reached or 'none'} {project.stage}/{len(project.funnel)}"


def funnel_lines(group: FunnelGroup, stalled_after: int) -> list[str]:
    total = len(group.projects)
    plural = "s" if total != 1 else ""
    lines = [f"funnel: {' > '.join(clean(g) for g in group.gates) or '(no gates)'} "
             f"({total} project{plural})"]
    rows = [["#", "gate", "reached", "", "from previous", "median days to pass",
             "stopped here", "stalled here"]]
    for step in group.steps:
        filled = round(BAR_WIDTH * step.reached / total) if total else 0
        rows.append([
            str(step.index), clean(step.gate, MAX_NAME), str(step.reached),
            "█" * filled + "·" * (BAR_WIDTH - filled),
            f"{step.reached}/{step.previous} {percent(step.reached, step.previous):>4}",
            f"{days_text(step.median_days)} (n={step.measured})" if step.measured else "-",
            str(step.stopped_here), str(len(step.stalled_here)) if step.stalled_here else "-",
        ])
    lines += table(rows, right=(0, 2, 4, 5, 6, 7))
    lines.append(f"through every gate: {group.through} of {total}")
    stalled_steps = [s for s in group.steps if s.stalled_here]
    if stalled_steps:
        lines.append(f"stalled (no stage change for over {stalled_after} days), by the gate "
                     "they have not passed:")
        days = {p.name: p.days_in_stage for p in group.projects}
        for step in stalled_steps:
            shown = ", ".join(f"{clean(n, MAX_NAME)} {days[n]} d"
                              for n in step.stalled_here[:MAX_STALLED_LISTED])
            more = len(step.stalled_here) - MAX_STALLED_LISTED
            if more > 0:
                shown += f" and {more} more"
            lines.append(f"  {clean(step.gate, MAX_NAME)} ({len(step.stalled_here)}): {shown}")
    return lines


def project_rows(projects: Sequence[ProjectSummary]) -> list[str]:
    rows = [["project", "reached", "stopped at", "since", "days in stage", "best", "releases",
             "status"]]
    for project in projects:
        status = []
        if project.stalled:
            status.append("STALLED")
        if project.fell_back:
            status.append("fell back")
        if project.through:
            status.append("through")
        best = f"{project.best or 'none'} {project.best_stage}/{len(project.funnel)}"
        rows.append([clean(project.name, MAX_NAME), clean(stage_text(project)),
                     clean(project.stopped_at or "-", MAX_NAME), project.since.isoformat(),
                     str(project.days_in_stage), clean(best), str(project.releases),
                     ", ".join(status)])
    return table(rows, right=(4, 6))


def render_portfolio_terminal(portfolio: Portfolio, encoding: str = "utf-8") -> list[str]:
    projects = portfolio.projects
    funnels = len(portfolio.groups)
    head = (f"ml funnel portfolio · {len(projects)} project{'s' if len(projects) != 1 else ''}"
            f" · {funnels} funnel{'s' if funnels != 1 else ''} · as of "
            f"{portfolio.as_of.isoformat()} · stalled after {portfolio.stalled_after_days} days")
    lines = [head, ""]
    for group in portfolio.groups:
        lines += funnel_lines(group, portfolio.stalled_after_days)
        lines.append("")
    for mismatch in portfolio.mismatches:
        lines.append(f"mismatch: {clean(mismatch)}")
    if portfolio.mismatches:
        lines.append("")
    lines += project_rows(projects)
    read = (f"read {portfolio.entries} release{'s' if portfolio.entries != 1 else ''} from "
            f"{portfolio.files} file{'s' if portfolio.files != 1 else ''}")
    if portfolio.lines_skipped:
        read += f", skipped {portfolio.lines_skipped}"
    if portfolio.later_than_as_of:
        read += f", left out {portfolio.later_than_as_of} recorded after the as-of date"
    lines += ["", read]
    return [_encodable(line, encoding) for line in lines]


def _encodable(line: str, encoding: str) -> str:
    try:
        line.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        line = line.replace("█", "#").replace("·", "-").replace("…", "...")
        line = line.encode(encoding, "replace").decode(encoding, "replace")
    return line

"""A ``ReportComparison`` as terminal text and as Markdown for a pull-request comment.

Every value that came from a report (ids, messages, observed values, release names) is
escaped: in Markdown a ``|`` cannot end a table cell early and ``![x](y)`` shows as text, not
as an image; in both, control characters are shown as ``\\x1b``-style escapes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from pytest_mlfunnel.compare import CriterionChange, ReportComparison, shown
from pytest_mlfunnel.render.escape import controls

MAX_LISTED = 50
#: Characters that start inline Markdown (emphasis, code, links, images, tables); a
#: backslash before any of them makes it text. ``<`` and ``&`` are HTML-escaped instead.
_MARKDOWN_RE = re.compile(r"([\\`*_\[\]!|~])")
GATE_WORDS = {"passed": "passed", "warned": "warned", "failed": "FAILED", "empty": "empty",
              "not run": "not run"}


def plain(value: object) -> str:
    """One line of terminal text: control characters (bidirectional overrides and lone
    surrogates too) escaped, whitespace runs collapsed."""
    return " ".join(controls(str(value).replace("\t", " ")).split())


def md(value: object) -> str:
    """Markdown-inert text fit for a table cell."""
    text = _MARKDOWN_RE.sub(r"\\\1", plain(value))
    return html.escape(text, quote=False)


def _word(status: str | None) -> str:
    """A gate's status as the terminal summary words it; ``absent`` when not in the report."""
    return "absent" if status is None else GATE_WORDS.get(status, status)


def _criterion_word(status: str | None) -> str:
    return "absent" if status is None else status


def _arrow(delta: int) -> str:
    if delta > 0:
        return f"▲ {delta} gate{'s' if delta != 1 else ''} further"
    if delta < 0:
        return f"▼ {-delta} gate{'s' if delta != -1 else ''} lower"
    return "unchanged"


def summary_line(comparison: ReportComparison) -> str:
    reasons = comparison.regressions
    if reasons:
        return "HEAD is worse: " + "; ".join(reasons)
    if comparison.stage_delta > 0 or (comparison.newly_passing and not comparison.newly_failing):
        return "HEAD is better"
    if comparison.unchanged:
        return "no change"
    return "HEAD is not worse"


# ---------------------------------------------------------------------- terminal
def render_text(comparison: ReportComparison) -> str:
    base, head = comparison.base, comparison.head
    lines = [f"ml funnel compare: {plain(base.label)} -> {plain(head.label)}",
             f"stage reached: {plain(base.stage_text)} -> {plain(head.stage_text)} "
             f"({_arrow(comparison.stage_delta)})"]
    lines += [f"note: {note}" for note in _notes(comparison)]
    if comparison.gates:
        lines.append("gates whose status changed:")
        width = max(len(plain(g.name)) for g in comparison.gates)
        for gate in comparison.gates:
            lines.append(f"  {gate.index:>2} {plain(gate.name):<{width}}  {_word(gate.base)} -> "
                         f"{_word(gate.head)}")
    for title, changes in _sections(comparison):
        lines.append(f"{title} ({len(changes)}):")
        for change in changes[:MAX_LISTED]:
            lines.append(f"  {plain(change.id)}: {_criterion_word(change.base_status)} -> "
                         f"{_criterion_word(change.head_status)}, observed "
                         f"{plain(shown(change.base_observed))} -> "
                         f"{plain(shown(change.head_observed))}"
                         + (f", expected {plain(change.expected)}" if change.expected else ""))
            if change.message and change.head_status is not None and change in (
                    comparison.newly_failing):
                lines.append(f"      {plain(change.message)}")
        if len(changes) > MAX_LISTED:
            lines.append(f"  … and {len(changes) - MAX_LISTED} more")
    if comparison.added:
        lines.append(f"{comparison.added} new criteri{'on' if comparison.added == 1 else 'a'} "
                     "not failing")
    lines.append(summary_line(comparison))
    return "\n".join(lines) + "\n"


def _sections(comparison: ReportComparison) -> list[tuple[str, list[CriterionChange]]]:
    sections = [("newly failing", comparison.newly_failing),
                ("newly passing", comparison.newly_passing),
                ("other status changes", comparison.other_changes),
                ("no longer in HEAD", comparison.removed)]
    return [(title, changes) for title, changes in sections if changes]


def _notes(comparison: ReportComparison) -> list[str]:
    notes = []
    for name, side in (("BASE", comparison.base), ("HEAD", comparison.head)):
        if side.partial:
            notes.append(f"{name} was a partial run (criteria deselected)")
    if comparison.base.funnel != comparison.head.funnel:
        notes.append("the funnels differ: " + " > ".join(comparison.base.funnel) + " vs "
                     + " > ".join(comparison.head.funnel))
    return notes


# ---------------------------------------------------------------------- markdown
def render_markdown(comparison: ReportComparison) -> str:
    base, head = comparison.base, comparison.head
    delta = comparison.stage_delta
    lines = [f"### ml funnel · {md(base.label)} → {md(head.label)}", "",
             f"**{md(summary_line(comparison))}**", "",
             "| | base | head |", "|---|---|---|",
             f"| stage reached | {md(base.stage_text)} | {md(head.stage_text)}"
             f"{' ' + _arrow(delta) if delta else ''} |",
             f"| verdict | {md(base.verdict)} | {md(head.verdict)} |"]
    for note in _notes(comparison):
        lines += ["", f"> {md(note)}"]
    if comparison.gates:
        lines += ["", "#### Gates whose status changed", "",
                  "| # | gate | base | head |", "|--:|------|------|------|"]
        for gate in comparison.gates:
            lines.append(f"| {gate.index} | {md(gate.name)} | {md(_word(gate.base))} | "
                         f"{md(_word(gate.head))} |")
    for title, changes in _sections(comparison):
        lines += ["", f"#### {title[0].upper()}{title[1:]} ({len(changes)})", ""]
        lines += _criteria_table(changes, with_message=changes is comparison.newly_failing)
    if comparison.added:
        lines += ["", f"{comparison.added} new criteri"
                      f"{'on' if comparison.added == 1 else 'a'} not failing."]
    if comparison.unchanged:
        lines += ["", "No gate or criterion changed status."]
    return "\n".join(lines) + "\n"


def _criteria_table(changes: Sequence[CriterionChange], with_message: bool) -> list[str]:
    header = "| criterion | base | head | observed (base) | observed (head) | expected |"
    rule = "|-----------|------|------|-----------------|-----------------|----------|"
    if with_message:
        header += " message |"
        rule += "---------|"
    rows = [header, rule]
    for change in changes[:MAX_LISTED]:
        config_file, _, rest = change.id.partition("::")
        key = rest if config_file.endswith(".toml") and rest else change.id
        row = (f"| {md(key)} | {md(_criterion_word(change.base_status))} | "
               f"{md(_criterion_word(change.head_status))} | {md(shown(change.base_observed))} | "
               f"{md(shown(change.head_observed))} | {md(change.expected or '')} |")
        if with_message:
            row += f" {md(change.message)} |"
        rows.append(row)
    if len(changes) > MAX_LISTED:
        rows.append(f"| … and {len(changes) - MAX_LISTED} more |" + " |" * (
            rule.count("|") - 2))
    return rows

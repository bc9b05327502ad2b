"""The ``ml funnel`` terminal section: one narrowing row per gate, then the verdict line."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from pytest_mlfunnel.funnel import NOT_PASSED, CriterionResult, GateResult
from pytest_mlfunnel.history import compare
from pytest_mlfunnel.render.escape import one_line
from pytest_mlfunnel.report import Report
from pytest_mlfunnel.secrets import redact

STATUS_WORDS = {
    "passed": "passed",
    "warned": "warned",
    "failed": "FAILED",
    "empty": "empty",
    "not run": "not run",
}
_MARKUP: dict[str, dict[str, bool]] = {
    "passed": {"green": True},
    "warned": {"yellow": True},
    "failed": {"red": True, "bold": True},
    "empty": {},
    "not run": {},
}
_BAR_WIDTH = 18
_MAX_NARROWING = 7  # one column a side per gate for the 8 default gates
#: Criteria listed under a gate before ``... and N more``.
MAX_LISTED = 10
LISTED = ("failed", "error", "warned")
_INDENT = "      "
_LISTED_MARKUP: dict[str, dict[str, bool]] = {
    "failed": {"red": True}, "error": {"red": True}, "warned": {"yellow": True},
}


def _bars(encoding: str) -> tuple[str, str, str]:
    try:
        "█▓░".encode(encoding)
        return "█", "▓", "░"
    except (UnicodeEncodeError, LookupError):
        return "#", "x", "."


def gate_row(index: int, count: int, gate: GateResult, reached: int, width: int,
             encoding: str = "utf-8", quiet: bool = False) -> str:
    """The gate's bar, name, status and counts; ``quiet`` adds its first failure, one line."""
    full, failed, empty = _bars(encoding)
    steps = min(count - 1, _MAX_NARROWING)
    narrowing = 0 if count <= 1 else round(steps * (index - 1) / (count - 1))
    size = _BAR_WIDTH - 2 * narrowing
    char = full if index <= reached else failed if gate.status == "failed" else empty
    bar = (" " * narrowing + char * size).ljust(_BAR_WIDTH)
    word = STATUS_WORDS[gate.status]
    counts = f"{gate.passed}/{gate.total}"
    row = f"{index:>2} {bar} {gate.name:<14} {word:<8} {counts:>7}"
    first = gate.first_failure
    if quiet and gate.status == "failed" and first is not None:
        words = " ".join((first.message or f"{first.check}: {first.status}").split())
        row += "  " + _shorten(words, max(20, width - len(row) - 2))
    return row


def _shorten(text: str, room: int) -> str:
    """``text`` within ``room`` columns, cut at a word boundary and marked with ``…``."""
    if len(text) <= room:
        return text
    cut = text[: room - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


@dataclass
class _Entry:
    """One listed line under a gate: a criterion, or one cause shared by several."""

    head: str
    status: str
    criteria: int


def _short_id(criterion: CriterionResult, config_file: str) -> str:
    prefix = f"{config_file}::"
    return criterion.id[len(prefix):] if criterion.id.startswith(prefix) else criterion.id


def listed_entries(gate: GateResult, config_file: str) -> list[_Entry]:
    """The failed, error and warned criteria of a gate; one entry per shared cause."""
    entries: list[_Entry] = []
    by_cause: dict[str, _Entry] = {}
    for criterion in gate.criteria:
        if criterion.status not in LISTED:
            continue
        cause = criterion.extra.get("cause") if isinstance(criterion.extra, dict) else None
        if isinstance(cause, str) and cause:
            entry = by_cause.get(cause)
            if entry is None:
                entry = by_cause[cause] = _Entry(cause, criterion.status, 0)
                entries.append(entry)
            entry.criteria += 1
            if criterion.status in NOT_PASSED:
                entry.status = criterion.status
            continue
        message = " ".join(criterion.message.split()) or criterion.status
        entries.append(_Entry(f"{_short_id(criterion, config_file)}: {message}",
                              criterion.status, 1))
    for cause, entry in by_cause.items():
        entry.head = (f"{cause} -- {entry.criteria} criteri"
                      f"{'on' if entry.criteria == 1 else 'a'}")
    return entries


def failure_lines(gate: GateResult, config_file: str, width: int,
                  limit: int = MAX_LISTED) -> list[tuple[str, str]]:
    """(text, status) lines listed under a gate, wrapped to ``width`` at word boundaries."""
    entries = listed_entries(gate, config_file)
    lines: list[tuple[str, str]] = []
    for entry in entries[:limit]:
        wrapped = textwrap.wrap(entry.head, width=max(width - 1, 40), initial_indent=_INDENT,
                                subsequent_indent=_INDENT + "  ", break_long_words=False,
                                break_on_hyphens=False)
        lines.extend((text, entry.status) for text in wrapped)
    more = sum(entry.criteria for entry in entries[limit:])
    if more:
        lines.append((f"{_INDENT}... and {more} more (--funnel-html for all)", "failed"))
    return lines


def evidence_line(report: Report) -> str:
    """``evidence: 41 measured · 9 attested`` over the criteria that ran."""
    counts: dict[str, int] = {}
    for gate in report.gates:
        for criterion in gate.criteria:
            if criterion.status != "skipped":
                counts[criterion.evidence] = counts.get(criterion.evidence, 0) + 1
    if not counts:
        return ""
    parts = [f"{counts.pop(kind, 0)} {kind}" for kind in ("measured", "attested")]
    parts += [f"{n} {kind}" for kind, n in sorted(counts.items())]
    return "evidence: " + " · ".join(parts)


def _encodable(text: str, encoding: str) -> str:
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.encode(encoding, "replace").decode(encoding)
    return text


def render_terminal(report: Report, width: int = 80, encoding: str = "utf-8",
                    quiet: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """The ``ml funnel`` section as (line, markup) pairs.

    Under each gate that is not passed, its failed, error and warned criteria as
    ``id: message`` (``quiet``: only the gate row, with its first failure on the same line).
    """
    verdict = report.verdict
    lines: list[tuple[str, dict[str, Any]]] = []
    count = len(report.gates)
    for index, gate in enumerate(report.gates, start=1):
        text = gate_row(index, count, gate, verdict.stage, width, encoding, quiet)
        lines.append((_encodable(text, encoding), dict(_MARKUP[gate.status])))
        if quiet or gate.status == "passed":
            continue
        for text, status in failure_lines(gate, report.config_file, width):
            lines.append((_encodable(text, encoding), dict(_LISTED_MARKUP[status])))
    line = verdict.line()
    try:
        line.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        line = line.replace("·", "-")
    good = verdict.ok or verdict.partial or (verdict.required.report_only
                                            and not verdict.regressed)
    lines.append((line, {"green": good, "red": not good, "bold": True}))
    for reason in verdict.reasons:
        lines.append((f"  {reason}", {}))
    evidence = evidence_line(report)
    if evidence:
        lines.append((evidence, {}))
    if report.previous is not None:
        comparison = compare(report.to_dict(), report.previous)
        down = comparison.change < 0
        lines.append((comparison.line(), {"red": down, "green": comparison.change > 0}))
        failing = comparison.failing_line()
        if failing is not None:
            lines.append((f"  {failing}", {"red": True}))
    for note in report.notes:
        lines.append((f"  note: {note}", {"yellow": True}))
    # each is one line: a newline in a release name or a note would start a line of its own
    return [(one_line(redact(text)), markup) for text, markup in lines]

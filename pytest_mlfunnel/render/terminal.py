"""The ``ml funnel`` terminal section: one narrowing row per gate, then the verdict line."""

from __future__ import annotations

from typing import Any

from pytest_mlfunnel.funnel import GateResult
from pytest_mlfunnel.history import compare
from pytest_mlfunnel.report import Report

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


def _bars(encoding: str) -> tuple[str, str, str]:
    try:
        "█▓░".encode(encoding)
        return "█", "▓", "░"
    except (UnicodeEncodeError, LookupError):
        return "#", "x", "."


def gate_row(index: int, count: int, gate: GateResult, reached: int, width: int,
             encoding: str = "utf-8") -> str:
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
    if gate.status == "failed" and first is not None:
        words = " ".join((first.message or f"{first.check}: {first.status}").split())
        if len(row) + 2 + len(words) <= width:
            row += f"  {words}"
        else:
            room = max(30, width - 6)
            if len(words) > room:
                words = words[: room - 1] + "…"
            row += f"\n      {words}"
    return row


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


def render_terminal(report: Report, width: int = 80, encoding: str = "utf-8"
                    ) -> list[tuple[str, dict[str, Any]]]:
    verdict = report.verdict
    lines: list[tuple[str, dict[str, Any]]] = []
    count = len(report.gates)
    for index, gate in enumerate(report.gates, start=1):
        text = gate_row(index, count, gate, verdict.stage, width, encoding)
        try:
            text.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            text = text.encode(encoding, "replace").decode(encoding)
        lines.append((text, dict(_MARKUP[gate.status])))
    line = verdict.line()
    try:
        line.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        line = line.replace("·", "-")
    good = verdict.ok or verdict.partial or (verdict.required == "none"
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
    return lines

"""The funnel as a Markdown table, for GitHub's job summary (``GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_mlfunnel.history import compare, count
from pytest_mlfunnel.render.escape import markdown, markdown_code

if TYPE_CHECKING:
    from pytest_mlfunnel.report import Report

#: A symbol for the eye and a word for everyone else (screen readers, no colour).
STATUS_CELLS = {
    "passed": "✅ passed",
    "warned": "⚠️ warned",
    "failed": "❌ FAILED",
    "empty": "⬜ empty",
    "not run": "➖ not run",
}
CRITERION_CELLS = {
    "passed": "✅ passed",
    "failed": "❌ failed",
    "error": "❌ error",
    "warned": "⚠️ warned",
    "waived": "⚠️ waived",
    "skipped": "➖ skipped",
}
MAX_LISTED = 50


def cell(value: Any) -> str:
    """Table-safe text that renders as itself: Markdown, HTML, pipes, newlines and control
    characters of values and names escaped (the one place this renderer escapes)."""
    if value is None:
        return ""
    return markdown(str(value))


def render_markdown(report: Mapping[str, Any], previous: Mapping[str, Any] | None = None
                    ) -> str:
    release = f" {cell(report.get('release'))}" if report.get("release") else ""
    lines = [f"### ml funnel · {cell(report.get('project'))}{release}", ""]
    lines.append(f"**{cell(report.get('verdict'))}**")
    lines.append("")
    for reason in report.get("reasons") or ():
        lines.append(f"- {cell(reason)}")
    if previous is not None:
        comparison = compare(report, previous)
        lines.append(f"- {cell(comparison.line())}")
        failing = comparison.failing_line()
        if failing:
            lines.append(f"- {cell(failing)}")
    if lines[-1]:
        lines.append("")
    stage = count(report.get("stage"))
    lines += ["| # | gate | status | passed | first failure |",
              "|--:|------|--------|-------:|---------------|"]
    for index, gate in enumerate(report.get("gates") or (), start=1):
        first = next((c for c in gate.get("criteria") or ()
                      if c.get("status") in ("failed", "error")), None)
        failure = ""
        if first is not None:
            failure = first.get("message") or f"{first.get('check')}: {first.get('status')}"
        name = cell(gate.get("name"))
        if index == stage:
            name = f"**{name}** ◀ reached"
        lines.append(f"| {index} | {name} | {STATUS_CELLS.get(gate.get('status', ''), '')} | "
                     f"{count(gate.get('passed'))}/{count(gate.get('total'))} | {cell(failure)} |")
    not_passed = [c for gate in report.get("gates") or ()
                  for c in gate.get("criteria") or () if c.get("status") != "passed"]
    if not_passed:
        lines += ["", f"<details><summary>{len(not_passed)} criteria not passed</summary>", "",
                  "| criterion | status | evidence | observed | expected | message |",
                  "|-----------|--------|----------|----------|----------|---------|"]
        for criterion in not_passed[:MAX_LISTED]:
            key = str(criterion.get("id", "")).partition("::")[2] or criterion.get("id")
            key = markdown_code(str(key))
            lines.append(
                f"| {key} | {CRITERION_CELLS.get(criterion.get('status', ''), '')} | "
                f"{cell(criterion.get('evidence'))} | {cell(criterion.get('observed'))} | "
                f"{cell(criterion.get('expected'))} | {cell(criterion.get('message'))} |")
        if len(not_passed) > MAX_LISTED:
            lines.append(f"| … and {len(not_passed) - MAX_LISTED} more | | | | | |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def append_step_summary(report: Report) -> list[str]:
    """Append the table to ``$GITHUB_STEP_SUMMARY`` when set; notes on failure."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return []
    text = render_markdown(report.to_dict(), report.previous)
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    try:
        # opened without blocking: a named pipe nothing reads would make open() wait forever
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | nonblocking, 0o644)
    except OSError as exc:
        reason = ("a named pipe that nothing reads" if exc.errno == errno.ENXIO
                  else exc.strerror or exc)
        return [f"could not append to GITHUB_STEP_SUMMARY ({target}): {reason}"]
    try:
        if nonblocking:
            os.set_blocking(fd, True)  # the write itself may wait for a reader that is there
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            fd = -1
            handle.write(text + "\n")
    except OSError as exc:
        return [f"could not append to GITHUB_STEP_SUMMARY ({target}): {exc.strerror or exc}"]
    finally:
        if fd >= 0:
            os.close(fd)
    return []

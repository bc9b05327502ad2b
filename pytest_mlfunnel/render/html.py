"""A self-contained HTML report: the funnel as inline SVG, every criterion, the history chart.

One file, no scripts, no network: styles are inline, pictures are inline SVG, and a
Content-Security-Policy forbids every fetch. Status is always written as a word and drawn
as a pattern as well as a colour, so the page reads in greyscale and on paper. Every value
that comes from the user's data or config is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlfunnel.funnel import GATE_QUESTIONS
from pytest_mlfunnel.history import compare, count, criterion_key, series
from pytest_mlfunnel.render.escape import controls

if TYPE_CHECKING:
    from pytest_mlfunnel.report import Report

# status -> (fill, pattern id or "", symbol, word)
GATE_LOOK: dict[str, tuple[str, str, str, str]] = {
    "passed": ("#a5d6a7", "", "✓", "passed"),
    "warned": ("#ffe082", "pat-dots", "!", "warned"),
    "failed": ("#ef9a9a", "pat-hatch", "✗", "FAILED"),
    "empty": ("#ffffff", "", "○", "empty"),
    "not run": ("#e0e0e0", "pat-cross", "–", "not run"),
}
CRITERION_LOOK: dict[str, tuple[str, str]] = {
    "passed": ("✓", "passed"),
    "failed": ("✗", "failed"),
    "error": ("✗", "error"),
    "warned": ("!", "warned"),
    "waived": ("!", "waived"),
    "skipped": ("–", "skipped"),
}
_MAX_VALUE_CHARS = 300
_CHART_POINTS = 30
#: Releases in the page's table: a history of years of nightly runs would make a page of tens
#: of megabytes that a browser struggles to open; ``mlfunnel history`` lists every one.
_TABLE_ROWS = 200


def esc(value: Any) -> str:
    """HTML-escaped, control characters written visibly (``\\x1b``) as the terminal shows them."""
    return escape(controls("" if value is None else str(value)), quote=True)


def breakable(key: str) -> str:
    """An escaped criterion key that wraps after ``::`` rather than mid-word."""
    return esc(key).replace("::", "::<wbr>")


def format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(", ", ": "), default=str)
    else:
        text = str(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    return text


# ---------------------------------------------------------------------- the funnel picture
_PATTERNS = """<defs>
<pattern id="pat-hatch" width="8" height="8" patternUnits="userSpaceOnUse" \
patternTransform="rotate(45)"><rect width="3" height="8" fill="#b71c1c" fill-opacity=".35"/>\
</pattern>
<pattern id="pat-dots" width="8" height="8" patternUnits="userSpaceOnUse">\
<circle cx="4" cy="4" r="1.6" fill="#8d6e00" fill-opacity=".55"/></pattern>
<pattern id="pat-cross" width="8" height="8" patternUnits="userSpaceOnUse">\
<path d="M0 0L8 8M8 0L0 8" stroke="#616161" stroke-opacity=".45"/></pattern>
</defs>"""


def funnel_svg(report: Mapping[str, Any]) -> str:
    gates = list(report.get("gates") or ())
    bands = max(len(gates), 1)
    stage = count(report.get("stage"))
    required = report.get("required")
    names = [g.get("name") for g in gates]
    top_width, bottom_width, centre = 600.0, 270.0, 320.0
    band, gap, top = 44.0, 6.0, 12.0
    height = top + bands * (band + gap) + 12

    def width_at(i: int) -> float:
        return top_width - (top_width - bottom_width) * i / bands

    parts = [f'<svg id="funnel" class="funnel" viewBox="0 0 900 {height:.0f}" role="img" '
             f'aria-labelledby="funnel-title funnel-desc" xmlns="http://www.w3.org/2000/svg">',
             '<title id="funnel-title">The funnel</title>',
             f'<desc id="funnel-desc">{esc(report.get("verdict"))}</desc>', _PATTERNS]
    for i, gate in enumerate(gates):
        status = str(gate.get("status"))
        fill, pattern, symbol, word = GATE_LOOK.get(status, GATE_LOOK["not run"])
        y = top + i * (band + gap)
        w1, w2 = width_at(i), width_at(i + 1)
        shape = (f"M{centre - w1 / 2:.1f} {y:.1f}L{centre + w1 / 2:.1f} {y:.1f}"
                 f"L{centre + w2 / 2:.1f} {y + band:.1f}L{centre - w2 / 2:.1f} {y + band:.1f}Z")
        name = str(gate.get("name"))
        counts = f"{count(gate.get('passed'))}/{count(gate.get('total'))}"
        reached = " (reached)" if i < stage else ""
        stroke = 'stroke="#616161" stroke-dasharray="5 4"' if status == "empty" else (
            'stroke="#424242"')
        parts.append(
            f'<a href="#gate-{esc(name)}"><g class="band" data-gate="{esc(name)}" '
            f'data-status="{esc(status)}">'
            f"<title>{i + 1} {esc(name)}: {esc(word)}, {counts} passed{reached}</title>"
            f'<path d="{shape}" fill="{fill}" {stroke} stroke-width="1.2"/>'
            + (f'<path d="{shape}" fill="url(#{pattern})"/>' if pattern else "")
            + f'<text x="{centre:.1f}" y="{y + band / 2 + 5:.1f}" text-anchor="middle">'
            f'<tspan class="num">{i + 1}</tspan> <tspan class="name">{esc(name)}</tspan>'
            f" · {symbol} {esc(word)} · {counts}</text></g></a>")
    # Markers on the right: where the funnel stops, and where it must reach.
    marker_x = centre + top_width / 2 + 10
    stage_y = top + stage * (band + gap) - gap / 2 if stage else top - 4
    reached_name = names[stage - 1] if stage else "none"
    parts.append(
        f'<g class="marker reached"><line x1="{centre - width_at(stage) / 2 - 8:.1f}" '
        f'y1="{stage_y:.1f}" x2="{marker_x + 8:.1f}" y2="{stage_y:.1f}" stroke="#1a237e" '
        f'stroke-width="3"/><text x="{marker_x + 12:.1f}" y="{stage_y + 4:.1f}">'
        f"◀ stage reached: {esc(reached_name)} ({stage}/{len(gates)})</text></g>")
    if required in names:
        index = names.index(required) + 1
        required_y = top + index * (band + gap) - gap / 2
        text_y = required_y + (16 if index == stage else 4)
        parts.append(
            f'<g class="marker required"><line x1="{centre - width_at(index) / 2 - 8:.1f}" '
            f'y1="{required_y:.1f}" x2="{marker_x + 8:.1f}" y2="{required_y:.1f}" '
            f'stroke="#000" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{marker_x + 12:.1f}" y="{text_y:.1f}">- - required: {esc(required)}'
            f"</text></g>")
    parts.append("</svg>")
    return "\n".join(parts)


# ---------------------------------------------------------------------- the history chart
def history_svg(points: Sequence[Mapping[str, Any]], funnel: Sequence[str],
                required: str | None, current_label: str | None) -> str:
    points = list(points)[-_CHART_POINTS:]
    levels = len(funnel)
    left, right, top, row = 150.0, 30.0, 20.0, 30.0
    plot_height = row * levels
    width = 900.0
    label_room = 70.0 if len(points) > 6 else 40.0
    height = top + plot_height + label_room
    step = (width - left - right) / max(len(points), 1)

    def y_of(stage: int) -> float:
        return top + plot_height - row * min(max(stage, 0), levels)

    parts = [f'<svg id="history-chart" class="chart" viewBox="0 0 {width:.0f} {height:.0f}" '
             'role="img" aria-labelledby="history-title" xmlns="http://www.w3.org/2000/svg">',
             '<title id="history-title">Stage reached, release by release</title>']
    for stage in range(levels + 1):
        y = y_of(stage)
        name = "none" if stage == 0 else funnel[stage - 1]
        is_required = stage > 0 and funnel[stage - 1] == required
        dash = ' stroke-dasharray="6 4" stroke="#000"' if is_required else ' stroke="#d0d0d0"'
        label = f"{stage} {name}" + (" (required)" if is_required else "")
        parts.append(f'<line x1="{left:.0f}" y1="{y:.1f}" x2="{width - right:.0f}" '
                     f'y2="{y:.1f}"{dash}/><text class="axis" x="{left - 8:.0f}" '
                     f'y="{y + 4:.1f}" text-anchor="end">{esc(label)}</text>')
    coords = []
    for i, point in enumerate(points):
        x = left + step * (i + 0.5)
        coords.append((x, y_of(count(point.get("stage")))))
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1a237e" '
                     'stroke-width="2"/>')
    for i, (point, (x, y)) in enumerate(zip(points, coords, strict=True)):
        release = str(point.get("release") or "?")
        is_current = current_label is not None and i == len(points) - 1
        ok = bool(point.get("ok"))
        stage = count(point.get("stage"))
        state = "ok" if ok else "not ok"
        suffix = f" ({current_label})" if is_current else ""
        title = (f"{release}{suffix}: "
                 f"{point.get('reached') or 'none'} {stage}/{levels}, {state}")
        if is_current:
            marker = (f'<path d="M{x:.1f} {y - 8:.1f}L{x + 8:.1f} {y:.1f}L{x:.1f} {y + 8:.1f}'
                      f'L{x - 8:.1f} {y:.1f}Z" fill="#1a237e"/>')
        elif ok:
            marker = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#1a237e"/>'
        else:
            marker = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#fff" stroke="#b71c1c" '
                      'stroke-width="2.5"/>')
        shown = release if len(release) <= 14 else release[:13] + "…"
        if is_current:
            shown += f" ({current_label})"
        rotate = (f' transform="rotate(-30 {x:.1f} {top + plot_height + 16:.1f})"'
                  if len(points) > 6 else "")
        anchor = "end" if rotate else "middle"
        parts.append(f'<g class="point" data-release="{esc(release)}"><title>{esc(title)}'
                     f"</title>{marker}<text x=\"{x:.1f}\" y=\"{y - 11:.1f}\" "
                     f'text-anchor="middle" class="value">{stage}{"" if ok else " ✗"}</text>'
                     f'<text class="axis" x="{x:.1f}" y="{top + plot_height + 18:.1f}" '
                     f'text-anchor="{anchor}"{rotate}>{esc(shown)}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)


def releases_table(points: Sequence[Mapping[str, Any]], funnel: Sequence[str],
                   current_label: str | None) -> str:
    head = "".join(f"<th>{i} {esc(g)}</th>" for i, g in enumerate(funnel, start=1))
    rows = []
    for index, point in enumerate(points):
        statuses = {g.get("name"): g for g in point.get("gates") or ()}
        cells = []
        for gate_name in funnel:
            gate = statuses.get(gate_name)
            if gate is None:
                cells.append('<td class="na">—</td>')
                continue
            status = str(gate.get("status"))
            _, _, symbol, word = GATE_LOOK.get(status, GATE_LOOK["not run"])
            cells.append(f'<td class="s-{esc(status.replace(" ", "-"))}">{symbol} {esc(word)}'
                         f" {count(gate.get('passed'))}/{count(gate.get('total'))}</td>")
        release = esc(point.get("release"))
        if current_label is not None and index == len(points) - 1:
            release += f" <em>({esc(current_label)})</em>"
        verdict = "ok" if point.get("ok") else "not ok"
        rows.append(f"<tr><th scope=\"row\">{release}</th>"
                    f"<td>{esc(str(point.get('created') or '')[:10])}</td>"
                    f"<td>{esc(point.get('reached') or 'none')} {count(point.get('stage'))}"
                    f"/{len(funnel)} · {verdict}</td>{''.join(cells)}</tr>")
    return ('<div class="scroll"><table class="releases"><thead><tr><th>release</th>'
            f"<th>date</th><th>stage reached</th>{head}</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


# ---------------------------------------------------------------------- the gates
def gate_section(index: int, gate: Mapping[str, Any]) -> str:
    name = str(gate.get("name"))
    status = str(gate.get("status"))
    _, _, symbol, word = GATE_LOOK.get(status, GATE_LOOK["not run"])
    css = status.replace(" ", "-")
    criteria = gate.get("criteria")
    question = GATE_QUESTIONS.get(name)
    parts = [f'<section class="gate s-{esc(css)}" id="gate-{esc(name)}">',
             f'<h3><span class="num">{index}</span> {esc(name)} '
             f'<span class="pill s-{esc(css)}">{symbol} {esc(word)}</span> '
             f'<span class="counts">{count(gate.get("passed"))}/{count(gate.get("total"))} passed'
             "</span></h3>"]
    if question:
        parts.append(f'<p class="question">{esc(question)}</p>')
    if status == "empty":
        parts.append("<p>Nothing is configured for this gate: no evidence, no credit.</p>")
    elif criteria is None:
        parts.append(recorded_statuses(name, gate))
    elif status == "not run" and not any(c.get("status") != "skipped" for c in criteria):
        parts.append("<p>Every criterion of this gate was deselected in this run.</p>")
    if criteria:
        measured = sum(c.get("evidence") == "measured" for c in criteria)
        attested = sum(c.get("evidence") == "attested" for c in criteria)
        parts.append(f'<p class="evidence">evidence: {measured} measured · {attested} '
                     "attested</p>")
        parts.append('<div class="scroll"><table class="criteria"><thead><tr><th>status</th>'
                     "<th>criterion</th><th>evidence</th><th>observed</th><th>expected</th>"
                     "<th>message</th></tr></thead><tbody>")
        for criterion in criteria:
            parts.append(criterion_row(name, criterion))
        parts.append("</tbody></table></div>")
    parts.append("</section>")
    return "\n".join(parts)


def recorded_statuses(gate_name: str, gate: Mapping[str, Any]) -> str:
    """A recorded release keeps each criterion's status and measured number, not its text."""
    statuses = gate.get("statuses")
    if not isinstance(statuses, dict) or not statuses:
        return "<p>No criteria were recorded for this gate.</p>"
    recorded = gate.get("observed")
    observed: Mapping[str, Any] = recorded if isinstance(recorded, dict) else {}
    rows = []
    for key, status in statuses.items():
        symbol, word = CRITERION_LOOK.get(str(status), ("?", str(status)))
        shown = str(key).partition("::")[2] if str(key).startswith(f"{gate_name}::") else key
        rows.append(f'<tr class="s-{esc(status)}"><td><span class="pill s-{esc(status)}">'
                    f"{symbol} {esc(word)}</span></td><td><code>{breakable(shown)}</code></td>"
                    f"<td>{esc(format_value(observed.get(key)))}</td></tr>")
    return ('<p class="evidence">as recorded: status and measured value of each criterion'
            '</p><div class="scroll"><table class="criteria"><thead><tr><th>status</th>'
            "<th>criterion</th><th>observed</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></div>")


def criterion_row(gate: str, criterion: Mapping[str, Any]) -> str:
    status = str(criterion.get("status"))
    symbol, word = CRITERION_LOOK.get(status, ("?", status))
    key = criterion_key(gate, str(criterion.get("id"))).partition("::")[2]
    details = criterion.get("details") or ()
    detail_html = ""
    if details:
        detail_html = "<ul class=\"details\">" + "".join(
            f"<li>{esc(line)}</li>" for line in details) + "</ul>"
    evidence = str(criterion.get("evidence") or "")
    return (f'<tr class="s-{esc(status)}"><td><span class="pill s-{esc(status)}">{symbol} '
            f"{esc(word)}</span></td><td><code>{breakable(key)}</code></td>"
            f'<td><span class="ev ev-{esc(evidence)}">{esc(evidence)}</span></td>'
            f"<td>{esc(format_value(criterion.get('observed')))}</td>"
            f"<td>{esc(criterion.get('expected') or '')}</td>"
            f"<td>{esc(criterion.get('message') or '')}{detail_html}</td></tr>")


def totals(report: Mapping[str, Any]) -> str:
    counts: dict[str, int] = {}
    evidence: dict[str, list[int]] = {}
    for gate in report.get("gates") or ():
        for criterion in gate.get("criteria") or ():
            status = str(criterion.get("status"))
            counts[status] = counts.get(status, 0) + 1
            kind = evidence.setdefault(str(criterion.get("evidence")), [0, 0])
            kind[0] += status == "passed"
            kind[1] += 1
    if not counts:
        return ""
    order = ["passed", "failed", "error", "warned", "waived", "skipped"]
    text = " · ".join(f"{counts[s]} {s}" for s in order if counts.get(s))
    split = " · ".join(f"{name}: {passed}/{total} passed"
                       for name, (passed, total) in sorted(evidence.items()))
    return (f'<p class="totals">criteria: {esc(text)}</p>'
            f'<p class="totals">evidence — {esc(split)}</p>')


def exceptions_section(report: Mapping[str, Any]) -> str:
    rows = [(gate.get("name"), c) for gate in report.get("gates") or ()
            for c in gate.get("criteria") or () if c.get("status") in ("warned", "waived")]
    if not rows:
        return ""
    items = "".join(
        f'<li><span class="pill s-{esc(c.get("status"))}">! {esc(c.get("status"))}</span> '
        f"<code>{esc(criterion_key(str(g), str(c.get('id'))))}</code> — "
        f"{esc(c.get('message') or '')}</li>" for g, c in rows)
    return (f'<section class="exceptions"><h2>Waived and warned ({len(rows)})</h2>'
            "<p>These failed but do not block: a waiver covers them, or their check is "
            f"<code>severity = \"warn\"</code>.</p><ul>{items}</ul></section>")


# ---------------------------------------------------------------------- the page
#: The look every page shares: the HTML report and the portfolio page (which adds its own rules).
PAGE_CSS = """
:root { --ink:#1b1b1b; --muted:#555; --line:#d7d7d7; --ok:#1b5e20; --bad:#b71c1c; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; color: var(--ink); background: #fafafa; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 28px 0 8px; }
h3 { font-size: 17px; margin: 0 0 4px; }
.meta, .question, .evidence, .totals { color: var(--muted); margin: 2px 0; }
.verdict { border: 2px solid; border-radius: 6px; padding: 10px 14px; margin: 14px 0;
  font-weight: 600; }
.verdict.ok { border-color: var(--ok); color: var(--ok); }
.verdict.bad { border-color: var(--bad); color: var(--bad); border-style: double;
  border-width: 4px; }
.verdict ul { font-weight: 400; color: var(--ink); margin: 6px 0 0; }
svg text { font: 13px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  fill: #111; }
svg .name { font-weight: 700; } svg .num { font-weight: 700; fill: #333; }
svg .axis { fill: #444; font-size: 12px; } svg .value { font-size: 11px; font-weight: 700; }
svg.funnel, svg.chart { width: 100%; height: auto; display: block; }
svg a:focus g path { stroke-width: 3; }
.gate { border-top: 1px solid var(--line); padding: 14px 0 6px; }
.gate .num { display: inline-block; min-width: 1.6em; color: var(--muted); }
.counts { color: var(--muted); font-weight: 400; font-size: 14px; }
.pill { display: inline-block; border: 1px solid #777; border-radius: 10px; padding: 0 8px;
  font-size: 13px; font-weight: 600; white-space: nowrap; }
.s-passed.pill { background: #e8f5e9; border-color: #2e7d32; }
.s-warned.pill, .s-waived.pill { background: #fff8e1; border-color: #a67c00; }
.s-failed.pill, .s-error.pill { background: #ffebee; border-color: #b71c1c;
  border-style: double; border-width: 3px; }
.s-empty.pill { background: #fff; border-style: dashed; }
.s-not-run.pill, .s-skipped.pill { background: #eee; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 14px; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid var(--line);
  padding: 4px 8px; }
thead th { border-bottom: 2px solid #999; font-size: 13px; color: var(--muted); }
td code, li code { font-size: 13px; overflow-wrap: break-word; }
.criteria td:nth-child(2) { min-width: 13em; }
/* a value or message of one long word (a path, a token, a repr) wraps inside its cell
   instead of widening the table past the page; "break-word" would not narrow the column */
.criteria td, .criteria td code, h1, .verdict li, .notes li { overflow-wrap: anywhere; }
.criteria td:nth-child(n+3):nth-child(-n+5) { min-width: 4em; }
.ev { font-size: 12px; border: 1px solid #999; border-radius: 3px; padding: 0 4px;
  white-space: nowrap; }
.ev-attested { border-style: dashed; }
.releases td, .releases th { white-space: nowrap; font-size: 13px; }
.releases td.s-failed { font-weight: 700; }
.scroll { overflow-x: auto; }
ul.details { margin: 4px 0 0; padding-left: 18px; color: var(--muted); font-size: 13px; }
.notes li { color: #6d4c00; }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; }
@media print {
  @page { margin: 14mm; }
  body { background: #fff; font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .gate, tr, svg, .verdict { break-inside: avoid; }
  h2 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
  .scroll { overflow: visible; }
}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(report: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = (), *,
                previous: Mapping[str, Any] | None = None, notes: Sequence[str] = (),
                current_label: str | None = "this run") -> str:
    """The page for one report; ``history`` (recorded entries) adds the chart and table.

    ``current_label`` marks the report's own point in the chart (None: it is a recorded
    release itself, e.g. ``mlfunnel history --html``).
    """
    project = report.get("project") or "project"
    release = report.get("release")
    funnel = [str(g) for g in report.get("funnel") or [g.get("name")
                                                        for g in report.get("gates") or ()]]
    ok = bool(report.get("ok"))
    title = f"ml funnel · {project}" + (f" {release}" if release else "")
    meta = [f"release <strong>{esc(release or '—')}</strong>"]
    if report.get("commit"):
        meta.append(f"commit <code>{esc(report.get('commit'))}</code>")
    if report.get("created"):
        meta.append(f"created {esc(report.get('created'))}")
    reasons = list(report.get("reasons") or ())
    comparison_lines = []
    if previous is not None:
        comparison = compare(report, previous)
        comparison_lines.append(comparison.line())
        failing = comparison.failing_line(limit=20)
        if failing:
            comparison_lines.append(failing)
    reason_html = "".join(f"<li>{esc(r)}</li>" for r in reasons + comparison_lines)
    body = [
        f"<header><h1>{esc(title)}</h1><p class=\"meta\">{' · '.join(meta)}</p></header>",
        f'<div class="verdict {"ok" if ok else "bad"}" role="status">'
        f'{"✓ OK" if ok else "✗ NOT OK"} — {esc(report.get("verdict") or "")}'
        + (f"<ul>{reason_html}</ul>" if reason_html else "") + "</div>",
        totals(report),
        '<h2 id="funnel-heading">The funnel</h2>',
        funnel_svg(report),
    ]
    points = series(history, report if current_label is not None else None)
    if history:
        body += ['<h2 id="history">Over releases</h2>',
                 history_svg(points, funnel, report.get("required"), current_label),
                 '<p class="meta">' + _last_of(len(points), _CHART_POINTS, "the chart")
                 + 'Filled circle: ok · hollow circle with ✗: not ok · '
                 + (f"diamond: {esc(current_label)} · " if current_label else "")
                 + "dashed line: the required gate.</p>",
                 releases_table(points[-_TABLE_ROWS:], funnel, current_label)]
        if len(points) > _TABLE_ROWS:
            body.append(f'<p class="meta">{_last_of(len(points), _TABLE_ROWS, "the table")}'
                        "<code>mlfunnel history</code> lists every one.</p>")
    body.append('<h2 id="gates">Gates</h2>')
    body += [gate_section(i, gate) for i, gate in enumerate(report.get("gates") or (), 1)]
    body.append(exceptions_section(report))
    if notes:
        body.append('<section class="notes"><h2>Notes</h2><ul>'
                    + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul></section>")
    body.append(f'<footer>{esc(report.get("schema") or "")} · written by pytest-mlfunnel'
                "</footer>")
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="generator" content="pytest-mlfunnel">\n'
            f"<title>{esc(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(part for part in body if part) + "\n</main>\n</body>\n</html>\n")


def _last_of(total: int, shown: int, where: str) -> str:
    """``The chart shows the last 30 of 451 releases. `` when it does not show them all."""
    if total <= shown:
        return ""
    return f"{where.capitalize()} shows the last {shown} of {total:,} releases. "


def write_html(path: Path, report: Report, history: Sequence[Mapping[str, Any]]) -> None:
    """``--funnel-html``: write the page (``OSError`` when it cannot be written)."""
    from pytest_mlfunnel.report import write_atomic

    page = render_html(report.to_dict(), history, previous=report.previous,
                       notes=report.notes)
    write_atomic(path, page)

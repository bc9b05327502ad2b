"""The portfolio as one self-contained HTML page, in the look of the HTML report.

The funnel of projects is drawn to scale (a bar's width is its count), the projects' table
sorts by stage or days in stage, and each project has a small timeline of its stage. The
page fetches nothing: styles are inline, pictures are inline SVG, and the
Content-Security-Policy forbids every request; its one script (the table sorter) is allowed
by its hash and needs no network. Without scripts the table still reads, in funnel order.
Every value read from a history is escaped.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Sequence

from pytest_mlfunnel.portfolio import FunnelGroup, Portfolio, ProjectSummary
from pytest_mlfunnel.render.html import PAGE_CSS, esc
from pytest_mlfunnel.render.portfolio_terminal import days_text, percent

_BAR_AREA = 480.0  # width of the widest bar (all projects), in SVG units
_MAX_STALLED_LISTED = 30

_SORTER = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll('th button[data-column]').forEach(function (button) {
    button.addEventListener('click', function () {
      var column = Number(button.dataset.column);
      var numeric = button.dataset.type === 'number';
      var th = button.parentNode;
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th[aria-sort]').forEach(function (other) {
        other.removeAttribute('aria-sort');
      });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.sort, y = b.cells[column].dataset.sort;
        var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        if (order === 0) { order = Number(a.dataset.index) - Number(b.dataset.index); }
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""
_SORTER_HASH = base64.b64encode(hashlib.sha256(_SORTER.encode("utf-8")).digest()).decode()
_CSP = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{_SORTER_HASH}'")

_CSS = PAGE_CSS + """
svg.bars { width: 100%; height: auto; display: block; }
svg .count { font-weight: 700; }
svg .side { fill: #555; font-size: 12px; }
.mismatch li { color: #6d4c00; }
.projects td { white-space: nowrap; font-size: 13px; vertical-align: middle; }
.projects td.status { white-space: normal; }
.projects td.name { white-space: normal; overflow-wrap: anywhere; min-width: 9em; }
.projects th button { font: inherit; color: inherit; background: none; border: 0; padding: 0;
  cursor: pointer; text-decoration: underline dotted; }
.projects th[aria-sort="ascending"] button::after { content: " ▲"; }
.projects th[aria-sort="descending"] button::after { content: " ▼"; }
.flag { display: inline-block; border: 1px solid #777; border-radius: 10px; padding: 0 6px;
  font-size: 12px; font-weight: 600; margin-right: 3px; }
.flag.stalled { background: #ffebee; border-color: #b71c1c; border-style: double;
  border-width: 3px; }
.flag.fell { background: #fff8e1; border-color: #a67c00; }
.flag.through { background: #e8f5e9; border-color: #2e7d32; }
svg.timeline { width: 190px; height: 34px; display: block; }
svg.timeline .track { stroke: #e0e0e0; }
svg.timeline .path { fill: none; stroke: #1a237e; stroke-width: 2; }
svg.timeline .path.stalled { stroke: #b71c1c; stroke-dasharray: 4 2; }
svg.timeline circle { fill: #1a237e; }
@media print { .projects th button { text-decoration: none; } }
"""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# ---------------------------------------------------------------------- the funnel of projects
def bars_svg(group: FunnelGroup, number: int) -> str:
    """One bar for all projects, then one per gate; width = count, centred like a funnel.

    Inside each bar the projects that went on to the next gate are drawn solid; the rest
    stopped in front of it (light), the stalled ones among them hatched.
    """
    total = len(group.projects)
    steps = group.steps
    # (gate, label, count, conversion text, next gate, count at the next gate, stalled there)
    rows: list[tuple[str, str, int, str, str | None, int, int]] = []
    counts = [total] + [step.reached for step in steps]
    for level, count in enumerate(counts):
        step = steps[level - 1] if level else None
        nxt = steps[level] if level < len(steps) else None
        rows.append((
            step.gate if step else "", f"{level} {step.gate}" if step else "all projects",
            count,
            f"{count}/{step.previous} = {percent(count, step.previous)}" if step else "",
            nxt.gate if nxt else None, nxt.reached if nxt else count,
            len(nxt.stalled_here) if nxt else 0))
    band, gap, top, centre = 30.0, 6.0, 8.0, 160.0 + _BAR_AREA / 2
    height = top + len(rows) * (band + gap) + 8
    title_id = f"bars-title-{number}"
    pattern = f"pat-stalled-{number}"
    parts = [f'<svg class="bars" id="bars-{number}" viewBox="0 0 1080 {height:.0f}" role="img" '
             f'aria-labelledby="{title_id}" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{title_id}">Projects that reached each gate, drawn to scale</title>',
             f'<defs><pattern id="{pattern}" width="8" height="8" patternUnits="userSpaceOnUse"'
             ' patternTransform="rotate(45)"><rect width="8" height="8" fill="#ffcdd2"/>'
             '<rect width="3" height="8" fill="#b71c1c" fill-opacity=".5"/></pattern></defs>']
    scale = _BAR_AREA / total if total else 0.0
    for i, (gate, label, count, conversion, next_gate, further, stalled) in enumerate(rows):
        y = top + i * (band + gap)
        width, inner, hatched = count * scale, further * scale, stalled * scale
        css = "bar all" if i == 0 else "bar"
        parts.append(
            f'<g class="{css}" data-gate="{esc(gate)}" data-count="{count}">'
            f"<title>{esc(label)}: {count} of {total} projects</title>"
            f'<rect class="outer" x="{centre - width / 2:.2f}" y="{y:.1f}" '
            f'width="{width:.2f}" height="{band:.0f}" fill="#e8eaf6" stroke="#1a237e"/>'
            f'<rect class="further" x="{centre - inner / 2:.2f}" y="{y:.1f}" '
            f'width="{inner:.2f}" height="{band:.0f}" fill="#7986cb"/>')
        if hatched:
            for x in (centre - inner / 2 - hatched / 2, centre + inner / 2):
                parts.append(f'<rect class="stalled" x="{x:.2f}" y="{y:.1f}" '
                             f'width="{hatched / 2:.2f}" height="{band:.0f}" '
                             f'fill="url(#{pattern})"/>')
        side = []
        if conversion:
            side.append(conversion)
        if next_gate is not None and count - further:
            stuck = f"{count - further} stopped in front of {next_gate}"
            if stalled:
                stuck += f" ({stalled} stalled)"
            side.append(stuck)
        elif next_gate is None and count:
            side.append("through every gate")
        parts.append(f'<text x="{centre - _BAR_AREA / 2 - 10:.0f}" y="{y + band / 2 + 5:.1f}" '
                     f'text-anchor="end"><tspan class="name">{esc(label)}</tspan></text>'
                     f'<text x="{centre + _BAR_AREA / 2 + 10:.0f}" y="{y + band / 2 + 5:.1f}">'
                     f'<tspan class="count">{count}</tspan>'
                     + (f' <tspan class="side">{esc(" · ".join(side))}</tspan>' if side else "")
                     + "</text></g>")
    parts.append("</svg>")
    return "\n".join(parts)


def steps_table(group: FunnelGroup) -> str:
    days = {p.name: p.days_in_stage for p in group.projects}
    rows = []
    for step in group.steps:
        median = (f"{days_text(step.median_days)} <span class=\"meta\">(n={step.measured})"
                  "</span>" if step.measured else "—")
        stalled = ", ".join(f"{esc(n)} ({days[n]} d)" for n in step.stalled_here[:20])
        if len(step.stalled_here) > 20:
            stalled += f" and {len(step.stalled_here) - 20} more"
        rows.append(f"<tr><td>{step.index}</td><th scope=\"row\">{esc(step.gate)}</th>"
                    f"<td>{step.reached}</td><td>{step.reached}/{step.previous} "
                    f"({percent(step.reached, step.previous)})</td><td>{median}</td>"
                    f"<td>{step.stopped_here}</td><td>{stalled}</td></tr>")
    return ('<div class="scroll"><table class="steps"><thead><tr><th>#</th><th>gate</th>'
            "<th>reached</th><th>from the gate before</th><th>median days to pass</th>"
            "<th>stopped here</th><th>stalled here</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def group_section(group: FunnelGroup, number: int, stalled_after: int) -> str:
    gates = " → ".join(esc(g) for g in group.gates)
    stalled = [(step.gate, step.stalled_here) for step in group.steps if step.stalled_here]
    parts = [f'<section class="funnel-group" id="funnel-{number}">',
             f"<h2>Funnel {number + 1}: {_plural(len(group.projects), 'project')}</h2>",
             f'<p class="meta">{gates} · {group.through} through every gate</p>',
             bars_svg(group, number),
             '<p class="meta">Bar width = number of projects that reached the gate (and every '
             "gate before it) at their latest release. Dark: those that went on to the next "
             "gate; light: those that stopped in front of it; hatched: stalled there.</p>",
             steps_table(group)]
    if stalled:
        days = {p.name: p.days_in_stage for p in group.projects}
        items = []
        for gate, names in stalled:
            shown = ", ".join(f"{esc(n)} ({days[n]} d)" for n in names[:_MAX_STALLED_LISTED])
            if len(names) > _MAX_STALLED_LISTED:
                shown += f" and {len(names) - _MAX_STALLED_LISTED} more"
            items.append(f"<li>in front of <strong>{esc(gate)}</strong> ({len(names)}): "
                         f"{shown}</li>")
        parts.append(f"<h3>Stalled: no stage change for over {stalled_after} days</h3>"
                     f'<ul class="stalled">{"".join(items)}</ul>')
    parts.append("</section>")
    return "\n".join(parts)


# ---------------------------------------------------------------------- projects
def timeline_svg(project: ProjectSummary, start: dt.date, end: dt.date) -> str:
    """The project's stage over time, on the portfolio's common time axis."""
    width, height, pad = 190.0, 34.0, 3.0
    span = max((end - start).days, 1)
    levels = max(len(project.funnel), 1)

    def x_of(day: dt.date) -> float:
        return pad + (width - 2 * pad) * (day - start).days / span

    def y_of(stage: int) -> float:
        return height - pad - (height - 2 * pad) * stage / levels

    points: list[str] = []
    previous_y = None
    for point in project.timeline:
        x, y = x_of(point.day), y_of(point.stage)
        if previous_y is not None:  # a step: hold the stage until the release that changed it
            points.append(f"{x:.1f},{previous_y:.1f}")
        points.append(f"{x:.1f},{y:.1f}")
        previous_y = y
    points.append(f"{x_of(end):.1f},{y_of(project.stage):.1f}")
    changes = "; ".join(f"{p.day.isoformat()} {p.release}: {project.gate(p.stage) or 'none'} "
                        f"{p.stage}/{len(project.funnel)}" for p in project.timeline)
    css = "path stalled" if project.stalled else "path"
    first = project.timeline[0]
    return (f'<svg class="timeline" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{esc(changes)}</title>'
            f'<line class="track" x1="{pad}" y1="{y_of(0):.1f}" x2="{width - pad}" '
            f'y2="{y_of(0):.1f}"/><line class="track" x1="{pad}" y1="{y_of(levels):.1f}" '
            f'x2="{width - pad}" y2="{y_of(levels):.1f}"/>'
            f'<polyline class="{css}" points="{" ".join(points)}"/>'
            f'<circle cx="{x_of(first.day):.1f}" cy="{y_of(first.stage):.1f}" r="2.5"/></svg>')


def projects_table(projects: Sequence[ProjectSummary], groups: Sequence[FunnelGroup],
                   as_of: dt.date) -> str:
    start = min((p.first_recorded for p in projects), default=as_of)
    group_of = {id(p): n for n, g in enumerate(groups) for p in g.projects}
    rows = []
    for index, project in enumerate(projects):
        flags = []
        if project.stalled:
            flags.append('<span class="flag stalled">‖ stalled</span>')
        if project.fell_back:
            flags.append(f'<span class="flag fell">↘ fell back from {esc(project.best)}</span>')
        if project.through:
            flags.append('<span class="flag through">✓ through</span>')
        levels = len(project.funnel)
        group = group_of.get(id(project), 0)
        # Sort keys: stage as a share of the project's funnel, so funnels of different
        # lengths interleave sensibly; ties keep the funnel order.
        stage_key = f"{project.stage / levels if levels else 0:.6f}"
        rows.append(
            f'<tr data-index="{index}" data-project="{esc(project.name)}">'
            f'<td class="name" data-sort="{esc(project.name.lower())}">{esc(project.name)}</td>'
            f'<td data-sort="{stage_key}">{esc(project.reached or "none")} '
            f"{project.stage}/{levels}</td>"
            f'<td data-sort="{esc(project.stopped_at or "")}">{esc(project.stopped_at or "—")}'
            "</td>"
            f'<td data-sort="{project.since.isoformat()}">{project.since.isoformat()}</td>'
            f'<td data-sort="{project.days_in_stage}">{project.days_in_stage}</td>'
            f'<td data-sort="{project.best_stage / levels if levels else 0:.6f}">'
            f"{esc(project.best or 'none')} {project.best_stage}/{levels}</td>"
            f'<td data-sort="{group}">{group + 1}</td>'
            f'<td data-sort="{project.first_recorded.isoformat()}">'
            f"{timeline_svg(project, start, as_of)}</td>"
            f'<td class="status" data-sort="{int(project.stalled)}{int(project.fell_back)}">'
            f'{"".join(flags)}</td></tr>')
    head = [("project", "text"), ("stage", "number"), ("stopped at", "text"),
            ("since", "text"), ("days in stage", "number"), ("best", "number"),
            ("funnel", "number"),
            (f"timeline {start.isoformat()} … {as_of.isoformat()}", "text"), ("status", "text")]
    cells = "".join(f'<th scope="col"><button type="button" data-column="{i}" '
                    f'data-type="{kind}">{esc(label)}</button></th>'
                    for i, (label, kind) in enumerate(head))
    return ('<div class="scroll"><table class="projects sortable" id="projects"><thead><tr>'
            f"{cells}</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


# ---------------------------------------------------------------------- the page
def render_portfolio_html(portfolio: Portfolio) -> str:
    projects = portfolio.projects
    stalled = sum(p.stalled for p in projects)
    through = sum(p.through for p in projects)
    title = "ml funnel · portfolio"
    meta = [f"as of <strong>{portfolio.as_of.isoformat()}</strong>",
            _plural(len(projects), "project"), _plural(len(portfolio.groups), "funnel"),
            f"{stalled} stalled (no stage change for over {portfolio.stalled_after_days} days)",
            f"{through} through every gate"]
    body = [f"<header><h1>{esc(title)}</h1><p class=\"meta\">{' · '.join(meta)}</p></header>"]
    if portfolio.mismatches:
        body.append('<div class="verdict bad" role="status">Funnels differ: counted apart'
                    '<ul class="mismatch">'
                    + "".join(f"<li>{esc(m)}</li>" for m in portfolio.mismatches)
                    + "</ul></div>")
    body += [group_section(g, n, portfolio.stalled_after_days)
             for n, g in enumerate(portfolio.groups)]
    body += ['<h2 id="projects-heading">Projects</h2>',
             '<p class="meta">Click a column to sort (stage, days in stage …). Timeline: the '
             "stage over time, from the first recorded release to the as-of date; dashed red: "
             "stalled.</p>",
             projects_table(projects, portfolio.groups, portfolio.as_of)]
    read = (f"read {_plural(portfolio.entries, 'release')} from "
            f"{_plural(portfolio.files, 'file')}")
    if portfolio.lines_skipped:
        read += f", skipped {portfolio.lines_skipped}"
    if portfolio.later_than_as_of:
        read += f", left out {portfolio.later_than_as_of} recorded after the as-of date"
    if portfolio.problems:
        body.append(f'<section class="notes"><h2>Skipped inputs ({len(portfolio.problems)})'
                    "</h2><ul>" + "".join(f"<li>{esc(p)}</li>" for p in portfolio.problems)
                    + "</ul></section>")
    body.append(f"<footer>{esc(read)} · mlfunnel-portfolio/1 · written by pytest-mlfunnel"
                "</footer>")
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n"
            f"<script>{_SORTER}</script>\n</body>\n</html>\n")

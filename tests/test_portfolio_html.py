"""``mlfunnel portfolio --html``: one self-contained page, checked as text and in headless
Chromium (no console errors, no requests, bars drawn to scale, the table sorts on click)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from test_html_report import browser, open_page, png_colours  # noqa: F401
from test_portfolio import entry, mlfunnel, project_history, write_history

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def page(tmp_path: Path) -> Path:
    """Seven projects: 7 / 6 / 5 / 3 / 1 ... at the gates, one of them named hostilely."""
    root = tmp_path / "repos"
    project_history(root, "ideas", [("2026-11-01", 0)])
    project_history(root, "churn", [("2026-01-05", 0), ("2026-02-04", 1), ("2026-03-06", 3)])
    project_history(root, "fraud", [("2026-04-01", 1), ("2026-05-01", 4), ("2026-07-01", 3)])
    project_history(root, "pricing", [("2026-10-01", 1), ("2026-11-01", 2)])
    project_history(root, "search", [("2025-06-01", 7), ("2025-09-01", 8)])
    project_history(root, "routing", [("2026-02-01", 1)])
    write_history(root / "odd" / ".mlfunnel" / "history.jsonl",
                  [entry(HOSTILE, "v1", "2026-06-01", 2)])
    done = mlfunnel("portfolio", "repos", "--html", "out/portfolio.html", "--as-of",
                    "2026-11-29", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote out/portfolio.html" in done.stdout
    return tmp_path / "out" / "portfolio.html"


def test_the_page_is_one_self_contained_file(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html)
    # Escaped names also sit in data- attributes, where "src=" is only text.
    assert not re.search(r"<[^>]*\bsrc=", re.sub(r'data-[a-z]+="[^"<>]*"', "", html))
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "href=" not in html
    # One inline script, allowed by its hash; everything else is refused.
    [script] = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    assert csp.group(1) == ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                            f"script-src 'sha256-{digest}'")
    assert "fetch(" not in script and "XMLHttpRequest" not in script


def test_the_page_wears_the_html_reports_look(page: Path) -> None:
    from pytest_mlfunnel.render.html import PAGE_CSS

    style = page.read_text().split("<style>", 1)[1].split("</style>", 1)[0]
    assert style.startswith(PAGE_CSS)
    assert "svg.bars" in style[len(PAGE_CSS):]  # and adds its own rules after it


def test_what_the_histories_say_is_escaped(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_bars_are_counts_drawn_to_scale(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    svg = html[html.index('<svg class="bars" id="bars-0"'):]
    svg = svg[: svg.index("</svg>")]
    bars = re.findall(r'class="bar[^"]*" data-gate="([^"]*)" data-count="(\d+)">.*?'
                      r'<rect class="outer" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', svg)
    assert [(gate, int(count)) for gate, count, _ in bars] == [
        ("", 7), ("data", 6), ("problem", 5), ("model", 3), ("organization", 1),
        ("deployment", 1), ("usage", 1), ("effectiveness", 1), ("maintenance", 1)]
    for _, count, width in bars:
        assert float(width) == pytest.approx(480 * int(count) / 7, abs=0.01)
    assert "3/5 = 60% · 2 stopped in front of organization (2 stalled)" in svg


@pytest.mark.browser
def test_the_page_loads_in_chromium_without_errors_or_requests(page: Path, browser: Any  # noqa: F811
                                                               ) -> None:
    console, requests = open_page(browser, page)
    assert [m for m in console if m["level"] in ("SEVERE", "WARNING")] == []
    assert requests == [page.as_uri()]
    assert browser.execute_script("return document.images.length") == 0
    assert browser.execute_script("return document.querySelectorAll('[src]').length") == 0
    assert browser.execute_script("return document.querySelectorAll('[onerror]').length") == 0
    # Drawn at a real size, bar widths in proportion to their counts.
    bars = browser.execute_script(
        "return Array.from(document.querySelectorAll('#bars-0 .bar'), b => "
        "[Number(b.dataset.count), b.querySelector('rect.outer').getBoundingClientRect().width])")
    assert [count for count, _ in bars] == [7, 6, 5, 3, 1, 1, 1, 1, 1]
    unit = bars[0][1] / 7
    assert unit > 40
    for count, width in bars:
        assert width == pytest.approx(count * unit, rel=0.01)
    # Every project has its timeline, drawn.
    assert browser.execute_script(
        "return Array.from(document.querySelectorAll('#projects tbody tr'), r => "
        "r.querySelector('svg.timeline polyline').getBoundingClientRect().width > 0)"
    ) == [True] * 7
    assert png_colours(browser.get_screenshot_as_png()) > 40


@pytest.mark.browser
def test_the_projects_table_sorts_on_click(page: Path, browser: Any) -> None:  # noqa: F811
    open_page(browser, page)
    rows = ("return Array.from(document.querySelectorAll('#projects tbody tr'), "
            "r => [r.dataset.project, r.cells[1].textContent, Number(r.cells[4].textContent)])")

    def click(label: str) -> list[Any]:
        browser.execute_script(
            "Array.from(document.querySelectorAll('#projects th button'))"
            ".find(b => b.textContent === arguments[0]).click()", label)
        return list(browser.execute_script(rows))

    # Funnel order without any click: stage, then longest stay first.
    assert [r[0] for r in browser.execute_script(rows)] == [
        "ideas", "routing", HOSTILE, "pricing", "churn", "fraud", "search"]
    by_days = click("days in stage")
    assert [r[2] for r in by_days] == sorted(r[2] for r in by_days)
    assert by_days[0][0] == "ideas" and by_days[-1][0] == "search"
    assert browser.execute_script(
        "return document.querySelector('#projects th[aria-sort]').textContent"
    ) == "days in stage"
    assert [r[2] for r in click("days in stage")] == sorted((r[2] for r in by_days),
                                                            reverse=True)
    by_stage = click("stage")
    assert [r[1] for r in by_stage] == ["none 0/8", "data 1/8", "problem 2/8", "problem 2/8",
                                        "model 3/8", "model 3/8", "maintenance 8/8"]
    assert click("stage")[0][1] == "maintenance 8/8"


def test_the_page_shows_funnels_that_differ_and_inputs_skipped(tmp_path: Path) -> None:
    project_history(tmp_path, "churn", [("2026-10-01", 2)])
    project_history(tmp_path, "vision", [("2026-10-01", 1)], ("data", "labels", "model"))
    (tmp_path / "broken.jsonl").write_text("{oops\n")
    done = mlfunnel("portfolio", "churn", "vision", "broken.jsonl", "--html", "p.html",
                    "--as-of", "2026-11-29", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert ("Funnels differ: counted apart<ul class=\"mismatch\"><li>1 project uses another "
            "funnel than data, problem, model, organization, deployment, usage, effectiveness, "
            "maintenance: data, labels, model (vision); counted in a funnel of their own</li>"
            ) in html
    assert html.count('<svg class="bars"') == 2
    assert ("<h2>Skipped inputs (1)</h2><ul><li>broken.jsonl:1: not JSON (Expecting property "
            "name enclosed in double quotes at column 2)</li></ul>") in html
    assert "read 2 releases from 3 files, skipped 1" in html

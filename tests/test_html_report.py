"""The HTML report: one self-contained file, checked as text and in a real headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HOSTILE = "<img src=x onerror=alert(1)>"

CONFIG = """
[tool.mlfunnel]
funnel = ["data", "problem", "model", "maintenance"]
require = "model"

[tool.mlfunnel.data.volume]
metrics = "reports/eval.json"
expect = { rows = ">= 100" }

[tool.mlfunnel.problem.statement]
document = "docs/problem.md"
sections = ["Problem"]

[tool.mlfunnel.problem.budget]
metrics = "reports/eval.json"
expect = { cost = "<= 1" }
severity = "warn"

[tool.mlfunnel.problem.legal]
metrics = "reports/eval.json"
expect = { reviewed = "== 1" }
waive = { reason = "legal review booked for next sprint", until = "2099-01-01" }

[tool.mlfunnel.model.quality]
metrics = "reports/eval.json"
expect = { accuracy = ">= 0.8", auc = ">= 0.85" }
"""
TESTS = f"""
import pytest

@pytest.mark.funnel("model")
def test_predictions_are_calibrated():
    assert False, {HOSTILE!r}
"""


def make_project(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(CONFIG)
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "eval.json").write_text(json.dumps(
        {"rows": 500, "cost": 2.5, "reviewed": 0, "accuracy": 0.74, "auc": 0.9}))
    (pytester.path / "docs").mkdir()
    (pytester.path / "docs" / "problem.md").write_text(
        "# Problem\n\nChurn costs us 2M a year & nobody <knows> why.\n")
    pytester.makepyfile(test_model=TESTS)


def history_entry(release: str, stage: int, ok: bool) -> dict[str, Any]:
    names = ["data", "problem", "model", "maintenance"]
    gates = [{"name": n, "status": "passed" if i < stage else "failed", "passed": 1,
              "total": 1} for i, n in enumerate(names)]
    gates[3]["status"] = "empty"
    return {"schema": "mlfunnel-report/1", "project": "demo", "release": release,
            "commit": None, "created": "2026-10-01T00:00:00Z", "funnel": names,
            "required": "model", "reached": names[stage - 1] if stage else None,
            "stage": stage, "ok": ok, "partial": False, "gates": gates}


def write_history(pytester: pytest.Pytester) -> None:
    path = pytester.path / ".mlfunnel" / "history.jsonl"
    path.parent.mkdir()
    entries = [history_entry("v1.0.0", 1, False), history_entry("v1.1.0", 2, False),
               history_entry("v1.2.0", 3, True)]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def run_report(pytester: pytest.Pytester, *args: str) -> str:
    result = pytester.runpytest("--funnel", "--funnel-html=out/report.html", *args)
    assert result.ret == 1, result.stdout.str()
    return (pytester.path / "out" / "report.html").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- as text
@pytest.mark.xdist_matters
def test_the_page_is_one_self_contained_file(pytester: pytest.Pytester, xdist_args: list[str]
                                             ) -> None:
    make_project(pytester)
    page = run_report(pytester, *xdist_args)
    assert page.startswith("<!doctype html>")
    assert "<script" not in page
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page)
    assert not re.search(r"<[^>]*\bsrc=", page)  # escaped user text may say src=
    # The only URL is the SVG namespace; every link points inside the page.
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert set(re.findall(r'href="([^"]*)"', page)) <= {f"#gate-{g}" for g in
                                                       ("data", "problem", "model",
                                                        "maintenance")}
    assert "default-src 'none'" in page
    assert "@media print" in page
    assert [p.name for p in (pytester.path / "out").iterdir()] == ["report.html"]


def test_user_text_is_escaped(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    page = run_report(pytester)
    assert HOSTILE not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_funnel_has_one_band_per_gate_with_status_words(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    page = run_report(pytester)
    svg = page[page.index('<svg id="funnel"'):]
    svg = svg[: svg.index("</svg>")]
    bands = re.findall(r'class="band" data-gate="([^"]+)" data-status="([^"]+)"', svg)
    assert bands == [("data", "passed"), ("problem", "warned"), ("model", "failed"),
                     ("maintenance", "empty")]
    # Readable without colour: words and patterns, not only fills.
    for words in ("✓ passed · 1/1", "! warned · 2/4", "✗ FAILED · 1/3", "○ empty · 0/0"):
        assert words in svg
    assert 'fill="url(#pat-hatch)"' in svg and 'fill="url(#pat-dots)"' in svg
    assert "◀ stage reached: problem (2/4)" in svg
    assert "required: model" in svg


def test_criteria_show_observed_expected_evidence_and_exceptions(pytester: pytest.Pytester
                                                                 ) -> None:
    make_project(pytester)
    page = run_report(pytester)
    model = page[page.index('id="gate-model"'):]
    model = model[: model.index("</section>")]
    assert "<code>quality::<wbr>accuracy</code>" in model
    assert "<td>0.74</td><td>&gt;= 0.8</td><td>accuracy 0.74, expected &gt;= 0.8</td>" in model
    assert "evidence: 3 measured · 0 attested" in model
    problem = page[page.index('id="gate-problem"'):]
    problem = problem[: problem.index("</section>")]
    assert '<span class="ev ev-attested">attested</span>' in problem
    assert "evidence: 2 measured · 2 attested" in problem
    exceptions = page[page.index("Waived and warned (2)"):]
    assert "problem::budget::cost" in exceptions and "problem::legal::reviewed" in exceptions
    assert "! waived" in exceptions and "! warned" in exceptions
    assert "is the model well built?" in page  # each gate's question


def test_history_adds_a_chart_and_a_table_of_releases(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    page = run_report(pytester)
    assert 'id="history-chart"' not in page
    write_history(pytester)
    page = run_report(pytester)
    chart = page[page.index('<svg id="history-chart"'):]
    chart = chart[: chart.index("</svg>")]
    points = re.findall(r'class="point" data-release="([^"]+)"', chart)
    release = json.loads(json.dumps(points[-1]))
    assert points[:3] == ["v1.0.0", "v1.1.0", "v1.2.0"] and len(points) == 4
    assert f"{release} (this run)" in chart
    assert "3 model (required)" in chart
    assert "since v1.2.0: model -&gt; problem, down 1 stage" in page
    table = page[page.index('<table class="releases">'):]
    assert table.count("<tr><th scope=\"row\">") == 4


def test_a_long_history_shows_its_latest_releases_and_says_how_many_it_left_out(
        pytester: pytest.Pytester) -> None:
    # years of nightly releases made a page of tens of megabytes, one table row each
    make_project(pytester)
    path = pytester.path / ".mlfunnel" / "history.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(history_entry(f"n{i}", 1 + i % 3, i % 3 == 2)) + "\n"
                            for i in range(250)))
    page = run_report(pytester)
    table = page[page.index('<table class="releases">'):]
    table = table[: table.index("</table>")]
    rows = re.findall(r'<tr><th scope="row">([^<]*)', table)
    assert rows == [f"n{i}" for i in range(51, 250)] + [rows[-1]]
    assert "(this run)" in table[table.rindex("<tr>"):]
    assert "The chart shows the last 30 of 251 releases. Filled circle" in page
    assert ("The table shows the last 200 of 251 releases. <code>mlfunnel history</code> "
            "lists every one.") in page
    path.write_text("".join(json.dumps(history_entry(f"n{i}", 1, False)) + "\n"
                            for i in range(3)))
    page = run_report(pytester)
    assert "shows the last" not in page


# ----------------------------------------------------------------------------- in Chromium
def chromium_paths() -> tuple[str | None, str | None]:
    binary = os.environ.get("MLFUNNEL_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser") or shutil.which("google-chrome")
    return binary, shutil.which("chromedriver")


def missing_browser_parts(binary: str | None, driver: str | None) -> str | None:
    """What is missing to drive headless Chromium, named: ``no chromedriver on PATH``."""
    missing = [name for name, found in (("chromium", binary), ("chromedriver", driver))
               if not found]
    if not missing:
        return None
    found = [f"{name} is {path}" for name, path in (("chromium", binary),
                                                    ("chromedriver", driver)) if path]
    return f"no {' and no '.join(missing)} on PATH" + (f" ({found[0]})" if found else "")


def test_the_skip_reason_names_only_what_is_missing(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "chromium"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MLFUNNEL_CHROMIUM", raising=False)
    assert missing_browser_parts(*chromium_paths()) == (
        f"no chromedriver on PATH (chromium is {tool})")
    tool.rename(tmp_path / "chromedriver")
    assert missing_browser_parts(*chromium_paths()) == (
        f"no chromium on PATH (chromedriver is {tmp_path / 'chromedriver'})")
    (tmp_path / "chromedriver").unlink()
    assert missing_browser_parts(*chromium_paths()) == "no chromium and no chromedriver on PATH"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary, driver_path = chromium_paths()
    missing = missing_browser_parts(binary, driver_path)
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"headless Chromium is missing ({missing}): .ci/run installs chromium "
                        "and chromium-driver")
        pytest.skip(missing)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("selenium is missing: it is in the test extra (pip install -e '.[test]')")
        pytest.skip("selenium is not installed")

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,1600"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: Any, path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Load a file; return its console messages and every URL the page requested."""
    browser.get_log("browser")
    browser.get_log("performance")
    browser.get(path.as_uri())
    console = browser.get_log("browser")
    requests = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    return console, requests


def png_colours(png: bytes) -> int:
    """How many distinct colours a PNG holds (8-bit RGB/RGBA, as Chromium writes them)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, b""
    width = height = colour_type = 0
    while position < len(png):
        (length,) = struct.unpack(">I", png[position:position + 4])
        kind = png[position + 4:position + 8]
        body = png[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour_type in (2, 6)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + predictor) & 0xFF
        colours.update(bytes(line[i:i + channels]) for i in range(0, stride, channels * 3))
        previous = line
    return len(colours)


@pytest.mark.browser
def test_the_page_loads_in_chromium_without_errors_or_requests(
        pytester: pytest.Pytester, browser: Any) -> None:
    make_project(pytester)
    write_history(pytester)
    run_report(pytester)
    page = pytester.path / "out" / "report.html"
    console, requests = open_page(browser, page)
    assert [m for m in console if m["level"] in ("SEVERE", "WARNING")] == []
    assert requests == [page.as_uri()]
    script = "return Array.from(document.querySelectorAll('#funnel .band'), b => b.dataset.gate)"
    assert browser.execute_script(script) == ["data", "problem", "model", "maintenance"]
    assert browser.execute_script("return document.images.length") == 0
    assert browser.execute_script(
        "return document.querySelectorAll('[onerror]').length") == 0
    assert browser.execute_script(
        "return document.querySelectorAll('#history-chart .point').length") == 4
    # The funnel is drawn at a real size, not collapsed.
    box = browser.execute_script(
        "const r = document.getElementById('funnel').getBoundingClientRect();"
        "return [r.width, r.height]")
    assert box[0] > 500 and box[1] > 150
    assert png_colours(browser.get_screenshot_as_png()) > 40
    pdf = base64.b64decode(browser.print_page())  # the print stylesheet lays out to paper
    assert pdf.startswith(b"%PDF") and b"/Page" in pdf


@pytest.mark.browser
def test_long_words_wrap_inside_the_page_in_chromium(pytester: pytest.Pytester,
                                                     browser: Any) -> None:
    """A message of one long word (a path, a token) made the table 50,000 pixels wide."""
    pytester.makepyprojecttoml(f"""
        [project]
        name = "{'churn' * 60}"
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = {{ accuracy = ">= 0.8", "{'f1_' * 60}" = ">= 0.5" }}
    """)
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "eval.json").write_text(json.dumps(
        {"accuracy": "s3://bucket/" + "x" * 5000, "f1_" * 60: 0.1}))
    result = pytester.runpytest("--funnel", "--funnel-html=out/report.html")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["accuracy in reports/eval.json is 's3://bucket/xxx*… (5012 "
                                 "characters), not a number"])
    page = pytester.path / "out" / "report.html"
    open_page(browser, page)
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    assert browser.execute_script(
        "return Array.from(document.querySelectorAll('table.criteria'), t => "
        "t.getBoundingClientRect().right <= t.parentElement.getBoundingClientRect().right)"
    ) == [True]
    # the badge of the evidence column stays whole
    assert browser.execute_script(
        "const e = document.querySelector('.ev'); return e.getClientRects().length") == 1


@pytest.mark.browser
def test_the_request_check_sees_a_page_that_fetches(tmp_path: Path, browser: Any) -> None:
    """The no-request assertion above can fail: a page with an external image trips it."""
    page = tmp_path / "fetching.html"
    page.write_text(textwrap.dedent("""
        <!doctype html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>
    """))
    console, requests = open_page(browser, page)
    assert "http://127.0.0.1:9/x.png" in requests
    assert any(m["level"] == "SEVERE" for m in console)
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body></body></html>")
    open_page(browser, blank)
    assert png_colours(browser.get_screenshot_as_png()) < 5

"""Outputs are sanitized and honest: control characters and Markdown from data are escaped,
a requested output that cannot be written fails the run, stale temporary files go."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_mlfunnel.render.escape import controls, markdown
from pytest_mlfunnel.render.markdown import render_markdown

#: A terminal hyperlink (OSC 8), a colour change, a bell and a window-title change.
HOSTILE = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b[31mred\x1b[0m\x07\x1b]0;pwned\x07"
IMAGE = "![pix](https://evil.example/p.png)"


class ReasonServer:
    """A real server on 127.0.0.1 whose reason phrase carries escape sequences."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(503, f"down {HOSTILE}")
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def reason_server() -> Iterator[ReasonServer]:
    server = ReasonServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def hostile_project(pytester: pytest.Pytester, port: int) -> None:
    pytester.makepyprojecttoml(f"""
        [project]
        name = "wine-triage"

        [tool.mlfunnel]
        funnel = ["data", "model", "deployment"]

        [tool.mlfunnel.data.labels]
        dataset = "data/train.csv"
        columns.label = {{ values = ["red", "white"] }}

        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = {{ "*" = ">= 0.9" }}

        [tool.mlfunnel.deployment.health]
        http = "http://127.0.0.1:{port}/health"
    """)
    (pytester.path / "data").mkdir()
    with (pytester.path / "data" / "train.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["label"]] + [[r] for r in ["red", "white", HOSTILE,
                                                            IMAGE] * 5])
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "eval.json").write_text(json.dumps({f"acc{HOSTILE}": 0.5}))


def test_control_characters_from_data_are_shown_escaped(
        pytester: pytest.Pytester, reason_server: ReasonServer,
        monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]) -> None:
    hostile_project(pytester, reason_server.port)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("--funnel", "-v", "-rA", *xdist_args)
    assert result.ret == 1
    terminal = result.stdout.str() + result.stderr.str()
    text = summary.read_text(encoding="utf-8")
    for name, shown in (("terminal", terminal), ("step summary", text)):
        for char in "\x1b\x07\x9b":
            assert char not in shown, f"{name} carries {char!r}"
    shown = r"\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b[31mred\x1b[0m\x07\x1b]0;pwned\x07"
    assert f"status 503 down {shown} (expected 200)" in terminal  # the reason phrase
    assert f"metrics there: acc{shown}" in terminal  # a metric name
    assert f"e.g. '{shown}'" in terminal  # a data value
    assert r"down \\x1b\]8;;https://evil.example\\x07click" in text


def test_control_characters_from_data_are_shown_escaped_in_the_html_report(
        pytester: pytest.Pytester, reason_server: ReasonServer) -> None:
    hostile_project(pytester, reason_server.port)
    assert pytester.runpytest("--funnel", "--funnel-html=report.html").ret == 1
    page = (pytester.path / "report.html").read_text(encoding="utf-8")
    for char in "\x1b\x07\x9b":
        assert char not in page, f"the page carries {char!r}"
    shown = r"\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b[31mred\x1b[0m\x07\x1b]0;pwned\x07"
    assert f"status 503 down {shown} (expected 200)" in page  # the reason phrase
    assert f"acc{shown}" in page  # a metric name
    assert f"e.g. &#x27;{shown}&#x27;" in page  # a data value, quotes escaped as HTML


def test_markdown_in_data_does_not_render_in_the_step_summary(
        pytester: pytest.Pytester, reason_server: ReasonServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hostile_project(pytester, reason_server.port)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.runpytest("--funnel")
    text = summary.read_text(encoding="utf-8")
    assert "![pix](" not in text and "[pix](" not in text
    assert r"!\[pix\](https://evil.example/p.png)" in text


def test_the_step_summary_title_keeps_the_space_before_the_release(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyprojecttoml("""
        [project]
        name = "wine-triage"
        [tool.mlfunnel]
        funnel = ["data"]
        [tool.mlfunnel.data.docs]
        files = ["pyproject.toml"]
    """)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert pytester.runpytest("--funnel", "--funnel-record=v1.2.0").ret == 0
    assert summary.read_text(encoding="utf-8").startswith(
        "### ml funnel · wine-triage v1.2.0\n")


def test_markdown_escaping_keeps_the_words() -> None:
    assert markdown("a*b*_c_ `x` [l](u) ~s~ $m$ | <i>") == (
        r"a\*b\*\_c\_ \`x\` \[l\](u) \~s\~ \$m\$ \| &lt;i&gt;")
    assert controls("a\x1b[1mb\nc\x9bd\te") == "a\\x1b[1mb\nc\\x9bd\\x09e"
    report = {"project": "p[x](y)", "release": "v*1*", "verdict": "v", "stage": 0,
              "gates": []}
    assert render_markdown(report).startswith(r"### ml funnel · p\[x\](y) v\*1\*")


# --------------------------------------------------------------------------- unwritable outputs
PASSING = """
    [tool.mlfunnel]
    funnel = ["data"]
    [tool.mlfunnel.data.docs]
    files = ["pyproject.toml"]
"""


@pytest.mark.parametrize(("option", "message"), [
    ("--funnel-json=out", "--funnel-json: out: is a directory"),
    ("--funnel-html=out", "--funnel-html: out: is a directory"),
    ("--funnel-json=notes.txt/report.json",
     "--funnel-json: notes.txt/report.json: notes.txt is not a directory"),
    ("--funnel-html=notes.txt/deeper/report.html",
     "--funnel-html: notes.txt/deeper/report.html: notes.txt is not a directory"),
])
def test_an_output_that_cannot_be_written_is_a_usage_error_before_the_run(
        pytester: pytest.Pytester, option: str, message: str) -> None:
    pytester.makepyprojecttoml(PASSING)
    (pytester.path / "out").mkdir()
    (pytester.path / "notes.txt").write_text("a file\n")
    result = pytester.runpytest("--funnel", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(("options", "message"), [
    (["--funnel-json=pyproject.toml"],
     "--funnel-json: pyproject.toml: the config file, which this run reads"),
    (["--funnel-html=.mlfunnel/history.jsonl"],
     "--funnel-html: .mlfunnel/history.jsonl: the history file, which this run reads"),
    (["--funnel-json=./out.txt", "--funnel-html=out.txt"],
     "--funnel-json: ./out.txt: given for both --funnel-html and --funnel-json"),
], ids=["json-over-the-config", "html-over-the-history", "one-file-twice"])
def test_a_report_is_never_written_over_the_config_or_the_history(
        pytester: pytest.Pytester, options: list[str], message: str) -> None:
    pytester.makepyprojecttoml(PASSING)
    assert pytester.runpytest("--funnel", "--funnel-record=v1").ret == 0
    kept = [pytester.path / "pyproject.toml", pytester.path / ".mlfunnel" / "history.jsonl"]
    before = [path.read_bytes() for path in kept]
    result = pytester.runpytest("--funnel", *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.startswith("ERROR")] == [
        f"ERROR: {message}; give the output a path of its own"]
    assert [path.read_bytes() for path in kept] == before
    assert not (pytester.path / "out.txt").exists()


@pytest.mark.parametrize(("option", "target", "kind"), [
    ("--funnel-json", "eval.json", "an mlfunnel JSON report"),
    ("--funnel-html", "reports/index.html", "an mlfunnel HTML report"),
], ids=["json-over-an-evidence-file", "html-over-a-page-of-the-project"])
def test_a_report_is_not_written_over_a_file_it_did_not_write(
        pytester: pytest.Pytester, option: str, target: str, kind: str) -> None:
    """An output pointed at a metrics file the run reads, or at any other file of the
    project, leaves it as it was; a report the funnel wrote before is replaced."""
    pytester.makepyprojecttoml(PASSING)
    (pytester.path / "reports").mkdir()
    evidence = {"eval.json": '{"accuracy": 0.91}\n', "reports/index.html": "<p>ours</p>\n"}
    for name, text in evidence.items():
        (pytester.path / name).write_text(text)
    result = pytester.runpytest("--funnel", f"{option}={target}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.startswith("ERROR")] == [
        f"ERROR: {option}: {target}: holds a file the funnel did not write (not {kind}); "
        "it is left as it is: give the output a path of its own, or remove the file"]
    assert {name: (pytester.path / name).read_text() for name in evidence} == evidence
    # a report of an earlier run, and an empty file, are replaced
    (pytester.path / "eval.json").write_text("")
    (pytester.path / "reports" / "index.html").unlink()
    assert pytester.runpytest("--funnel", f"{option}={target}").ret == 0
    first = (pytester.path / target).read_text()
    assert pytester.runpytest("--funnel", f"{option}={target}").ret == 0
    assert (pytester.path / target).read_text() != ""
    assert "mlfunnel" in first


@pytest.mark.skipif(sys.platform == "win32", reason="no /dev/null or named pipes")
@pytest.mark.parametrize("option", ["--funnel-json", "--funnel-html"])
def test_an_output_that_is_a_device_or_a_pipe_is_refused_not_replaced(
        pytester: pytest.Pytester, option: str) -> None:
    """``--funnel-json=/dev/null`` as root once put a regular file in the place of
    /dev/null; a link to it here shows the same without touching the real one."""
    pytester.makepyprojecttoml(PASSING)
    (pytester.path / "null").symlink_to(os.devnull)
    os.mkfifo(pytester.path / "pipe")
    for target, what in (("null", "a character device"), ("pipe", "a FIFO (named pipe)")):
        result = pytester.runpytest_subprocess("--funnel", f"{option}={target}", timeout=120)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {option}: {target}: is {what}, not a regular "
                                     "file (give the path of a file to write)"])
    assert (pytester.path / "null").is_symlink()
    assert stat.S_ISFIFO((pytester.path / "pipe").lstat().st_mode)


def test_a_history_that_is_a_directory_is_a_usage_error_when_recording(
        pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PASSING.replace('funnel = ["data"]',
                                               'funnel = ["data"]\n    history = "runs"'))
    (pytester.path / "runs").mkdir()
    result = pytester.runpytest("--funnel", "--funnel-record=v1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --funnel-record: runs: is a directory (the history file, "
        "tool.mlfunnel.history)"])
    # without --funnel-record the history is only read
    assert pytester.runpytest("--funnel").ret == 0


@pytest.mark.skipif(sys.platform == "win32", reason="no POSIX file modes")
@pytest.mark.parametrize(("option", "target", "shown", "what"), [
    ("--funnel-record=v2", ".mlfunnel/history.jsonl",
     "--funnel-record: .mlfunnel/history.jsonl", " (the history file, tool.mlfunnel.history)"),
    ("--funnel-json=r.json", "r.json", "--funnel-json: r.json", ""),
], ids=["history", "report"])
def test_a_file_made_read_only_is_not_replaced_even_by_root(
        pytester: pytest.Pytester, option: str, target: str, shown: str, what: str) -> None:
    """A history (or report) someone chmod-ed to 0444 to keep it was replaced all the same:
    the writer renames a new file over it, which the folder allows, as root or not."""
    pytester.makepyprojecttoml(PASSING)
    assert pytester.runpytest("--funnel", "--funnel-record=v1", "--funnel-json=r.json").ret == 0
    kept = pytester.path / target
    kept.chmod(0o444)
    before = kept.read_bytes()
    result = pytester.runpytest("--funnel", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.startswith("ERROR")] == [
        f"ERROR: {shown}: is read-only (mode 0444): make it writable to replace it, or give "
        f"another path{what}"]
    assert kept.read_bytes() == before and stat.S_IMODE(kept.stat().st_mode) == 0o444


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_usage_error_before_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PASSING)
    locked = pytester.path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = pytester.runpytest("--funnel", "--funnel-json=locked/r.json")
    finally:
        locked.chmod(0o755)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --funnel-json: locked/r.json: cannot create files in "
                                 "locked (not writable)"])


def test_an_output_that_cannot_be_written_at_the_end_fails_the_run(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    pytester.makepyprojecttoml(PASSING)
    # a test of the project takes the report's place while the run goes on
    pytester.makepyfile(test_takes_the_place="""
        import os

        def test_takes_the_place():
            os.makedirs("out/report.json")
            os.makedirs("out/report.html")
            os.makedirs(".mlfunnel/history.jsonl")
    """)
    (pytester.path / "out").mkdir()
    result = pytester.runpytest("--funnel", "--funnel-json=out/report.json",
                                "--funnel-html=out/report.html", "--funnel-record=v1", *xdist_args)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*stage reached: data (1/1)*",
        "*error: could not write out/report.json: Is a directory",
        "*error: could not record v1 in .mlfunnel/history.jsonl: Is a directory",
        "*error: could not write out/report.html: Is a directory",
    ])


# --------------------------------------------------------------------------- stale temp files
def test_stale_temporary_history_files_are_removed_when_the_history_is_next_written(
        pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PASSING)
    folder = pytester.path / ".mlfunnel"
    folder.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True, timeout=60)
    dead = folder / f".history.jsonl.{gone.stdout.strip()}.k1l2m3.tmp"  # its writer was killed
    old = folder / ".history.jsonl.q9w8e7.tmp"  # no pid in the name, an hour old
    live = folder / f".history.jsonl.{os.getpid()}.a1b2c3.tmp"  # a live writer, just now
    foreign = folder / ".other.jsonl.x1y2z3.tmp"  # not ours
    for path in (dead, old, live, foreign):
        path.write_bytes(b"x" * 1000)
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(foreign, (hour_ago, hour_ago))
    assert pytester.runpytest("--funnel").ret == 0
    assert dead.exists() and old.exists()  # reading the history removes nothing
    assert pytester.runpytest("--funnel", "--funnel-record=v1").ret == 0
    assert not dead.exists() and not old.exists()
    assert live.exists() and foreign.exists()
    assert [p.name for p in folder.glob(".history.jsonl.*.tmp")] == [live.name]


def test_an_xfail_reason_shows_control_characters_escaped(
        pytester: pytest.Pytester, reason_server: ReasonServer) -> None:
    hostile_project(pytester, reason_server.port)
    pytester.makepyprojecttoml((pytester.path / "pyproject.toml").read_text().replace(
        'funnel = ["data", "model", "deployment"]',
        'funnel = ["data", "model", "deployment"]\nrequire = "none"'))
    result = pytester.runpytest("--funnel", "-rx")
    terminal = result.stdout.str()
    assert "\x1b" not in terminal and "\x07" not in terminal
    assert (r"report only (require = none): http://127.0.0.1:" in terminal
            and r"status 503 down \x1b]8;;https://evil.example\x07click" in terminal)


# --------------------------------------------------------------------------- strict JSON
INFINITE_KIND = """
from pytest_mlfunnel.api import CheckConfig, CheckKind, Criterion, Outcome, ExpectationField


class RatioConfig(CheckConfig):
    ratio: ExpectationField


class RatioKind(CheckKind[RatioConfig]):
    key = "ratio"
    evidence = "measured"
    config_model = RatioConfig

    def plan(self, check, ctx):
        return [Criterion("up", lambda ev: Outcome.compare("ratio", float("inf"), check.ratio)),
                Criterion("nan", lambda ev: Outcome.failed("no ratio", float("nan"), "<= 1"))]


def pytest_mlfunnel_check_kinds():
    return [RatioKind]
"""


def test_an_infinite_or_nan_observed_value_leaves_the_report_and_history_valid_json(
        pytester: pytest.Pytester) -> None:
    """json.dumps writes Infinity and NaN, which no strict reader (jq, JSON.parse, a CI
    expression's fromJSON) accepts: the whole report was unreadable for one value."""
    pytester.makeconftest(INFINITE_KIND)
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.growth]
        ratio = ">= 2"
    """)
    result = pytester.runpytest("--funnel", "--funnel-json=r.json", "--funnel-record=v1")
    result.assert_outcomes(passed=1, failed=1)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    report = json.loads((pytester.path / "r.json").read_text(), parse_constant=refuse)
    observed = [c["observed"] for c in report["gates"][0]["criteria"]]
    assert observed == ["inf", "nan"]
    line = (pytester.path / ".mlfunnel" / "history.jsonl").read_text()
    assert json.loads(line, parse_constant=refuse)["release"] == "v1"

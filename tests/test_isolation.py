"""Hostile inputs end as ``error`` criteria, in bounded time, while the rest of the run goes on.

Runs that could hang (a FIFO waits for a writer forever) go through a subprocess with a
timeout, so a regression fails here instead of stopping the suite.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

pl = pytest.importorskip("polars")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and Unix sockets")

#: a hang is a failure: every run that could block is a subprocess bounded by this
BOUND_S = 60


def frame(rows: int = 50) -> Any:
    return pl.DataFrame({"id": list(range(rows)), "score": [i / rows for i in range(rows)],
                         "flag": [i % 2 == 0 for i in range(rows)]})


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    """Criteria of the JSON report by ``check::criterion``."""
    data = json.loads((pytester.path / "report.json").read_text())
    return {"::".join(c["id"].split("::")[-2:]): c for g in data["gates"] for c in g["criteria"]}


def bounded(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", *args,
                                         timeout=BOUND_S)


# --------------------------------------------------------------------------- non-regular files
def test_a_fifo_as_a_dataset_is_refused_before_opening_and_the_run_goes_on(
        pytester: pytest.Pytester) -> None:
    frame().write_parquet(pytester.path / "good.parquet")
    os.mkfifo(pytester.path / "pipe.parquet")
    (pytester.path / "parts").mkdir()
    frame().write_parquet(pytester.path / "parts" / "a.parquet")
    os.mkfifo(pytester.path / "parts" / "b.parquet")
    os.mkfifo(pytester.path / "metrics.json")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.pipe]
dataset = "pipe.parquet"
rows = ">= 1"
columns.id = { nulls = "== 0" }

[tool.mlfunnel.data.parts]
dataset = "parts/*.parquet"
rows = ">= 1"

[tool.mlfunnel.data.good]
dataset = "good.parquet"
rows = ">= 1"

[tool.mlfunnel.model.quality]
metrics = "metrics.json"
expect = { accuracy = ">= 0.8" }
""")
    result = bounded(pytester, "--funnel-json", "report.json")
    assert result.ret == 1
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    found = criteria(pytester)
    assert {k: c["status"] for k, c in found.items()} == {
        "pipe::rows": "error", "pipe::id.nulls": "error", "parts::rows": "error",
        "good::rows": "passed", "quality::accuracy": "error"}
    refused = ("is a FIFO (named pipe), not a regular file; refused before opening it "
               "(reading it could wait forever)")
    assert found["pipe::rows"]["message"] == f"pipe.parquet: {refused}"
    assert found["parts::rows"]["message"] == f"parts/*.parquet: parts/b.parquet {refused}"
    assert found["quality::accuracy"]["message"] == f"metrics.json: {refused}"


def test_a_unix_socket_as_a_dataset_is_refused_naming_what_it_is(
        pytester: pytest.Pytester) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # relative to the test's directory (pytester's cwd): a socket path has ~100 bytes
        server.bind("live.csv")
        pytester.makepyprojecttoml("""
[tool.mlfunnel.data.live]
dataset = "live.csv"
rows = ">= 1"
""")
        result = bounded(pytester, "--funnel-json", "report.json")
    finally:
        server.close()
    assert result.ret == 1
    assert criteria(pytester)["live::rows"]["message"].startswith(
        "live.csv: is a socket, not a regular file; refused before opening it")


def test_a_fifo_as_a_drift_reference_does_not_hang_collection_or_the_run(
        pytester: pytest.Pytester) -> None:
    frame().write_parquet(pytester.path / "current.parquet")
    os.mkfifo(pytester.path / "reference.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.drift]
drift = { reference = "reference.parquet", current = "current.parquet" }
expect = { psi = "<= 0.2" }
""")
    collected = bounded(pytester, "--collect-only", "-q")
    assert collected.ret == 0
    collected.stdout.fnmatch_lines(["pyproject.toml::data::drift::psi"])
    result = bounded(pytester, "--funnel-json", "report.json")
    assert result.ret == 1
    assert criteria(pytester)["drift::psi"]["message"] == (
        "reference.parquet: is a FIFO (named pipe), not a regular file; refused before opening "
        "it (reading it could wait forever)")
    assert not list((pytester.path / ".mlfunnel").glob("drift-reference-*.json"))


# --------------------------------------------------------------------------- one rule, one error
def queries(log: Path) -> list[list[str]]:
    return [line.split("\t") for line in log.read_text().splitlines()]


def test_a_rule_that_cannot_apply_errors_only_its_own_criterion(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    duckdb.sql("COPY (SELECT i AS id, i % 2 = 0 AS flag, NULL AS empty, "
               "{'a': i, 'b': 'x'} AS nested, 'p' || (i % 3) AS plan FROM range(100) t(i)) "
               f"TO '{pytester.path / 'train.parquet'}' (FORMAT parquet)")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.train]
dataset = "train.parquet"
rows = ">= 1"
columns.flag = { values = ["yes", "no"] }
columns.empty = { values = [1, 2], nulls = "<= 100%" }
columns.nested = { min_share = "5%", nulls = "== 0" }
columns.id = { unique = true, min = 0 }
columns.plan = { values = ["p0", "p1", "p2"], min_share = "10%" }
""")
    log = pytester.path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    found = criteria(pytester)
    errors = {k: c["message"] for k, c in found.items() if c["status"] == "error"}
    assert errors == {
        "train::flag.values": "flag: 'yes' is not a boolean, but flag is bool",
        "train::empty.values": "empty: values needs a column of numbers, strings, booleans or "
                               "dates; empty is other (nested or untyped)",
        "train::nested.min_share": "nested: min_share needs a column of numbers, strings, "
                                   "booleans or dates; nested is other (nested or untyped)",
    }
    assert {k for k, c in found.items() if c["status"] == "passed"} == {
        "train::rows", "train::empty.nulls", "train::nested.nulls", "train::id.unique",
        "train::id.min", "train::plan.values", "train::plan.min_share"}
    result.assert_outcomes(passed=7, failed=3)
    # rules that cannot apply are known from the schema: the rest is still one pass
    assert [q[1] for q in queries(log)].count("aggregate") == 1


def test_a_column_that_breaks_while_scanning_errors_only_its_criteria(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # DuckDB types column b as an integer from the first rows; a text value far below makes
    # every query that reads b fail, and only those
    lines = ["id,b,c", *(f"{i},{i},x{i % 3}" for i in range(30_000)), "30000,abc,x1"]
    (pytester.path / "late.csv").write_text("\n".join(lines) + "\n")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.late]
dataset = "late.csv"
rows = ">= 1"
columns.id = { nulls = "== 0", unique = true }
columns.b = { max = 1000000 }
columns.c = { values = ["x0", "x1", "x2"] }
""")
    log = pytester.path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json", "report.json")
    found = criteria(pytester)
    assert {k: c["status"] for k, c in found.items()} == {
        "late::rows": "passed", "late::id.nulls": "passed", "late::id.unique": "passed",
        "late::b.max": "error", "late::c.values": "passed"}
    assert found["late::b.max"]["message"].startswith(
        "late.csv: cannot read as csv: Conversion Error")
    assert "cause" not in found["late::b.max"].get("extra", {})
    # one pass, then count(*) and halves of the failed pass: bounded, never one per criterion
    assert [q[1] for q in queries(log)].count("aggregate") <= 8


# --------------------------------------------------------------------------- fails once
MANY = """
[tool.mlfunnel.data.train]
dataset = "data/trian.parquet"
rows = ">= 1"
duplicates = "== 0"
columns.id = { nulls = "== 0", unique = true, min = 0 }
"""


@pytest.mark.xdist_matters  # each worker process opens the source once
def test_a_missing_file_fails_once_and_the_other_criteria_point_at_the_first(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    pytester.makepyprojecttoml(MANY)
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json", *xdist_args)
    result.assert_outcomes(failed=5)
    found = criteria(pytester)
    full = (f"data/trian.parquet: file not found (expected at {pytester.path}/data/"
            "trian.parquet; an earlier CI step should write it)")
    messages = [c["message"] for c in found.values()]
    assert {c["extra"]["cause"] for c in found.values()} == {
        "data/trian.parquet: file not found"}
    if not xdist_args:
        assert messages == [full] + ["data/trian.parquet: file not found (see data::train::rows)"
                                     ] * 4
    else:  # each worker opens the source itself: one full message per worker at most
        assert 1 <= messages.count(full) <= 2
        assert all(m == full or (m.startswith("data/trian.parquet: file not found (see "
                                              "data::train::")) for m in messages)
    result.stdout.fnmatch_lines(["*data/trian.parquet: file not found -- 5 criteria*"])
    # the full text once per process; the short summary's FAILED lines are cut at the
    # terminal width, which differs between a terminal and a worker of the outer run
    blocks = "\n".join(line for line in result.stdout.lines if not line.startswith("FAILED "))
    assert blocks.count("expected at") <= (1 if not xdist_args else 2)


def test_a_file_that_cannot_be_opened_is_not_opened_again(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    (pytester.path / "oneline.csv").write_text("x" * 3_000_000 + "\n")
    pytester.makepyprojecttoml(MANY.replace("data/trian.parquet", "oneline.csv"))
    log = pytester.path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(failed=5)
    assert [q[1] for q in queries(log)] == ["open"]
    found = list(criteria(pytester).values())
    assert found[0]["message"].startswith("oneline.csv: cannot read as csv: Invalid Input Error")
    cause = found[0]["extra"]["cause"]
    assert cause.startswith("oneline.csv: cannot read as csv: Invalid Input Error")
    assert len(cause) <= len("oneline.csv: ") + 80
    assert [c["message"] for c in found[1:]] == [f"{cause} (see data::train::rows)"] * 4


def test_an_unreachable_metrics_server_is_asked_once(pytester: pytest.Pytester) -> None:
    import http.server
    import threading

    asked: list[str] = []

    class Down(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(503, "Service Unavailable")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Down)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        pytester.makepyprojecttoml(f"""
[tool.mlfunnel.model.live]
metrics = "{url}"
expect = {{ accuracy = ">= 0.8", f1 = ">= 0.7", latency = "<= 200" }}
""")
        result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                    "report.json")
    finally:
        server.shutdown()
        server.server_close()
    result.assert_outcomes(failed=3)
    assert asked == ["/metrics"]
    found = list(criteria(pytester).values())
    cause = f"{url}: HTTP 503 Service Unavailable"
    assert [c["message"] for c in found] == [cause] + [f"{cause} (see model::live::accuracy)"] * 2
    assert {c["extra"]["cause"] for c in found} == {cause}


@pytest.mark.parametrize(("check", "source"), [
    ('dataset = { url = "sqlite:///ops/absent.db", table = "events" }\nrows = ">= 1"\n'
     'columns.id = { nulls = "== 0", unique = true }', "sqlite:///ops/absent.db table events"),
    ('metrics = { url = "sqlite:///ops/absent.db", query = "select 1 as a, 2 as b, 3 as c" }\n'
     'expect = { a = ">= 1", b = ">= 1", c = ">= 1" }', "sqlite:///ops/absent.db"),
], ids=["table", "metrics"])
def test_a_database_that_cannot_be_opened_fails_once(pytester: pytest.Pytester,
                                                      check: str, source: str) -> None:
    pytester.makepyprojecttoml(f"[tool.mlfunnel.data.events]\n{check}\n")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(failed=3)
    found = list(criteria(pytester).values())
    cause = f"{source}: database file not found"
    assert found[0]["message"] == f"{cause} ({pytester.path}/ops/absent.db)"
    first = found[0]["id"].split("::", 1)[1]
    assert [c["message"] for c in found[1:]] == [f"{cause} (see {first})"] * 2
    assert {c["extra"]["cause"] for c in found} == {cause}


# --------------------------------------------------------------------------- http headers
def test_a_header_value_outside_latin_1_is_a_config_error_naming_the_header(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTE", "naïve — ok")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.deployment.health]
http = "http://127.0.0.1:9/health"
headers = { X-Note = "${NOTE}" }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines([
        "ERROR: pyproject.toml: tool.mlfunnel.deployment.health.headers: header 'X-Note': the "
        "value holds U+2014 at character 7, outside Latin-1: HTTP header values are Latin-1 "
        "text (percent-encode or base64 it)"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_header_that_cannot_be_sent_is_named_instead_of_a_timeout() -> None:
    import http.server
    import threading
    import time

    from pytest_mlfunnel.sources.http_metrics import http_call

    asked: list[str] = []

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.perf_counter()
        answer = http_call("GET", f"http://127.0.0.1:{server.server_address[1]}/health",
                           headers={"Authorization": "Bearer tøken→x"}, timeout=5.0)
        elapsed = time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()
    assert answer.failure == (
        "not sent: header 'Authorization': the value holds U+2192 at character 13, outside "
        "Latin-1: HTTP header values are Latin-1 text (percent-encode or base64 it)")
    assert not answer.timed_out and elapsed < 2.5
    assert asked == []

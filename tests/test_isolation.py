"""Hostile inputs end as ``error`` criteria, in bounded time, while the rest of the run goes on.

Runs that could hang (a FIFO waits for a writer forever) go through a subprocess with a
timeout, so a regression fails here instead of stopping the suite.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import sys
from typing import Any

import pytest

pl = pytest.importorskip("polars")
for _module in ("duckdb", "narwhals", "pyarrow"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module)

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

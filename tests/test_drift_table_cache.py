"""A drift reference in a database is cached too, keyed on the version the check names."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFIG = """
[tool.mlfunnel.sources]
training = {{ url = "sqlite:///warehouse.db", table = "training" }}

[tool.mlfunnel.data.drift]
drift = {{ reference = "training", current = "live.parquet" }}
columns = ["amount", "plan"]
expect = {{ psi = "< 0.25" }}
{version}
"""


def write_data(path: Path) -> None:
    import polars as pl

    with sqlite3.connect(path / "warehouse.db") as conn:
        conn.execute("CREATE TABLE training (amount REAL, plan TEXT, loaded_at TEXT)")
        conn.executemany("INSERT INTO training VALUES (?, ?, ?)",
                         [(float(i % 50), "pro" if i % 3 else "basic", "2024-06-01")
                          for i in range(300)])
    conn.close()
    pl.DataFrame({"amount": [float(i % 50) for i in range(200)],
                  "plan": ["pro" if i % 3 else "basic" for i in range(200)]}
                 ).write_parquet(path / "live.parquet")


def run(pytester: pytest.Pytester, name: str) -> tuple[pytest.RunResult, list[tuple[str, str]]]:
    log = pytester.path / f"{name}.log"
    pytester._monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))  # type: ignore[attr-defined]
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "-p", "no:xdist",
                                "--funnel-json", "report.json")
    lines = log.read_text().splitlines() if log.exists() else []
    return result, [(line.split("\t")[1], line.split("\t")[2]) for line in lines]


def reference_reads(sent: list[tuple[str, str]]) -> list[str]:
    """What the run asked of the reference table beyond its schema and version."""
    return [purpose for purpose, source in sent if source.startswith("training")
            and purpose not in ("schema", "version")]


def cached(pytester: pytest.Pytester) -> list[Path]:
    return sorted((pytester.path / ".mlfunnel/cache").glob("drift-reference-*.json"))


def test_a_version_column_caches_the_summary_until_the_table_changes(
        pytester: pytest.Pytester) -> None:
    write_data(pytester.path)
    pytester.makepyprojecttoml(CONFIG.format(version='version = { column = "loaded_at" }'))
    result, first = run(pytester, "first")
    result.assert_outcomes(passed=2)
    assert "cells" in reference_reads(first) and len(cached(pytester)) == 1
    assert "sqlite:///warehouse.db" in cached(pytester)[0].read_text()

    result, second = run(pytester, "second")
    result.assert_outcomes(passed=2)
    assert reference_reads(second) == ["aggregate"]  # count(*), max(loaded_at): nothing more

    with sqlite3.connect(pytester.path / "warehouse.db") as conn:  # a new load
        conn.execute("INSERT INTO training VALUES (1.0, 'pro', '2024-07-01')")
    conn.close()
    result, third = run(pytester, "third")
    result.assert_outcomes(passed=2)
    assert "cells" in reference_reads(third) and len(cached(pytester)) == 2


def test_a_version_label_is_the_users_promise(pytester: pytest.Pytester) -> None:
    write_data(pytester.path)
    pytester.makepyprojecttoml(CONFIG.format(version='version = "2024-06"'))
    result, first = run(pytester, "first")
    result.assert_outcomes(passed=2)
    assert "cells" in reference_reads(first)
    with sqlite3.connect(pytester.path / "warehouse.db") as conn:
        conn.execute("DELETE FROM training WHERE plan = 'basic'")  # would drift badly
    conn.close()
    result, second = run(pytester, "second")
    result.assert_outcomes(passed=2)  # same label: the saved summary is used
    assert reference_reads(second) == []
    pytester.makepyprojecttoml(CONFIG.format(version='version = "2024-07"'))
    result, third = run(pytester, "third")
    result.assert_outcomes(passed=1, failed=1)  # plan.psi now sees the missing category
    assert "cells" in reference_reads(third) or "value_counts" in reference_reads(third)


def test_without_a_version_a_database_reference_is_read_every_run(
        pytester: pytest.Pytester) -> None:
    write_data(pytester.path)
    pytester.makepyprojecttoml(CONFIG.format(version=""))
    for name in ("first", "second"):
        result, sent = run(pytester, name)
        result.assert_outcomes(passed=2)
        assert "cells" in reference_reads(sent)
    assert cached(pytester) == []


def test_a_version_column_that_does_not_exist_is_an_error_naming_it(
        pytester: pytest.Pytester) -> None:
    write_data(pytester.path)
    pytester.makepyprojecttoml(CONFIG.format(version='version = { column = "loadedat" }'))
    result, _ = run(pytester, "first")
    result.assert_outcomes(failed=2)
    data = json.loads((pytester.path / "report.json").read_text())
    messages = {c["message"] for g in data["gates"] for c in g["criteria"]}
    assert messages == {"version: loadedat: no such column in training "
                        "(sqlite:///warehouse.db table training) (columns: amount, plan, "
                        "loaded_at); did you mean 'loaded_at'?"}


def test_a_version_that_is_neither_a_label_nor_a_column_is_a_config_error(
        pytester: pytest.Pytester) -> None:
    write_data(pytester.path)
    pytester.makepyprojecttoml(CONFIG.format(version='version = { max = "loaded_at" }'))
    result, _ = run(pytester, "first")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*pyproject.toml: tool.mlfunnel.data.drift.version*"])

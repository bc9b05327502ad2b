"""Deselected criteria leave the pass: ``-k`` shrinks what each source computes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFIG = """
[tool.mlfunnel.sources]
events = "events.parquet"
shop = {{ url = "sqlite:///shop.db", table = "orders" }}

[tool.mlfunnel.data.events]
dataset = "events"
rows = ">= 100"
duplicates = "<= 5%"
columns.user_id = {{ nulls = "== 0", unique = true }}
columns.amount = {{ min = 0, max = 1000 }}
columns.kind = {{ values = ["view", "buy"] }}

[tool.mlfunnel.data.orders]
dataset = "shop"
rows = ">= 1"
columns.amount = {{ max = 1000 }}
{drift}
"""

DRIFT = """
[tool.mlfunnel.data.shift]
drift = { reference = "events.parquet", current = "events.parquet" }
columns = ["amount"]
expect = { psi = "< 0.2" }
"""


#: what SQLite's pass reads beside max("amount"): a value of it that is not a number
PROBE = "max(CASE WHEN typeof(\"amount\") IN ('text', 'blob') THEN \"amount\" END)"


def write_sources(path: Path) -> None:
    import polars as pl

    pl.DataFrame({"user_id": list(range(200)),
                  "amount": [float(i % 97) for i in range(200)],
                  "kind": ["view" if i % 3 else "buy" for i in range(200)]}
                 ).write_parquet(path / "events.parquet")
    with sqlite3.connect(path / "shop.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount REAL)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 2.5) for i in range(50)])
    conn.close()


def sent(log: Path) -> list[tuple[str, str, str]]:
    """(purpose, source, SQL) of every query the run sent."""
    if not log.exists():
        return []
    lines = [line.split("\t") for line in log.read_text().splitlines()]
    return [(purpose, source, sql) for _, purpose, source, sql in lines]


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, list[tuple[str, str,
                                                                                   str]]]:
    log = pytester.path / f"queries-{len(list(pytester.path.glob('queries-*')))}.log"
    pytester._monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))  # type: ignore[attr-defined]
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", *args)
    return result, sent(log)


def passes(queries: list[tuple[str, str, str]], source: str) -> list[str]:
    return [sql for purpose, where, sql in queries if purpose == "aggregate"
            and where.startswith(source)]


@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], ["-n", "2"]], ids=["no-xdist", "n2"])
def test_selecting_one_criterion_with_k_computes_only_its_aggregates(
        pytester: pytest.Pytester, xdist: list[str]) -> None:
    write_sources(pytester.path)
    pytester.makepyprojecttoml(CONFIG.format(drift=""))
    result, everything = run(pytester, *xdist)
    result.assert_outcomes(passed=9)
    # under xdist each worker that runs an events criterion makes the whole pass
    for full in passes(everything, "events"):
        assert 'TRY_CAST("kind" AS ENUM' in full
        # the integer key's null count and the float's bounds come from the Parquet footers,
        # not from the pass
        assert 'count("user_id")' not in full and '"amount"' not in full
    footers = [sql for purpose, where, sql in everything
               if purpose == "footers" and where.startswith("events")]
    assert any("parquet_metadata" in sql for sql in footers)
    assert any('min("amount"), max("amount")' in sql for sql in footers)
    for shop in passes(everything, "shop"):  # with SQLite's probe for text in a REAL column
        listed = shop.removeprefix("SELECT ").split(' FROM ')[0].replace(PROBE, "probe")
        assert sorted(listed.split(", ")) == ["count(*)", 'max("amount")', "probe"]

    result, selected = run(pytester, "-k", "events and rows", *xdist)
    result.assert_outcomes(passed=1)
    assert passes(selected, "events") == ["SELECT count(*) FROM mlfunnel_t0 AS t"]
    assert passes(selected, "shop") == []  # the other source is not even opened
    assert [p for p, _, _ in selected] == ["open", "schema", "aggregate"]


def test_deselecting_a_drift_check_leaves_its_cells_out(pytester: pytest.Pytester) -> None:
    write_sources(pytester.path)
    pytester.makepyprojecttoml(CONFIG.format(drift=DRIFT))
    result, first = run(pytester, "-p", "no:xdist")  # writes the drift reference summary
    assert any(purpose == "cells" for purpose, _, _ in first)
    result, again = run(pytester, "-p", "no:xdist", "-k", "shift")
    result.assert_outcomes(passed=1)
    assert any(purpose == "cells" for purpose, _, _ in again)  # the current side, from cache
    result, without = run(pytester, "-p", "no:xdist", "-k", "events and amount and max")
    result.assert_outcomes(passed=1)
    # the float's maximum comes from the Parquet footers, which leave NaN out: no pass at all
    assert [p for p, _, _ in without if p in ("cells", "aggregate")] == []
    assert [sql for p, where, sql in without if p == "footers" and "parquet_metadata" not in sql
            ] == ['SELECT count(*), min("amount"), max("amount") FROM mlfunnel_t0 AS t']


def test_selecting_one_check_leaves_the_other_sources_unread(pytester: pytest.Pytester) -> None:
    write_sources(pytester.path)
    pytester.makepyprojecttoml(CONFIG.format(drift=""))
    result, queries = run(pytester, "-p", "no:xdist", "-k", "orders")
    result.assert_outcomes(passed=2)
    assert passes(queries, "events") == []
    (shop,) = passes(queries, "shop")
    assert shop == f'SELECT count(*), max("amount"), {PROBE} FROM "orders" AS t'

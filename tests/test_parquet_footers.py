"""Null counts, min and max from Parquet footers: the same answers as reading the pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.engines.protocol import Agg
from pytest_mlfunnel.engines.sql import SqlEngine
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tables import open_file

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N = 3000


def table(seed: int) -> Any:
    """Nulls in every column, NaN in the float, strings, dates, booleans."""
    day = dt.date(2026, 1, 1)
    return pa.table({
        "id": [None if i % 7 == 0 else i * seed for i in range(N)],
        "name": [None if i % 11 == 0 else f"n{(i * seed) % 97}" for i in range(N)],
        "day": [None if i % 13 == 0 else day + dt.timedelta(days=i % 400) for i in range(N)],
        "paid": [None if i % 17 == 0 else i % 3 == 0 for i in range(N)],
        "at": [None if i % 19 == 0 else dt.datetime(2026, 1, 1) + dt.timedelta(minutes=i)
               for i in range(N)],
        "score": [None if i % 5 == 0 else float("nan") if i % 9 == 0 else i / 10 * seed
                  for i in range(N)],
    })


AGGS = [Agg("rows"), *(Agg(op, c) for c in ("id", "name", "day", "paid", "at", "score")
                       for op in ("nulls", "count", "min", "max"))]


def logged(engine: SqlEngine) -> list[str]:
    purposes: list[str] = []
    run = engine._execute
    engine._execute = lambda sql, purpose: purposes.append(purpose) or run(sql, purpose)
    return purposes


def answers(tmp_path: Path, path: str, footers: bool) -> tuple[list[Any], list[str]]:
    engine = open_file(SourceSpec(path=path), tmp_path, {})
    if not footers:
        engine.footers = None
    purposes = logged(engine)
    return engine.compute(AGGS), purposes


@pytest.mark.parametrize("layout", ["one file, many row groups", "two files", "no statistics"])
def test_footers_answer_as_reading_the_pages_does(tmp_path: Path, layout: str) -> None:
    if layout == "two files":
        pq.write_table(table(1), tmp_path / "part-1.parquet", row_group_size=700)
        pq.write_table(table(3), tmp_path / "part-2.parquet", row_group_size=1000)
        path = "part-*.parquet"
    else:
        pq.write_table(table(1), tmp_path / "t.parquet", row_group_size=500,
                       write_statistics=layout != "no statistics")
        path = "t.parquet"
    from_footers, purposes = answers(tmp_path, path, footers=True)
    read, _ = answers(tmp_path, path, footers=False)
    assert from_footers == read
    assert from_footers[0] == N * (2 if layout == "two files" else 1)
    names = [f"{a.op} {a.column}" for a in AGGS]
    found = dict(zip(names, from_footers, strict=True))
    assert found["nulls id"] == sum(1 for i in range(N) if i % 7 == 0) * (
        2 if layout == "two files" else 1)
    assert found["nulls score"] == len([i for i in range(N) if i % 5 == 0 or i % 9 == 0]) * (
        2 if layout == "two files" else 1)  # NaN counted as null: the float is read
    assert found["max score"] == max(i / 10 * (3 if layout == "two files" else 1)
                                     for i in range(N) if i % 5 and i % 9)
    assert "footers" in purposes
    assert purposes.count("aggregate") == 1  # the float (and, without statistics, the rest)


def test_a_check_of_nulls_and_bounds_on_non_floats_reads_no_page(tmp_path: Path) -> None:
    pq.write_table(table(1).drop(["score"]), tmp_path / "t.parquet", row_group_size=500)
    engine = open_file(SourceSpec(path="t.parquet"), tmp_path, {})
    purposes = logged(engine)
    aggs = [a for a in AGGS if a.column != "score"]
    values = engine.compute(aggs)
    assert purposes == ["footers", "footers"]  # no aggregate pass
    engine.footers = None
    assert values == engine.compute(aggs)


def test_a_parquet_source_with_reader_options_reads_the_pages(tmp_path: Path) -> None:
    """Options such as hive partitioning add columns no footer knows."""
    folder = tmp_path / "year=2026"
    folder.mkdir()
    pq.write_table(table(1), folder / "t.parquet")
    engine = open_file(SourceSpec(path="year=*/t.parquet",
                                  options={"hive_partitioning": True}), tmp_path, {})
    assert engine.footers is None
    assert engine.compute([Agg("nulls", "id"), Agg("max", "year")]) == [
        sum(1 for i in range(N) if i % 7 == 0), 2026]

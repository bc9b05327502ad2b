"""Float columns in the pass: nulls, count, min and max count NaN as a null in one read.

A float's nulls, count, min and max are counted NaN-aware in the pass itself (NaN counted
apart, ``min(x)``, ``-min(-x)``) where NaN sorts above every number; on Parquet, its null
count, min and max come from the footers where every row group states them, and only its
NaN is counted in the pass (nothing, where the footers count NaN too). Every other aggregate
of a float keeps its probe for NaN and is read again only for a column that holds NaN. Every
answer here is checked against numpy on the same numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.engines.protocol import Agg
from pytest_mlfunnel.engines.sql import SqlEngine
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tables import open_file

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N = 4000


def columns() -> dict[str, Any]:
    """Floats of every NaN shape, each with nulls: none, some, only NaN, NaN with the sign
    bit set, zeros of both signs at the top."""
    rng = np.random.default_rng(5)
    nulls = rng.random(N) < 0.05
    clean = rng.normal(3, 2, N)
    holes = rng.normal(-1, 4, N)
    holes[rng.random(N) < 0.03] = np.nan
    signed = rng.normal(0, 1, N)
    signed[::7] = -np.nan  # NaN with its sign bit set
    zeros = -rng.random(N) - 0.5
    zeros[::11], zeros[::13] = -0.0, 0.0
    least_zero = rng.random(N)
    least_zero[::17] = 0.0  # Parquet footers state this least zero as -0.0
    return {"clean": (clean, nulls), "holes": (holes, nulls), "only_nan": (
        np.full(N, np.nan), nulls), "signed": (signed, ~nulls), "zeros": (zeros, nulls),
        "least_zero": (least_zero, nulls)}


def write(path: Path) -> dict[str, Any]:
    found = columns()
    pq.write_table(pa.table({name: pa.array(values, mask=mask) for name, (values, mask)
                             in found.items()}), path, row_group_size=1500)
    return found


def expected(values: Any, mask: Any) -> dict[str, Any]:
    kept = values[~mask & ~np.isnan(values)]
    return {"nulls": int(mask.sum() + (np.isnan(values) & ~mask).sum()), "count": kept.size,
            "min": float(kept.min()) if kept.size else None,
            "max": float(kept.max()) if kept.size else None}


def logged(engine: SqlEngine) -> list[tuple[str, str]]:
    queries: list[tuple[str, str]] = []
    run = engine._execute

    def execute(sql: str, purpose: str) -> list[tuple[Any, ...]]:
        queries.append((purpose, sql))
        return run(sql, purpose)
    engine._execute = execute
    return queries


@pytest.mark.parametrize("footers", [True, False], ids=["footers", "pages only"])
def test_nulls_count_min_and_max_of_floats_with_and_without_nan_are_read_once(
        tmp_path: Path, footers: bool) -> None:
    data = write(tmp_path / "f.parquet")
    engine = open_file(SourceSpec(path="f.parquet"), tmp_path, {})
    if not footers:
        engine.footers = None
    queries = logged(engine)
    aggs = [Agg(op, c) for c in data for op in ("nulls", "count", "min", "max")]
    found = engine.compute(aggs)
    for agg, value in zip(aggs, found, strict=True):
        want = expected(*data[agg.column or ""])[agg.op]
        assert value == want, (agg.op, agg.column, value, want)
    # a NaN in a column never shows as its min or max; the zeros' max is +0.0
    zeros_max = found[aggs.index(Agg("max", "zeros"))]
    assert zeros_max == 0.0 and math.copysign(1, zeros_max) == 1
    least = found[aggs.index(Agg("min", "least_zero"))]
    assert least == 0.0 and math.copysign(1, least) == 1
    purposes = [p for p, _ in queries if p != "settings"]
    assert purposes.count("aggregate") == 1 and "aggregate (NaN)" not in purposes
    (aggregate,) = [sql for p, sql in queries if p == "aggregate"]
    if footers:  # bounds from the footers; the pass counts NaN and bounds the NaN-only column
        assert "isnan(\"holes\")" in aggregate and "min(\"holes\")" not in aggregate
        assert "min(\"only_nan\")" in aggregate


def test_float_bounds_come_from_footers_only_where_every_row_group_states_them(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    stated, unstated = rng.normal(0, 1, N), rng.normal(5, 1, N)
    stated[::9] = unstated[::9] = np.nan
    pq.write_table(pa.table({"stated": stated, "unstated": unstated}), tmp_path / "f.parquet",
                   row_group_size=1000, write_statistics=["stated"])
    engine = open_file(SourceSpec(path="f.parquet"), tmp_path, {})
    queries = logged(engine)
    aggs = [Agg(op, c) for c in ("stated", "unstated") for op in ("min", "max", "nulls")]
    found = dict(zip([(a.op, a.column) for a in aggs], engine.compute(aggs), strict=True))
    for name, values in (("stated", stated), ("unstated", unstated)):
        assert found["min", name] == float(np.nanmin(values))
        assert found["max", name] == float(np.nanmax(values))
        assert found["nulls", name] == int(np.isnan(values).sum())
    (aggregate,) = [sql for p, sql in queries if p == "aggregate"]
    assert '"unstated"' in aggregate and 'min("stated")' not in aggregate
    bounds = [sql for p, sql in queries if p == "footers" and "count(*)," in sql]
    assert bounds and '"unstated"' not in bounds[0]


def test_footers_that_count_nan_answer_the_nulls_of_a_float_without_a_pass(
        tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    duckdb.connect().execute(
        "COPY (SELECT CASE WHEN i % 7 = 0 THEN 'nan'::DOUBLE WHEN i % 5 = 0 THEN NULL "
        "ELSE i / 3 END AS x, i / 7 AS y FROM range(5000) AS t(i)) TO "
        f"'{tmp_path / 'd.parquet'}'")
    engine = open_file(SourceSpec(path="d.parquet"), tmp_path, {})
    queries = logged(engine)
    found = engine.compute([Agg("rows"), Agg("nulls", "x"), Agg("count", "x"),
                            Agg("nulls", "y")])
    nan = sum(1 for i in range(5000) if i % 7 == 0)
    null = sum(1 for i in range(5000) if i % 7 and i % 5 == 0)
    assert found == [5000, nan + null, 5000 - nan - null, 0]
    assert {p for p, _ in queries} == {"footers"}  # the writer counted NaN: no page decoded


def test_other_aggregates_of_a_float_holding_nan_are_read_again_and_only_they(
        tmp_path: Path) -> None:
    data = write(tmp_path / "f.parquet")
    engine = open_file(SourceSpec(path="f.parquet"), tmp_path, {})
    queries = logged(engine)
    aggs = [Agg("nulls", "holes"), Agg("max", "holes"), Agg("mean", "holes"),
            Agg("mean", "clean"), Agg("min", "clean")]
    nulls, top, mean_holes, mean_clean, low = engine.compute(aggs)
    holes, clean = expected(*data["holes"]), expected(*data["clean"])
    assert (nulls, top, low) == (holes["nulls"], holes["max"], clean["min"])
    values, mask = data["holes"]
    assert mean_holes == pytest.approx(float(np.nanmean(np.where(mask, np.nan, values))))
    values, mask = data["clean"]
    assert mean_clean == pytest.approx(float(values[~mask].mean()))
    again = [sql for purpose, sql in queries if purpose == "aggregate (NaN)"]
    assert len(again) == 1  # the mean of the column that holds NaN, nothing else
    assert "avg(" in again[0] and '"clean"' not in again[0] and "count(" not in again[0]


def test_the_dataset_kind_counts_nan_as_null_and_shows_numbers_only(
        pytester: pytest.Pytester) -> None:
    data = write(pytester.path / "f.parquet")
    holes = expected(*data["holes"])
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.floats]
dataset = "f.parquet"
columns.clean = { nulls = "<= 10%", min = -100, max = 100 }
columns.holes = { nulls = "== 0", max = 10 }
columns.only_nan = { min = 0 }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=2)
    share = holes["nulls"] / N
    result.stdout.fnmatch_lines([
        f"*holes: {holes['nulls']} nulls ({share:.1%}*of {N} rows), expected == 0*",
        f"*holes: max {holes['max']:.4g}*, expected <= 10; e.g. *",
    ])
    assert "nan" not in result.stdout.str().split("holes: max")[1].splitlines()[0].lower()

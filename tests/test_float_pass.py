"""Float columns in the pass: nulls, count, min and max count NaN as a null in one read.

A float's nulls, count, min and max are counted NaN-aware in the pass itself (NaN counted
apart, ``min(x)``, ``-min(-x)``) where NaN sorts above every number; every other aggregate of
a float keeps its probe for NaN and is read again only for a column that holds NaN. Every
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
    return {"clean": (clean, nulls), "holes": (holes, nulls), "only_nan": (
        np.full(N, np.nan), nulls), "signed": (signed, ~nulls), "zeros": (zeros, nulls)}


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


def test_nulls_count_min_and_max_of_floats_with_and_without_nan_are_read_once(
        tmp_path: Path) -> None:
    data = write(tmp_path / "f.parquet")
    engine = open_file(SourceSpec(path="f.parquet"), tmp_path, {})
    queries = logged(engine)
    aggs = [Agg(op, c) for c in data for op in ("nulls", "count", "min", "max")]
    found = engine.compute(aggs)
    for agg, value in zip(aggs, found, strict=True):
        want = expected(*data[agg.column or ""])[agg.op]
        assert value == want, (agg.op, agg.column, value, want)
    # a NaN in a column never shows as its min or max; the zeros' max is +0.0
    zeros_max = found[aggs.index(Agg("max", "zeros"))]
    assert zeros_max == 0.0 and math.copysign(1, zeros_max) == 1
    purposes = [p for p, _ in queries if p != "settings"]
    assert purposes.count("aggregate") == 1 and "aggregate (NaN)" not in purposes


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

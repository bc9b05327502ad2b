"""Every engine answers the aggregate vocabulary the same way, checked against numpy."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_mlfunnel.engines.protocol import CELL_SPAN, OUTSIDE, Agg, CellGrid
from pytest_mlfunnel.kinds.base import EvalContext
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tabular import open_table, plan_aggregates

pl = pytest.importorskip("polars")

N = 400


def make_frame() -> Any:
    rng = np.random.default_rng(7)
    spend = rng.normal(50, 10, N)
    spend[::37] = np.nan
    spend_list: list[float | None] = [float(v) for v in spend]
    spend_list[5] = None
    return pl.DataFrame({
        "id": list(range(N)),
        "age": [None if i % 25 == 0 else int(v) for i, v in enumerate(rng.integers(18, 90, N))],
        "plan": rng.choice(["basic", "pro", "team"], N, p=[0.5, 0.3, 0.2]).tolist(),
        "spend": spend_list,
        "ts": [dt.datetime(2026, 1, 1) + dt.timedelta(hours=3 * i) for i in range(N)],
        "session": [i // 4 for i in range(N)],
    })


FRAME = make_frame()
ENGINES = ["parquet", "csv", "jsonl", "pandas", "polars", "polars-lazy", "pyarrow", "duckdb",
           "dask", "sqlite", "postgres"]


def _sqlite(path: Path, frame: Any) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, age INTEGER, plan TEXT, spend REAL, "
                     "ts DATETIME, session INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [
            (r["id"], r["age"], r["plan"],
             None if r["spend"] is None or math.isnan(r["spend"]) else r["spend"],
             r["ts"].isoformat(sep=" "), r["session"]) for r in frame.iter_rows(named=True)])


@pytest.fixture
def table_of(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Opens FRAME (or another polars frame) in the named engine; returns (table, ctx)."""
    cleanups: list[Any] = []

    def open_in(engine: str, frame: Any = FRAME, name: str = "t") -> tuple[Any, EvalContext]:
        shared: dict[Any, Any] = request.node.stash.setdefault(_SHARED, {})
        fixtures: dict[str, Any] = {}
        spec: SourceSpec
        if engine in ("parquet", "csv", "jsonl"):
            path = tmp_path / f"{name}.{engine}"
            getattr(frame, f"write_{'ndjson' if engine == 'jsonl' else engine}")(path)
            spec = SourceSpec(path=str(path))
        elif engine == "sqlite":
            path = tmp_path / f"{name}.db"
            _sqlite(path, frame)
            spec = SourceSpec(url=f"sqlite:///{path}", table="t")
        elif engine == "postgres":
            url = request.getfixturevalue("postgres_url")
            sqlalchemy = pytest.importorskip("sqlalchemy")
            table = f"t_{uuid.uuid4().hex[:10]}"
            db = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            with db.begin() as conn:
                conn.exec_driver_sql(f"CREATE TABLE {table} (id BIGINT, age INTEGER, plan TEXT, "
                                     "spend DOUBLE PRECISION, ts TIMESTAMP, session BIGINT)")
                conn.execute(sqlalchemy.text(
                    f"INSERT INTO {table} VALUES (:id, :age, :plan, :spend, :ts, :session)"),
                    list(frame.iter_rows(named=True)))

            def drop(db: Any = db, table: str = table) -> None:
                with db.begin() as conn:
                    conn.exec_driver_sql(f"DROP TABLE {table}")
                db.dispose()
            cleanups.append(drop)
            spec = SourceSpec(url=url, table=table)
        else:
            fixtures["frame"] = frame_in(engine, frame)
            spec = SourceSpec(fixture="frame")
        ctx = EvalContext(rootdir=tmp_path, fixtures=fixtures, shared=shared)
        return open_table(spec, ctx), ctx

    yield open_in
    for cleanup in cleanups:
        cleanup()


_SHARED = pytest.StashKey[dict[Any, Any]]()


def frame_in(engine: str, frame: Any) -> Any:
    if engine == "pandas":
        return frame.to_pandas()
    if engine == "polars":
        return frame
    if engine == "polars-lazy":
        return frame.lazy()
    if engine == "pyarrow":
        return frame.to_arrow()
    if engine == "duckdb":
        import duckdb

        return duckdb.from_arrow(frame.to_arrow())
    if engine == "dask":
        dd = pytest.importorskip("dask.dataframe")
        return dd.from_pandas(frame.to_pandas(), npartitions=3)
    raise AssertionError(engine)


def _clean(column: str) -> np.ndarray:
    values = np.array([np.nan if v is None else v for v in FRAME[column].to_list()], float)
    return values[~np.isnan(values)]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_matches_numpy(engine: str, table_of: Any) -> None:
    table, _ = table_of(engine)
    schema = table.schema()
    assert schema["plan"] == "string" and schema["spend"] == "float"
    assert schema["id"] == "int"
    assert schema["ts"] in ("datetime", "string")  # SQLite declares DATETIME
    spend, age = _clean("spend"), _clean("age")
    edges = [40.0, 50.0, 60.0]
    (rows, count, nulls, low, high, total, mean, var, distinct, duplicated, quantiles,
     histogram, counts, outside) = table.aggregate([
        Agg("rows"), Agg("count", "spend"), Agg("nulls", "spend"), Agg("min", "age"),
        Agg("max", "plan"), Agg("sum", "spend"), Agg("mean", "spend"), Agg("var", "spend"),
        Agg("distinct", "age"), Agg("duplicate_rows"), Agg("quantiles", "spend", [0.1, 0.5]),
        Agg("histogram", "spend", edges), Agg("value_counts", "plan", 10),
        Agg("not_in", "plan", ["basic", "pro"])])
    assert rows == N
    assert count == len(spend) and nulls == N - len(spend)
    assert low == int(age.min()) and high == "team"
    assert total == pytest.approx(spend.sum()) and mean == pytest.approx(spend.mean())
    assert var == pytest.approx(np.var(spend, ddof=1))
    assert distinct == len(set(age.tolist()))
    assert duplicated == 0
    expected_q = np.quantile(spend, [0.1, 0.5])
    tolerance = 0.05 if engine == "dask" else 1e-9  # Dask's quantiles are approximate
    assert quantiles == pytest.approx(expected_q.tolist(), rel=tolerance)
    reference = np.histogram(spend, [-np.inf, *edges, np.inf])[0].tolist()
    assert histogram == reference
    plans = FRAME["plan"].to_list()
    assert counts == {p: plans.count(p) for p in ("basic", "pro", "team")}
    assert list(counts) == sorted(counts, key=lambda p: -counts[p])
    assert outside == plans.count("team")


def expected_cells(values: np.ndarray, grid: CellGrid) -> list[tuple[float, int, float, float]]:
    """What ``cells`` must answer, from the grid's own definition in Python."""
    found: dict[float, list[float]] = {}
    for value in values.tolist():
        found.setdefault(grid.cell(value), []).append(value)
    return [(cell, len(v), min(v), max(v)) for cell, v in sorted(found.items())]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_counts_the_same_cells(engine: str, table_of: Any) -> None:
    """The drift kind's cells: the same ids, counts and bounds in every engine (NaN and null
    left out), with small integers grouped by value, clamps and a split cell."""
    table, _ = table_of(engine)
    spend, age = _clean("spend"), _clean("age")
    coarse = CellGrid(per_unit=10)  # cells about 10% wide: the one of 50.0 holds many values
    crowded = math.floor(10 * math.log(1 + 50.0))
    low, high = coarse.start(crowded * CELL_SPAN), coarse.start((crowded + 1) * CELL_SPAN)
    grids = {
        "spend": [CellGrid(bounds=True), CellGrid(low=40.0, high=61.5, bounds=True),
                  CellGrid(per_unit=10, refine=((crowded, low + 1, high - 1, 16),),
                           bounds=True),
                  CellGrid(per_unit=10, refine=((crowded, low + 1, high - 1, 16),),
                           bounds=True, split_only=True),
                  # a clamp inside the split cell: what it sends beyond is not counted here
                  CellGrid(per_unit=10, high=50.0, refine=((crowded, low + 1, high - 1, 16),),
                           bounds=True, split_only=True)],
        "age": [CellGrid(bounds=True, integers=True),
                CellGrid(low=20, high=80, bounds=True, integers=True)],
    }
    asked = [Agg("cells", column, grid) for column, options in grids.items() for grid in options]
    answers = table.aggregate(asked)
    for agg, answer in zip(asked, answers, strict=True):
        values = spend if agg.column == "spend" else age
        grid = agg.grid()
        if grid.split_only:  # only the split cell's values, in the same sub-cells
            values = values[[math.floor(grid.cell(v) / CELL_SPAN) == crowded for v in values]]
        expected = expected_cells(values, grid)
        assert [(c, n) for c, n, _, _ in answer] == [(c, n) for c, n, _, _ in expected], agg
        assert [float(v) for _, _, lo, hi in answer for v in (lo, hi)] == pytest.approx(
            [v for _, _, lo, hi in expected for v in (lo, hi)], rel=1e-12)
    clamped = answers[1]
    assert clamped[0][0] == -OUTSIDE and clamped[-1][0] == OUTSIDE
    assert clamped[0][1] == int((spend < 40).sum()) and clamped[-1][1] == int((spend > 61.5).sum())
    split = [c for c, _, _, _ in answers[2] if math.floor(c / CELL_SPAN) == crowded]
    assert len(split) > 4  # the crowded cell came back as sub-cells, the ends below/above
    assert split[0] == crowded * CELL_SPAN and split[-1] == crowded * CELL_SPAN + 17
    # split_only: those sub-cells alone, with the counts of the whole pass
    assert answers[3] == [row for row in answers[2] if row[0] in split]
    assert sum(n for _, n, _, _ in answers[4]) == int(((spend >= coarse.start(
        crowded * CELL_SPAN)) & (spend < high) & (spend <= 50.0)).sum()) > 0
    for cell, _, low, _ in answers[0]:
        assert grids["spend"][0].start(cell) <= low  # a cell starts at or below its values


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_answers_groups_samples_joins_and_examples(engine: str, table_of: Any
                                                                ) -> None:
    table, _ = table_of(engine)
    groups = table.grouped("plan", [Agg("rows"), Agg("mean", "spend")])
    plans = FRAME["plan"].to_list()
    assert {k: v[0] for k, v in groups.items()} == {p: plans.count(p) for p in set(plans)}
    sample = table.sample(["id", "plan"], 25, seed=3)
    assert len(sample["id"]) == 25 and len(set(sample["id"])) == 25
    assert sample == table.sample(["id", "plan"], 25, seed=3)  # reproducible
    assert len(table.sample(["id"], 10_000)["id"]) == N  # all rows when fewer
    sizes = table.group_sizes(["session"], ["median", "mean", "min", "max"])
    assert sizes == {"median": 4.0, "mean": 4.0, "min": 4.0, "max": 4.0}
    other = FRAME.filter(pl.col("id") % 5 != 0)
    other_table, _ = table_of(engine, other, name="other")
    assert table.join_match(["id"], other_table, ["id"]) == (N, other.height)
    unmatched = table.join_unmatched(["id"], other_table, ["id"])
    assert len(unmatched) == 5 and all(k[0] % 5 == 0 for k in unmatched)
    (above,) = table.aggregate([Agg("offending", "age", ("above", 85))])
    assert above == sorted({a for a in FRAME["age"].to_list() if a is not None and a > 85},
                           reverse=True)[:5]
    (outside,) = table.aggregate([Agg("offending", "plan", ("not_in", ["basic"]))])
    assert sorted(outside) == ["pro", "team"]


def test_a_file_joins_a_frame_across_engines(table_of: Any) -> None:
    table, _ = table_of("parquet")
    other, _ = table_of("polars-lazy", FRAME.head(100), name="other")
    assert table.join_match(["id"], other, ["id"]) == (N, 100)
    assert all(k[0] >= 100 for k in table.join_unmatched(["id"], other, ["id"]))


def test_aggregates_planned_at_collection_share_one_query(table_of: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    log = tmp_path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    path = tmp_path / "one.parquet"
    FRAME.write_parquet(path)
    spec = SourceSpec(path=str(path))
    shared: dict[Any, Any] = {}
    planned = [Agg("rows"), Agg("nulls", "age"), Agg("max", "ts"),
               Agg("value_counts", "plan", 5), Agg("quantiles", "spend", [0.5])]
    plan_aggregates(shared, spec, planned)
    ctx = EvalContext(rootdir=tmp_path, fixtures={}, shared=shared)
    for agg in planned:
        open_table(spec, ctx).aggregate([agg])
    purposes = [line.split("\t")[1] for line in log.read_text().splitlines()]
    assert purposes.count("aggregate") == 1


def test_wrong_type_and_missing_column_name_the_problem(table_of: Any) -> None:
    table, _ = table_of("parquet")
    with pytest.raises(CriterionError, match=r"^plan: mean needs a numeric column, plan is "
                                             r"string$"):
        table.aggregate([Agg("mean", "plan")])
    with pytest.raises(CriterionError, match=r"^nope: no such column in .*t\.parquet "
                                             r"\(columns: id, age, plan, spend, ts, session\)$"):
        table.aggregate([Agg("nulls", "nope")])
    assert table.aggregate([Agg("rows")]) == [N]  # the rest of the table still answers


def test_nan_counts_as_null_and_only_a_column_holding_nan_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    path = tmp_path / "nan.parquet"
    pl.DataFrame({"clean": [1.0, 2.0, None, 4.0], "dirty": [1.0, float("nan"), None, 9.0],
                  "key": [1, 2, 2, 4]}).write_parquet(path)
    ctx = EvalContext(rootdir=tmp_path, fixtures={}, shared={})
    table = open_table(SourceSpec(path=str(path)), ctx)
    assert table.aggregate([
        Agg("nulls", "clean"), Agg("max", "clean"), Agg("nulls", "dirty"), Agg("max", "dirty"),
        Agg("mean", "dirty"), Agg("distinct", "key")]) == [1, 4.0, 2, 9.0, 5.0, 3]
    purposes = [line.split("\t")[1] for line in log.read_text().splitlines()]
    # the footers answer both floats' null counts and bounds (NaN left out); the pass counts
    # their NaN and reads the mean, which only the column holding NaN reads again
    assert purposes == ["open", "schema", "footers", "footers", "bounds", "aggregate",
                        "aggregate (NaN)"]
    redo = log.read_text().splitlines()[-1]
    assert '"dirty"' in redo and '"clean"' not in redo and "avg(" in redo


def test_nan_in_a_parquet_file_without_nulls_counts_as_null(tmp_path: Path) -> None:
    """Parquet statistics leave NaN out of min/max; DuckDB must not conclude there is none."""
    values = np.random.default_rng(1).normal(50, 10, 400)
    values[::37] = np.nan
    pl.DataFrame({"spend": values}).write_parquet(tmp_path / "n.parquet")
    ctx = EvalContext(rootdir=tmp_path, fixtures={}, shared={})
    table = open_table(SourceSpec(path="n.parquet"), ctx)
    clean = values[~np.isnan(values)]
    count, nulls, mean, cells = table.aggregate([
        Agg("count", "spend"), Agg("nulls", "spend"), Agg("mean", "spend"),
        Agg("cells", "spend", CellGrid(low=40.0, high=60.0))])
    assert (count, nulls) == (len(clean), 11)
    assert mean == pytest.approx(clean.mean())
    assert cells[-1][:2] == (OUTSIDE, int((clean > 60).sum()))  # NaN is not "above"
    assert sum(n for _, n, _, _ in cells) == len(clean)
    (examples,) = table.aggregate([Agg("offending", "spend", ("null", None))])
    assert len(examples) == 5 and all(math.isnan(row[0]) for row in examples)


@pytest.mark.parametrize("engine", ["parquet", "csv", "sqlite", "postgres"])
def test_value_counts_asked_alone_are_one_grouped_query_per_column_type(
        engine: str, table_of: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A drift check's categorical columns: most frequent first, ties by value, at most the
    cap, each column's values of its own type, one query for the columns of one type."""
    log = tmp_path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    words = ["b", "a", "c", "a", "b", None, "d", "a", "c", "b"] * 30
    numbers = [3, 1, 2, 2, 3, 3, None, 1, 2, 3] * 30
    frame = pl.DataFrame({"id": list(range(300)), "age": numbers, "plan": words,
                          "spend": [1.0] * 300, "ts": FRAME["ts"][:1].to_list() * 300,
                          "session": list(range(300))})
    table, _ = table_of(engine, frame, name="counts")
    log.unlink(missing_ok=True)
    plan, age, capped = table.aggregate([Agg("value_counts", "plan"), Agg("value_counts", "age"),
                                         Agg("value_counts", "plan", 2)])
    assert list(plan.items()) == [("a", 90), ("b", 90), ("c", 60), ("d", 30)]
    assert list(age.items()) == [(3, 120), (2, 90), (1, 60)]
    assert all(type(value) is int for value in age)
    assert list(capped.items()) == [("a", 90), ("b", 90)]
    purposes = [line.split("\t")[1] for line in log.read_text().splitlines()]
    assert purposes.count("value_counts") == 2  # strings, then integers
    assert "aggregate" not in purposes

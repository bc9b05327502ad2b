"""``Table.crosstab`` and ``Table.score_ranks``: the same answers in every engine, checked
against numpy and sklearn on the same rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pytest_mlfunnel.engines.expr import (
    Ranking,
    absolute,
    binned,
    clip,
    col,
    equals,
    is_null,
    ln,
    outside,
)
from pytest_mlfunnel.engines.sql import (
    DEFAULT_SORT_MEMORY,
    SORT_MEMORY_ENV,
    SPILL_LIMIT_ENV,
    duckdb_connection,
)
from pytest_mlfunnel.kinds.base import EvalContext
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tabular import open_table

sklearn_metrics = pytest.importorskip("sklearn.metrics")
pl = pytest.importorskip("polars")

ENGINES = ["parquet", "sqlite", "polars-lazy", "pandas"]


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    n = 500
    score = np.round(rng.random(n), 2)
    score[::41] = np.nan
    return pd.DataFrame({"y": rng.integers(0, 2, n), "g": rng.choice(["a", "b", None], n),
                         "s": score, "t": np.round(rng.random(n), 1)})


def open_in(engine: str, data: pd.DataFrame, root: Path) -> Any:
    fixtures: dict[str, Any] = {}
    if engine == "parquet":
        data.to_parquet(root / "t.parquet")
        spec = SourceSpec(path=str(root / "t.parquet"))
    elif engine == "sqlite":
        with sqlite3.connect(root / "t.db") as conn:
            conn.execute("CREATE TABLE t (y INTEGER, g TEXT, s REAL, t REAL)")
            conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [
                (int(r.y), r.g, None if np.isnan(r.s) else float(r.s), float(r.t))
                for r in data.itertuples()])
        spec = SourceSpec(url=f"sqlite:///{root / 't.db'}", table="t")
    else:
        fixtures["f"] = pl.from_pandas(data).lazy() if engine == "polars-lazy" else data
        spec = SourceSpec(fixture="f")
    return open_table(spec, EvalContext(rootdir=root, fixtures=fixtures, shared={}))


@pytest.mark.parametrize("engine", ENGINES)
def test_crosstab_groups_by_expressions_keeping_null_keys(engine: str, tmp_path: Path) -> None:
    data = frame()
    table = open_in(engine, data, tmp_path)
    found = table.crosstab([col("g"), binned(col("s"), [0.5]), is_null(col("s"))],
                           [("sum", ln(clip(col("s"), 0.01, None))), ("max", col("t")),
                            ("median", absolute(col("t") - col("s")))])
    groups = {key: (n, values) for key, n, values in found}
    assert sum(n for n, _ in groups.values()) == len(data)
    for (g, part, missing), (n, (total, top, median)) in groups.items():
        rows = data[(data.g.isna() if g is None else data.g == g) & (
            data.s.isna() if missing else ((data.s <= 0.5) == (part == 0)) & data.s.notna())]
        assert n == len(rows), (g, part, missing)
        if missing:
            assert part is None and total is None and median is None
            continue
        assert total == pytest.approx(np.log(rows.s.clip(lower=0.01)).sum(), abs=1e-9)
        assert top == pytest.approx(rows.t.max())
        assert median == pytest.approx(np.median(np.abs(rows.t - rows.s)), abs=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_score_ranks_give_sklearns_auc_and_average_precision_per_group(
        engine: str, tmp_path: Path) -> None:
    data = frame()
    table = open_in(engine, data, tmp_path)
    valid = outside(col("s"), 0.0, 1.0)  # 0 inside, null when the score is null
    where = valid - valid + 1.0
    (found,) = table.score_ranks(equals("y", 1), [col("s")], [Ranking(col("g"), precision=True)],
                                 where)
    assert set(found) == {"a", "b"}
    for group, ranks in found.items():
        rows = data[(data.g == group) & data.s.notna()]
        assert ranks.positives == rows.y.sum() and ranks.negatives == (1 - rows.y).sum()
        auc = ranks.scores[0].below / (ranks.positives * ranks.negatives)
        assert auc == pytest.approx(sklearn_metrics.roc_auc_score(rows.y, rows.s), abs=1e-12)
        precision_sum = ranks.scores[0].precision_sum
        assert precision_sum is not None
        assert precision_sum / ranks.positives == pytest.approx(
            sklearn_metrics.average_precision_score(rows.y, rows.s), abs=1e-12)


def test_an_expression_on_a_missing_column_names_it(tmp_path: Path) -> None:
    table = open_in("parquet", frame(), tmp_path)
    with pytest.raises(CriterionError, match=r"^score: no such column in .*t.parquet "
                                             r"\(columns: y, g, s, t\)$"):
        table.crosstab([col("y")], [("sum", col("score"))])


def placement_sums(y: np.ndarray, scores: list[np.ndarray]) -> dict[str, Any]:
    """Every positive against every negative (a tie counts one half): the sums
    ``ScoreRanks`` holds, from the definition."""
    below, above = [], []
    for score in scores:
        pos, neg = score[y == 1], score[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        below.append(psi.sum(axis=1))
        above.append(psi.sum(axis=0))
    found: dict[str, Any] = {
        "positives": int(y.sum()), "negatives": int((1 - y).sum()),
        "below": [b.sum() for b in below], "below_sq": [(b**2).sum() for b in below],
        "above": [a.sum() for a in above], "above_sq": [(a**2).sum() for a in above]}
    if len(scores) == 2:
        found["cross_below"] = (below[0] * below[1]).sum()
        found["cross_above"] = (above[0] * above[1]).sum()
    return found


@pytest.mark.parametrize("engine", ENGINES)
def test_one_query_ranks_overall_with_two_scores_and_per_group_with_one(
        engine: str, tmp_path: Path) -> None:
    data = frame()  # scores rounded to 2 and 1 decimals: many ties, within and across labels
    table = open_in(engine, data, tmp_path)
    valid = outside(col("s"), 0.0, 1.0)
    where = valid - valid + 1.0
    overall, by_group = table.score_ranks(equals("y", 1), [col("s"), col("t")],
                                          [Ranking(None, 2), Ranking(col("g"))], where)
    rows = data[data.s.notna()]
    groups = {None: (overall, rows, 2)} | {
        g: (by_group[g], rows[rows.g == g], 1) for g in ("a", "b")}
    assert set(overall) == {None} and set(by_group) == {"a", "b"}  # a null group left out
    for group, (ranks, part, count) in groups.items():
        if group is None:
            ranks = ranks[None]
        expected = placement_sums(part.y.to_numpy(), [part.s.to_numpy(), part.t.to_numpy()
                                                      ][:count])
        assert (ranks.positives, ranks.negatives) == (expected["positives"],
                                                      expected["negatives"]), group
        for i, rank in enumerate(ranks.scores):
            assert rank.below == expected["below"][i], (group, i)
            assert rank.above == expected["above"][i], (group, i)
            assert rank.below_sq == pytest.approx(expected["below_sq"][i], rel=1e-12)
            assert rank.above_sq == pytest.approx(expected["above_sq"][i], rel=1e-12)
        if count == 2:
            assert ranks.cross_below == pytest.approx(expected["cross_below"], rel=1e-12)
            assert ranks.cross_above == pytest.approx(expected["cross_above"], rel=1e-12)


def sliced_frame() -> pd.DataFrame:
    """Ties within and across groups and labels, a group with positives only, a null group,
    a null score, and an integer group column beside the string one."""
    rng = np.random.default_rng(21)
    n = 400
    data = pd.DataFrame({"y": rng.integers(0, 2, n),
                         "g": rng.choice(["b", "a", "c", None], n),
                         "s": np.round(rng.random(n), 1), "t": np.round(rng.random(n), 2)})
    data.loc[data.g == "c", "y"] = 1  # one class only: its AUC is undefined, its sums are not
    data.loc[5, "s"] = np.nan
    data["n"] = data.g.map({"a": 30, "b": 10, "c": 20}).astype("Int64")
    return data


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("column", ["g", "n"])
def test_a_group_with_known_values_ranks_in_one_sort_as_it_would_alone(
        engine: str, column: str, tmp_path: Path) -> None:
    data = sliced_frame()
    if engine == "sqlite":
        data = data.drop(columns="n")
        if column == "n":
            pytest.skip("the SQLite table of this test holds the string group only")
    table = open_in(engine, data, tmp_path)
    valid = outside(col("s"), 0.0, 1.0)
    where = valid - valid + 1.0
    values = tuple(data[column].dropna().unique().tolist())
    # listed in no particular order, and one value that no row holds
    listed = (*values[::-1], "zz" if column == "g" else 99)
    coded, partitioned = table.score_ranks(
        equals("y", 1), [col("s"), col("t")],
        [Ranking(col(column), 2, values=listed), Ranking(col(column), 2)], where)
    rows = data[data.s.notna()]
    assert set(coded) == set(partitioned) == set(values)  # the null group is left out
    for value in values:
        part = rows[rows[column] == value]
        expected = placement_sums(part.y.to_numpy(), [part.s.to_numpy(), part.t.to_numpy()])
        for ranks in (coded[value], partitioned[value]):
            assert (ranks.positives, ranks.negatives) == (expected["positives"],
                                                          expected["negatives"]), value
            for i, rank in enumerate(ranks.scores):
                assert rank.below == expected["below"][i], (value, i)
                assert rank.above == expected["above"][i], (value, i)
                assert rank.below_sq == pytest.approx(expected["below_sq"][i], rel=1e-12)
                assert rank.above_sq == pytest.approx(expected["above_sq"][i], rel=1e-12)
            assert ranks.cross_below == pytest.approx(expected["cross_below"], rel=1e-12)
            assert ranks.cross_above == pytest.approx(expected["cross_above"], rel=1e-12)
    assert coded["c" if column == "g" else 20].negatives == 0


def ranked_parquet(tmp_path: Path, rows: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(3)
    pd.DataFrame({"y": rng.integers(0, 2, rows), "s": rng.random(rows)}).to_parquet(
        tmp_path / "r.parquet")
    shared: dict[Any, Any] = {}
    table = open_table(SourceSpec(path=str(tmp_path / "r.parquet")),
                       EvalContext(rootdir=tmp_path, fixtures={}, shared=shared))
    return table, duckdb_connection(shared)


def test_the_ranking_sorts_under_the_memory_bound_and_leaves_the_setting_as_it_found_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPILL_LIMIT_ENV, "1MB")  # a spill beyond 1MB fails: the bound shows
    monkeypatch.setenv(SORT_MEMORY_ENV, "20MB")
    table, connection = ranked_parquet(tmp_path, 600_000)
    before = connection.execute("SELECT current_setting('memory_limit')").fetchone()
    with pytest.raises(CriterionError, match=r"r\.parquet: .*set MLFUNNEL_DUCKDB_MAX_TEMP_SIZE "
                                             r"to allow more\)$"):
        table.score_ranks(equals("y", 1), [col("s")], [Ranking()])
    assert connection.execute("SELECT current_setting('memory_limit')").fetchone() == before
    monkeypatch.setenv(SORT_MEMORY_ENV, "none")  # the database's own limit: it fits
    (found,) = table.score_ranks(equals("y", 1), [col("s")], [Ranking()])
    assert found[None].positives + found[None].negatives == 600_000
    assert DEFAULT_SORT_MEMORY == "512MiB"


def test_a_sort_memory_bound_that_is_not_a_size_is_one_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SORT_MEMORY_ENV, "plenty")
    table, _ = ranked_parquet(tmp_path, 10)
    with pytest.raises(CriterionError) as caught:
        table.score_ranks(equals("y", 1), [col("s")], [Ranking()])
    assert str(caught.value).endswith(
        "MLFUNNEL_DUCKDB_SORT_MEMORY='plenty' is not a size: give one such as 1GiB or 500MB, "
        "or none")


def test_a_duckdb_relation_of_ones_own_keeps_its_connection_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    monkeypatch.setenv(SORT_MEMORY_ENV, "20MB")  # would fail the sort below, as above
    monkeypatch.setenv(SPILL_LIMIT_ENV, "1MB")
    connection = duckdb.connect()
    connection.sql("SET memory_limit = '3GB'")
    mine = connection.sql("SELECT current_setting('memory_limit')").fetchall()
    relation = connection.sql("SELECT CAST(i % 2 AS INTEGER) AS y, random() AS s "
                              "FROM range(600000) AS r(i)")
    table = open_table(SourceSpec(fixture="f"),
                       EvalContext(rootdir=tmp_path, fixtures={"f": relation}, shared={}))
    (found,) = table.score_ranks(equals("y", 1), [col("s")], [Ranking()])
    assert (found[None].positives, found[None].negatives) == (300_000, 300_000)
    assert connection.sql("SELECT current_setting('memory_limit')").fetchall() == mine

"""A baseline in another table: ``baseline = { source, key, prediction, score }`` is looked up
by key in the engine, pairs the same rows as baseline columns beside the predictions would, and
says how many rows it could not pair."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import duckdb  # noqa: F401  (once here: pytester's in-process runs must not re-import it)
import numpy as np
import pandas as pd
import pandas.core.arrays.arrow.extension_types  # registered once, before pytester runs
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")

N = 1500
EXPECT = ('expect = { f1 = ">= baseline", roc_auc = ">= baseline", accuracy = ">= baseline", '
          'log_loss = "<= baseline", recall = ">= 0.1" }\n')


def frames(seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model's rows and production's, keyed by customer_id, production's in another
    order; scores rounded so that they tie."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    score = np.round(np.clip(0.35 * y + 0.65 * rng.random(N), 0, 1), 3)
    base = np.round(np.clip(0.25 * y + 0.75 * rng.random(N), 0, 1), 2)
    ids = rng.permutation(N) + 1000
    model = pd.DataFrame({"customer_id": ids, "churned": y, "pred": (score > 0.5).astype(int),
                          "proba": score})
    production = pd.DataFrame({"customer_id": ids, "prod_pred": (base > 0.5).astype(int),
                               "prod_proba": base}).sample(frac=1.0, random_state=3)
    return model, production


def write(root: Path, engine: str, model: pd.DataFrame, production: pd.DataFrame
          ) -> tuple[str, str]:
    """The two tables in files of the engine: (predictions source, baseline source) as TOML."""
    if engine == "parquet":
        model.to_parquet(root / "holdout.parquet")
        production.to_parquet(root / "production.parquet")
        return '"holdout.parquet"', '"production.parquet"'
    with sqlite3.connect(root / "predictions.db") as conn:
        model.to_sql("holdout", conn, index=False)
        production.to_sql("production", conn, index=False)
    url = f"sqlite:///{root / 'predictions.db'}"
    return (f'{{ url = "{url}", table = "holdout" }}',
            f'{{ url = "{url}", table = "production" }}')


def config(predictions: str, baseline: str, expect: str = EXPECT) -> str:
    return f"""
[tool.mlfunnel]
[tool.mlfunnel.model.joined]
predictions = {predictions}
task = "binary"
target = "churned"
prediction = "pred"
score = "proba"
baseline = {{ source = {baseline}, key = "customer_id", prediction = "prod_pred", score = "prod_proba" }}
significance = 0.05
{expect}"""


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def same_table_run(pytester: pytest.Pytester, model: pd.DataFrame, production: pd.DataFrame
                   ) -> dict[str, dict[str, Any]]:
    """The same comparison with production's columns beside the model's in one file."""
    model.merge(production, on="customer_id").to_parquet(pytester.path / "together.parquet")
    pytester.makepyprojecttoml(config('"together.parquet"', "x").replace(
        'source = x, key = "customer_id", ', ""))
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    return criteria(pytester)



def assert_same_results(found: dict[str, Any], expected: dict[str, Any],
                        names: tuple[str, ...]) -> None:
    """Each criterion's status and observed value, as the same check gave them with both
    tables in one engine."""
    for name in names:
        assert found[name]["status"] == expected[name]["status"], name
        assert found[name]["observed"] == pytest.approx(expected[name]["observed"], abs=1e-12)

@pytest.mark.parametrize("engine", ["parquet", "sqlite"])
def test_a_baseline_in_another_table_compares_as_its_columns_beside_the_rows_would(
        pytester: pytest.Pytester, engine: str) -> None:
    model, production = frames()
    expected = same_table_run(pytester, model, production)
    predictions, baseline = write(pytester.path, engine, model, production)
    pytester.makepyprojecttoml(config(predictions, baseline))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    f1 = sklearn_metrics.f1_score(model.churned, model.pred)
    merged = model.merge(production, on="customer_id")
    f1_base = sklearn_metrics.f1_score(merged.churned, merged.prod_pred)
    assert found["f1"]["message"].startswith(f"f1 {f1:.4f} vs baseline {f1_base:.4f}: ")
    assert_same_results(found, expected, ("f1", "roc_auc", "accuracy", "log_loss"))
    for name in ("f1", "roc_auc", "accuracy", "log_loss"):
        for field in ("baseline", "difference", "ci_low", "ci_high", "p_value"):
            assert found[name]["extra"][field] == pytest.approx(
                expected[name]["extra"][field], abs=1e-12), (name, field)
    assert found["roc_auc"]["extra"]["baseline"] == pytest.approx(
        sklearn_metrics.roc_auc_score(merged.churned, merged.prod_proba), abs=1e-12)
    assert "left out" not in found["f1"]["message"]
    assert result.ret == (0 if all(c["status"] == "passed" for c in found.values()) else 1)


@pytest.mark.parametrize("engine", ["parquet", "sqlite"])
def test_rows_whose_key_the_baseline_lacks_fail_the_comparisons_saying_how_many(
        pytester: pytest.Pytester, engine: str) -> None:
    model, production = frames()
    production = production[~production.customer_id.isin(model.customer_id[:37])]
    predictions, baseline = write(pytester.path, engine, model, production)
    pytester.makepyprojecttoml(config(predictions, baseline))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    table = "production.parquet" if engine == "parquet" else "production"
    for name in ("f1", "roc_auc", "accuracy", "log_loss"):
        assert found[name]["status"] == "failed", name
        assert (f": cannot compare with the baseline: 37 of {N} rows whose customer_id is not "
                f"found in ") in found[name]["message"]
        assert table in found[name]["message"]
        assert found[name]["message"].endswith(
            f"both models must judge the same rows (37 of {N} rows left out: 37 whose "
            f"customer_id is not found in {found[name]['message'].split('not found in ')[-1]}")
    # the model's own criteria are judged on the rows that have a baseline, and say so
    rest = model.iloc[37:]
    assert found["recall"]["status"] == "passed"
    assert found["recall"]["observed"] == pytest.approx(
        sklearn_metrics.recall_score(rest.churned, rest.pred), abs=1e-12)
    assert "(37 of 1500 rows left out: 37 whose customer_id is not found in" in (
        found["recall"]["message"])
    assert result.ret == 1


@pytest.mark.parametrize("engine", ["parquet", "sqlite"])
def test_a_key_the_baseline_holds_twice_makes_the_comparisons_an_error(
        pytester: pytest.Pytester, engine: str) -> None:
    model, production = frames()
    production = pd.concat([production, production.iloc[:4]])
    predictions, baseline = write(pytester.path, engine, model, production)
    pytester.makepyprojecttoml(config(predictions, baseline))
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["f1"]["status"] == "error"
    assert found["f1"]["message"].startswith(
        f"f1: 4 of {N} rows whose customer_id is found more than once in ")
    assert found["f1"]["message"].endswith(": give the baseline one row per customer_id")
    assert found["recall"]["status"] == "passed"  # rows never multiply: one lookup per key


def write_one(root: Path, engine: str, name: str, frame: pd.DataFrame,
              request: pytest.FixtureRequest) -> str:
    """One table in a file of the engine, or in PostgreSQL (dropped after the test): its
    source as TOML."""
    if engine == "parquet":
        frame.to_parquet(root / f"{name}.parquet")
        return f'"{name}.parquet"'
    if engine == "sqlite":
        with sqlite3.connect(root / f"{name}.db") as conn:
            frame.to_sql(name, conn, index=False)
        return f'{{ url = "sqlite:///{root / (name + ".db")}", table = "{name}" }}'
    url = request.getfixturevalue("postgres_url")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    table = f"{name}_{uuid.uuid4().hex[:10]}"
    db = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    frame.to_sql(table, db, index=False)

    def drop() -> None:
        with db.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {table}")
        db.dispose()
    request.addfinalizer(drop)
    return f'{{ url = "{url}", table = "{table}" }}'


ACROSS = [("parquet", "sqlite"), ("sqlite", "parquet"), ("parquet", "postgres"),
          ("postgres", "parquet"), ("sqlite", "postgres")]


@pytest.mark.parametrize(("predictions", "baseline"), ACROSS)
def test_a_baseline_another_engine_reads_is_copied_into_duckdb_and_compares_the_same(
        pytester: pytest.Pytester, request: pytest.FixtureRequest, predictions: str,
        baseline: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_mlfunnel.engines import copies

    monkeypatch.setattr(copies, "COPY_PAGE", 400)  # 1,500 rows: four pages
    model, production = frames()
    expected = same_table_run(pytester, model, production)
    pytester.makepyprojecttoml(config(write_one(pytester.path, predictions, "holdout", model,
                                                request),
                                      write_one(pytester.path, baseline, "production",
                                                production, request)))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    names = ("f1", "roc_auc", "accuracy", "log_loss", "recall")
    assert_same_results(found, expected, names)
    for name in names:
        for field in ("baseline", "difference", "ci_low", "ci_high", "p_value"):
            if field in expected[name]["extra"]:
                assert found[name]["extra"][field] == pytest.approx(
                    expected[name]["extra"][field], abs=1e-12), (name, field)
    assert "INTERNALERROR" not in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_a_baseline_in_a_lazy_frame_is_collected_into_duckdb(pytester: pytest.Pytester
                                                             ) -> None:
    pl = pytest.importorskip("polars")
    model, production = frames()
    expected = same_table_run(pytester, model, production)
    model.to_parquet(pytester.path / "holdout.parquet")
    production.to_parquet(pytester.path / "production_rows.parquet")
    pytester.makeconftest(f"""
import polars as pl
import pytest

@pytest.fixture
def production():
    return pl.scan_parquet({str(pytester.path / "production_rows.parquet")!r})
""")
    assert pl.scan_parquet(pytester.path / "production_rows.parquet").collect().height == N
    pytester.makepyprojecttoml(config('"holdout.parquet"', '{ fixture = "production" }'))
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert_same_results(found, expected, ("f1", "roc_auc", "recall"))
    assert found["roc_auc"]["extra"]["ci_low"] == pytest.approx(
        expected["roc_auc"]["extra"]["ci_low"], abs=1e-12)


def test_two_fixtures_of_two_engines_join_in_a_duckdb_of_their_own(pytester: pytest.Pytester
                                                                   ) -> None:
    pytest.importorskip("polars")
    model, production = frames()
    expected = same_table_run(pytester, model, production)
    model.to_parquet(pytester.path / "model_rows.parquet")
    production.to_parquet(pytester.path / "production_rows.parquet")
    pytester.makeconftest(f"""
import pandas as pd
import polars as pl
import pytest

@pytest.fixture
def holdout():
    return pl.scan_parquet({str(pytester.path / "model_rows.parquet")!r})

@pytest.fixture
def production():
    return pd.read_parquet({str(pytester.path / "production_rows.parquet")!r})
""")
    pytester.makepyprojecttoml(config('{ fixture = "holdout" }', '{ fixture = "production" }'))
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert_same_results(found, expected, ("f1", "roc_auc", "recall"))


@pytest.mark.parametrize(("predictions", "baseline"), [("parquet", "sqlite"),
                                                       ("postgres", "parquet")])
def test_across_engines_unmatched_and_repeated_keys_are_counted_as_in_one_engine(
        pytester: pytest.Pytester, request: pytest.FixtureRequest, predictions: str,
        baseline: str) -> None:
    model, production = frames()
    short = production[~production.customer_id.isin(model.customer_id[:37])]
    pytester.makepyprojecttoml(config(write_one(pytester.path, predictions, "holdout", model,
                                                request),
                                      write_one(pytester.path, baseline, "production", short,
                                                request)))
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["f1"]["status"] == "failed"
    assert (f": cannot compare with the baseline: 37 of {N} rows whose customer_id is not "
            "found in ") in found["f1"]["message"]
    assert found["recall"]["message"].endswith(
        f"(37 of {N} rows left out: 37 whose customer_id is not found in "
        f"{found['f1']['message'].split('not found in ')[-1]}")
    twice = pd.concat([production, production.iloc[:4]])
    pytester.makepyprojecttoml(config(write_one(pytester.path, predictions, "holdout2", model,
                                                request),
                                      write_one(pytester.path, baseline, "production2", twice,
                                                request)))
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["f1"]["status"] == "error"
    assert found["f1"]["message"].startswith(
        f"f1: 4 of {N} rows whose customer_id is found more than once in ")
    assert found["recall"]["status"] == "passed"


def test_a_table_too_large_to_copy_across_engines_is_an_error_saying_so(
        pytester: pytest.Pytester, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFUNNEL_JOIN_COPY_ROWS", "1000")
    model, production = frames()
    pytester.makepyprojecttoml(config(write_one(pytester.path, "parquet", "holdout", model,
                                                request),
                                      write_one(pytester.path, "sqlite", "production",
                                                production, request)))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["recall"]["status"] == "error"
    where = f"sqlite:///{pytester.path / 'production.db'} table production"
    assert found["recall"]["message"] == (
        f"cannot join holdout.parquet with {where}: two engines read them, and the join would "
        f"copy the second into DuckDB, but it has {N:,} rows, more than 1,000 "
        "(MLFUNNEL_JOIN_COPY_ROWS); give both tables on one "
        "engine (files and DataFrame fixtures share one DuckDB; tables of one database URL "
        "share its connection) or raise the limit")
    assert "INTERNALERROR" not in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_a_baseline_table_needs_a_key(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(config('"holdout.parquet"', '"production.parquet"').replace(
        'key = "customer_id", ', ""))
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*pyproject.toml: tool.mlfunnel.model.joined.baseline*key: a "
                                 "baseline in another table is joined on a key column*"])

"""A baseline in another table: ``baseline = { source, key, prediction, score }`` is looked up
by key in the engine, pairs the same rows as baseline columns beside the predictions would, and
says how many rows it could not pair."""

from __future__ import annotations

import json
import sqlite3
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
    for name in ("f1", "roc_auc", "accuracy", "log_loss"):
        assert found[name]["status"] == expected[name]["status"], name
        assert found[name]["observed"] == pytest.approx(expected[name]["observed"], abs=1e-12)
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
        assert (f": cannot compare with the baseline: 37 of {N} rows have a customer_id not "
                f"found in ") in found[name]["message"]
        assert table in found[name]["message"]
        assert found[name]["message"].endswith(
            f"both models must judge the same rows (37 of {N} rows left out: 37 with a "
            f"customer_id not found in {found[name]['message'].split('not found in ')[-1]}")
    # the model's own criteria are judged on the rows that have a baseline, and say so
    rest = model.iloc[37:]
    assert found["recall"]["status"] == "passed"
    assert found["recall"]["observed"] == pytest.approx(
        sklearn_metrics.recall_score(rest.churned, rest.pred), abs=1e-12)
    assert "(37 of 1500 rows left out: 37 with a customer_id not found in" in (
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
        f"f1: 4 of {N} rows have a customer_id found more than once in ")
    assert found["f1"]["message"].endswith(": give the baseline one row per customer_id")
    assert found["recall"]["status"] == "passed"  # rows never multiply: one lookup per key


def test_tables_no_one_engine_reads_together_cannot_be_joined(
        pytester: pytest.Pytester) -> None:
    model, production = frames()
    model.to_parquet(pytester.path / "holdout.parquet")
    _, baseline = write(pytester.path, "sqlite", model, production)
    pytester.makepyprojecttoml(config('"holdout.parquet"', baseline))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["recall"]["status"] == "error"
    assert found["recall"]["message"].startswith("cannot join ")
    assert found["recall"]["message"].endswith(
        ": both must be read by one engine (files and DataFrame fixtures share one DuckDB; "
        "tables of one database URL share its connection)")
    assert "INTERNALERROR" not in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_a_baseline_table_needs_a_key(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(config('"holdout.parquet"', '"production.parquet"').replace(
        'key = "customer_id", ', ""))
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*pyproject.toml: tool.mlfunnel.model.joined.baseline*key: a "
                                 "baseline in another table is joined on a key column*"])

"""The ``predictions`` kind: metrics from prediction rows equal sklearn's on the same rows, in
every engine; slices, too-small slices, bad input and baseline comparisons through real runs."""

from __future__ import annotations

import json
import math
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb  # imported once here: pytester's in-process runs must not re-import it
import numpy as np
import pandas as pd
import pandas.core.arrays.arrow.extension_types  # registered once, before pytester runs
import pytest

from pytest_mlfunnel.kinds.base import EvalContext
from pytest_mlfunnel.kinds.predictions import (
    ECE_EDGES,
    Collector,
    Evidence,
    PredictionsConfig,
    compare_paired,
    metric_value,
)
from pytest_mlfunnel.sources.tabular import open_table

sklearn_metrics = pytest.importorskip("sklearn.metrics")
calibration = pytest.importorskip("sklearn.calibration")
pl = pytest.importorskip("polars")

ENGINES = ["parquet", "csv", "sqlite", "pandas", "polars-lazy", "duckdb", "postgres"]
N = 2400


def binary_frame(seed: int = 3, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.round(np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1), 3)  # ties, as models give
    base_score = np.round(np.clip(0.25 * y + 0.75 * rng.random(n), 0, 1), 2)
    return pd.DataFrame({
        "churned": y, "pred": (score > 0.5).astype(int), "proba": score,
        "prod_pred": (base_score > 0.5).astype(int), "prod_proba": base_score,
        "plan": rng.choice(["basic", "pro", "team", "edu"], n, p=[0.4, 0.3, 0.25, 0.05]),
        "region": rng.choice(["north", "south"], n),
    })


def multiclass_frame(seed: int = 5, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    raw = rng.random((n, 3)) + np.stack([(y == c) * 0.8 for c in "abc"], axis=1)
    proba = np.round(raw / raw.sum(axis=1, keepdims=True), 4)
    proba[:, 2] = 1 - proba[:, 0] - proba[:, 1]
    pred = np.array(list("abc"))[proba.argmax(axis=1)]
    base = np.where(rng.random(n) < 0.6, y, rng.choice(list("abc"), n))
    return pd.DataFrame({"label": y, "pred": pred, "p_a": proba[:, 0], "p_b": proba[:, 1],
                         "p_c": proba[:, 2], "prod": base, "plan": rng.choice(["x", "y"], n)})


def regression_frame(seed: int = 9, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.normal(1000, 40, n)
    return pd.DataFrame({"spend": t, "pred": t + rng.normal(0, 8, n),
                         "prod": t + rng.normal(0, 11, n), "plan": rng.choice(["x", "y"], n)})


_SQL_TYPES = {"int64": ("INTEGER", "BIGINT"), "float64": ("REAL", "DOUBLE PRECISION"),
              "object": ("TEXT", "TEXT"), "str": ("TEXT", "TEXT")}


def _sql_type(dtype: Any, which: int) -> str:
    return _SQL_TYPES.get(str(dtype), ("TEXT", "TEXT"))[which]


def _rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(None if (isinstance(v, float) and math.isnan(v)) else
                  (v.item() if hasattr(v, "item") else v) for v in row)
            for row in frame.itertuples(index=False)]


@pytest.fixture
def source_of(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """(source config value, fixtures) holding the frame in the named engine."""
    cleanups: list[Any] = []

    def make(engine: str, frame: pd.DataFrame) -> tuple[Any, dict[str, Any]]:
        if engine == "parquet":
            frame.to_parquet(tmp_path / "p.parquet")
            return str(tmp_path / "p.parquet"), {}
        if engine == "csv":
            frame.to_csv(tmp_path / "p.csv", index=False)
            return str(tmp_path / "p.csv"), {}
        if engine == "sqlite":
            columns = ", ".join(f'"{c}" {_sql_type(t, 0)}' for c, t in frame.dtypes.items())
            with sqlite3.connect(tmp_path / "p.db") as conn:
                conn.execute(f"CREATE TABLE preds ({columns})")
                conn.executemany(f"INSERT INTO preds VALUES ({', '.join('?' * frame.shape[1])})",
                                 _rows(frame))
            return {"url": f"sqlite:///{tmp_path / 'p.db'}", "table": "preds"}, {}
        if engine == "postgres":
            url = request.getfixturevalue("postgres_url")
            sqlalchemy = pytest.importorskip("sqlalchemy")
            table = f"p_{uuid.uuid4().hex[:10]}"
            db = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            columns = ", ".join(f'"{c}" {_sql_type(t, 1)}' for c, t in frame.dtypes.items())
            with db.begin() as conn:
                conn.exec_driver_sql(f"CREATE TABLE {table} ({columns})")
                conn.exec_driver_sql(
                    f"INSERT INTO {table} VALUES ({', '.join(['%s'] * frame.shape[1])})",
                    _rows(frame))

            def drop() -> None:
                with db.begin() as conn:
                    conn.exec_driver_sql(f"DROP TABLE {table}")
                db.dispose()
            cleanups.append(drop)
            return {"url": url, "table": table}, {}
        if engine == "pandas":
            return {"fixture": "frame"}, {"frame": frame}
        if engine == "polars-lazy":
            return {"fixture": "frame"}, {"frame": pl.from_pandas(frame).lazy()}
        if engine == "duckdb":
            return {"fixture": "frame"}, {"frame": duckdb.from_df(frame)}
        raise AssertionError(engine)

    yield make
    for cleanup in cleanups:
        cleanup()


def collect(source: Any, fixtures: dict[str, Any], root: Path, **config: Any
            ) -> tuple[PredictionsConfig, Evidence]:
    check = PredictionsConfig.model_validate({"predictions": source, **config},
                                             context={"sources": {}, "key_path": "t"})
    ctx = EvalContext(rootdir=root, fixtures=fixtures, shared={})
    return check, Collector(check, open_table(check.predictions, ctx)).collect()


def ece_oracle(y: np.ndarray, score: np.ndarray) -> float:
    """ECE from sklearn's calibration_curve (right-closed equal-width bins) and numpy counts."""
    edges = np.linspace(0.0, 1.0, 11)
    assert edges[1:-1].tolist() == ECE_EDGES
    true, predicted = calibration.calibration_curve(y, score, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(edges[1:-1], score), minlength=10)
    counts = counts[counts > 0]
    return float(np.sum(counts * np.abs(true - predicted)) / len(y))


BINARY_EXPECT = {m: ">= 0" for m in (
    "rows", "accuracy", "balanced_accuracy", "precision", "recall", "f1", "positive_rate",
    "roc_auc", "average_precision", "log_loss", "brier", "ece", "slices.plan.*.roc_auc",
    "slices.plan.*.average_precision")}


@pytest.mark.parametrize("engine", ENGINES)
def test_binary_metrics_equal_sklearns_in_every_engine(engine: str, source_of: Any,
                                                       tmp_path: Path) -> None:
    frame = binary_frame()
    source, fixtures = source_of(engine, frame)
    check, evidence = collect(source, fixtures, tmp_path, task="binary", target="churned",
                              prediction="pred", score="proba", slices=["plan"],
                              expect=BINARY_EXPECT)
    m = sklearn_metrics
    for rows, scope in [(frame, evidence.overall)] + [
            (frame[frame.plan == v], evidence.slices["plan"][v]) for v in frame.plan.unique()]:
        y, p, s = rows.churned.to_numpy(), rows.pred.to_numpy(), rows.proba.to_numpy()
        expected = {
            "rows": len(rows), "accuracy": m.accuracy_score(y, p),
            "balanced_accuracy": m.balanced_accuracy_score(y, p),
            "precision": m.precision_score(y, p), "recall": m.recall_score(y, p),
            "f1": m.f1_score(y, p), "positive_rate": p.mean(), "roc_auc": m.roc_auc_score(y, s),
            "average_precision": m.average_precision_score(y, s),
            "log_loss": m.log_loss(y, s), "brier": m.brier_score_loss(y, s),
            "ece": ece_oracle(y, s)}
        for name, value in expected.items():
            assert metric_value(check, evidence, name, scope) == pytest.approx(value, abs=1e-9), \
                name


@pytest.mark.parametrize("engine", ["parquet", "sqlite", "polars-lazy", "postgres"])
def test_multiclass_metrics_equal_sklearns(engine: str, source_of: Any, tmp_path: Path) -> None:
    frame = multiclass_frame()
    source, fixtures = source_of(engine, frame)
    names = ["accuracy", "balanced_accuracy", "roc_auc_ovr", "class.b.f1", "class.c.recall",
             *(f"{m}_{a}" for m in ("precision", "recall", "f1")
               for a in ("macro", "weighted", "micro"))]
    check, evidence = collect(source, fixtures, tmp_path, task="multiclass", target="label",
                              prediction="pred", score=["p_a", "p_b", "p_c"],
                              expect=dict.fromkeys(names, ">= 0"))
    m = sklearn_metrics
    y, p = frame.label.to_numpy(), frame.pred.to_numpy()
    expected = {"accuracy": m.accuracy_score(y, p),
                "balanced_accuracy": m.balanced_accuracy_score(y, p),
                "roc_auc_ovr": m.roc_auc_score(y, frame[["p_a", "p_b", "p_c"]].to_numpy(),
                                               multi_class="ovr"),
                "class.b.f1": m.f1_score(y, p, labels=["b"], average=None)[0],
                "class.c.recall": m.recall_score(y, p, labels=["c"], average=None)[0]}
    for metric in ("precision", "recall", "f1"):
        for average in ("macro", "weighted", "micro"):
            scorer = getattr(m, f"{metric}_score")
            expected[f"{metric}_{average}"] = scorer(y, p, average=average)
    for name, value in expected.items():
        assert metric_value(check, evidence, name, evidence.overall) == pytest.approx(
            value, abs=1e-9), name


@pytest.mark.parametrize("engine", ["parquet", "sqlite", "polars-lazy", "postgres"])
def test_regression_metrics_equal_sklearns_overall_and_per_slice(
        engine: str, source_of: Any, tmp_path: Path) -> None:
    frame = regression_frame()
    source, fixtures = source_of(engine, frame)
    names = ["mae", "rmse", "r2", "mape", "median_ae", "max_error"]
    check, evidence = collect(source, fixtures, tmp_path, task="regression", target="spend",
                              prediction="pred", slices=["plan"],
                              expect=dict.fromkeys(names, ">= 0"))
    m = sklearn_metrics
    for rows, scope in [(frame, evidence.overall)] + [
            (frame[frame.plan == v], evidence.slices["plan"][v]) for v in ("x", "y")]:
        t, p = rows.spend.to_numpy(), rows.pred.to_numpy()
        expected = {"mae": m.mean_absolute_error(t, p), "rmse": m.root_mean_squared_error(t, p),
                    "r2": m.r2_score(t, p), "mape": m.mean_absolute_percentage_error(t, p),
                    "median_ae": m.median_absolute_error(t, p), "max_error": m.max_error(t, p)}
        for name, value in expected.items():
            assert metric_value(check, evidence, name, scope) == pytest.approx(
                value, rel=1e-9, abs=1e-9), name


def test_rows_with_a_null_are_left_out_counted_and_the_rest_judged_as_sklearn_would(
        tmp_path: Path) -> None:
    frame = binary_frame(n=600).astype({"churned": "float64", "proba": "float64"})
    frame.loc[::50, "churned"] = np.nan
    frame.loc[3::70, "proba"] = np.nan
    frame.to_parquet(tmp_path / "p.parquet")
    check, evidence = collect(str(tmp_path / "p.parquet"), {}, tmp_path, task="binary",
                              target="churned", prediction="pred", score="proba",
                              expect={"f1": ">= 0", "roc_auc": ">= 0"})
    kept = frame.dropna(subset=["churned", "proba"])
    assert evidence.dropped == len(frame) - len(kept)
    assert evidence.dropped_why == ["12 with a null churned", f"{len(frame) - len(kept) - 12} "
                                    "with a null proba"]
    y = kept.churned.to_numpy()
    assert metric_value(check, evidence, "f1", evidence.overall) == pytest.approx(
        sklearn_metrics.f1_score(y, kept.pred), abs=1e-9)
    assert metric_value(check, evidence, "roc_auc", evidence.overall) == pytest.approx(
        sklearn_metrics.roc_auc_score(y, kept.proba), abs=1e-9)


# --------------------------------------------------------------------------- through pytest
CONFIG = """
[tool.mlfunnel]
[tool.mlfunnel.model.holdout]
predictions = "holdout.parquet"
task = "binary"
target = "churned"
prediction = "pred"
score = "proba"
"""


def write_binary(pytester: pytest.Pytester, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    frame = binary_frame() if frame is None else frame
    frame.to_parquet(pytester.path / "holdout.parquet")
    return frame


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def test_the_model_gate_judges_metrics_measured_from_the_rows(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    frame = write_binary(pytester)
    f1 = sklearn_metrics.f1_score(frame.churned, frame.pred)
    pytester.makepyprojecttoml(CONFIG + 'slices = ["plan"]\nmin_slice_rows = 10\n'
                               'expect = { accuracy = ">= 0.7", f1 = ">= 0.9", roc_auc = ">= 0.8",'
                               ' "slices.plan.*.recall" = ">= 0.5", rows = ">= 2000" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-v", *xdist_args)
    result.stdout.fnmatch_lines([f"*f1 {f1:.4g}, expected >= 0.9*"])
    found = criteria(pytester)
    assert found["f1"]["status"] == "failed" and found["f1"]["evidence"] == "measured"
    assert found["accuracy"]["status"] == "passed"
    assert found["f1"]["observed"] == pytest.approx(f1, abs=1e-12)
    assert found["rows"]["observed"] == N
    recall = found["slices.plan.any.recall"]
    assert recall["status"] == "passed"
    assert set(recall["observed"]) == {"basic", "pro", "team", "edu"}
    assert result.ret == 1


def test_a_slice_with_too_few_rows_is_warned_not_judged(pytester: pytest.Pytester) -> None:
    write_binary(pytester)
    pytester.makepyprojecttoml(CONFIG + 'slices = ["plan"]\nmin_slice_rows = 200\n'
                               'expect = { "slices.plan.*.accuracy" = ">= 0.5", '
                               '"slices.plan.edu.f1" = ">= 0.99" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["slices.plan.any.accuracy"]["status"] == "warned"
    edu = (binary_frame().plan == "edu").sum()
    assert found["slices.plan.any.accuracy"]["message"] == (
        f"slices.plan.edu.accuracy: too few rows ({edu} < min_slice_rows 200), not judged")
    assert found["slices.plan.edu.f1"]["status"] == "warned"
    assert result.ret == 0


def test_a_missing_column_is_an_error_naming_it_and_the_columns_there(
        pytester: pytest.Pytester) -> None:
    write_binary(pytester)
    pytester.makepyprojecttoml(CONFIG.replace('"proba"', '"probability"')
                               + 'expect = { roc_auc = ">= 0.8" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    message = criteria(pytester)["roc_auc"]["message"]
    assert criteria(pytester)["roc_auc"]["status"] == "error"
    assert message.startswith("probability: no such column in holdout.parquet (columns: "
                              "churned, pred, proba, prod_pred,")
    assert result.ret == 1


def test_labels_outside_a_positive_negative_pair_error_with_the_labels(
        pytester: pytest.Pytester) -> None:
    frame = binary_frame(n=300)
    frame.loc[:4, "pred"] = 2
    write_binary(pytester, frame)
    pytester.makepyprojecttoml(CONFIG + 'expect = { f1 = ">= 0.5", rows = ">= 1" }\n')
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["f1"]["status"] == "error"
    assert found["f1"]["message"] == ("f1: 3 labels in churned, pred: 0, 1, 2; a binary task "
                                      "has a positive and a negative label")
    assert found["rows"]["status"] == "passed"


def test_a_positive_label_not_in_the_data_says_how_to_set_it(pytester: pytest.Pytester) -> None:
    frame = binary_frame(n=300)
    frame["churned"] = np.where(frame.churned == 1, "yes", "no")
    frame["pred"] = np.where(frame.pred == 1, "yes", "no")
    write_binary(pytester, frame)
    pytester.makepyprojecttoml(CONFIG + 'expect = { recall = ">= 0.5" }\n')
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    assert criteria(pytester)["recall"]["message"] == (
        "recall: the positive label 1 is not among the labels in churned, pred ('no', 'yes'); "
        "set positive = ...")
    pytester.makepyprojecttoml(CONFIG + 'positive = "yes"\nexpect = { recall = ">= 0.5" }\n')
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    y, p = frame.churned, frame.pred
    assert criteria(pytester)["recall"]["observed"] == pytest.approx(
        sklearn_metrics.recall_score(y, p, pos_label="yes"), abs=1e-12)


def test_scores_outside_zero_one_error_the_score_metrics_only(pytester: pytest.Pytester) -> None:
    frame = binary_frame(n=300)
    frame.loc[:2, "proba"] = 1.7
    write_binary(pytester, frame)
    pytester.makepyprojecttoml(CONFIG + 'expect = { log_loss = "<= 1", accuracy = ">= 0.5" }\n')
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["log_loss"]["status"] == "error"
    assert found["log_loss"]["message"] == ("log_loss: 3 rows have a score outside [0, 1] in "
                                            "proba; scores must be probabilities")
    assert found["accuracy"]["status"] == "passed"
    frame.loc[1:2, "proba"] = 0.5
    write_binary(pytester, frame)
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    assert criteria(pytester)["log_loss"]["message"] == (
        "log_loss: 1 row has a score outside [0, 1] in proba; scores must be probabilities")


def test_nan_predictions_fail_every_criterion_saying_how_many_rows_lack_one(
        pytester: pytest.Pytester) -> None:
    frame = binary_frame(n=500).astype({"pred": "float64", "churned": "float64"})
    frame.loc[::100, "pred"] = np.nan
    frame.loc[7::125, "churned"] = np.nan  # unlabelled rows: left out, not the model's fault
    write_binary(pytester, frame)
    pytester.makepyprojecttoml(CONFIG + 'expect = { accuracy = ">= 0.5", rows = ">= 1" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    kept = frame.dropna()
    accuracy = sklearn_metrics.accuracy_score(kept.churned, kept.pred)
    found = criteria(pytester)
    assert found["accuracy"]["status"] == "failed" and found["rows"]["status"] == "failed"
    assert found["accuracy"]["observed"] == pytest.approx(accuracy, abs=1e-12)
    assert found["accuracy"]["message"] == (
        f"accuracy {accuracy:.4g}, expected >= 0.5 (9 of 500 rows left out: 4 with a null "
        "churned, 5 with a null pred); 5 of 496 labelled rows have no prediction from the model "
        "(null or NaN in pred), more than max_missing_predictions = 0")
    assert result.ret == 1


def test_a_share_of_missing_predictions_within_the_limit_is_left_out_and_counted(
        pytester: pytest.Pytester) -> None:
    frame = binary_frame(n=500).astype({"pred": "float64"})
    frame.loc[::100, "pred"] = np.nan
    write_binary(pytester, frame)
    pytester.makepyprojecttoml(CONFIG + 'max_missing_predictions = 0.01\n'
                               'expect = { accuracy = ">= 0.5" }\n')
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    kept = frame.dropna()
    found = criteria(pytester)["accuracy"]
    assert found["status"] == "passed"
    assert found["observed"] == pytest.approx(
        sklearn_metrics.accuracy_score(kept.churned, kept.pred), abs=1e-12)
    assert found["message"].endswith("(5 of 500 rows left out: 5 with a null pred)")


def test_unknown_metrics_and_unpaired_baselines_are_config_errors(
        pytester: pytest.Pytester) -> None:
    write_binary(pytester)
    pytester.makepyprojecttoml(CONFIG + 'baseline = "prod_pred"\nexpect = { f2 = ">= 0.5", '
                               'ece = "<= baseline", "slices.region.*.f1" = ">= 0.5" }\n')
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines([
        "*pyproject.toml: tool.mlfunnel.model.holdout: *expect.'f2': unknown metric for task = "
        "'binary' (metrics: rows, accuracy, balanced_accuracy, *"])


# --------------------------------------------------------------------------- the baseline
BASELINE = CONFIG + 'baseline = { prediction = "prod_pred", score = "prod_proba" }\n'


def test_a_baseline_comparison_reports_both_values_the_difference_and_its_interval(
        pytester: pytest.Pytester) -> None:
    frame = write_binary(pytester)
    pytester.makepyprojecttoml(BASELINE + 'significance = 0.05\nexpect = { f1 = ">= baseline + '
                               '0.01", roc_auc = ">= baseline + 0.3", accuracy = ">= baseline",'
                               ' log_loss = "<= baseline - 0.05" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    m = sklearn_metrics
    f1, f1_base = m.f1_score(frame.churned, frame.pred), m.f1_score(frame.churned,
                                                                     frame.prod_pred)
    f1_message = found["f1"]["message"]
    assert f1_message.startswith(f"f1 {f1:.4f} vs baseline {f1_base:.4f}: "
                                 f"{f1 - f1_base:+.4f} (95% CI +")
    assert ", significant at 0.05, expected >= " in f1_message
    assert found["f1"]["status"] == "passed"
    auc, auc_base = (m.roc_auc_score(frame.churned, frame.proba),
                     m.roc_auc_score(frame.churned, frame.prod_proba))
    assert found["roc_auc"]["status"] == "failed"
    assert found["roc_auc"]["message"].startswith(
        f"roc_auc {auc:.4f} vs baseline {auc_base:.4f}: {auc - auc_base:+.4f} (95% CI ")
    assert "not significant at 0.05 (p = " in found["roc_auc"]["message"]
    assert found["roc_auc"]["extra"]["method"] == "delong"
    assert found["accuracy"]["extra"]["method"] == "mcnemar"
    assert found["log_loss"]["status"] == "passed"
    result.stdout.fnmatch_lines(["*roc_auc * vs baseline *not significant at 0.05*"])


def test_without_significance_a_baseline_expectation_compares_the_point_values(
        pytester: pytest.Pytester) -> None:
    frame = binary_frame(n=400, seed=11)
    write_binary(pytester, frame)
    pytester.makepyprojecttoml(BASELINE + 'expect = { recall = ">= baseline" }\n')
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["recall"]
    recall = sklearn_metrics.recall_score(frame.churned, frame.pred)
    base = sklearn_metrics.recall_score(frame.churned, frame.prod_pred)
    assert found["status"] == ("passed" if recall >= base else "failed")
    assert found["extra"]["method"] == "multinomial bootstrap"
    assert found["extra"]["ci_low"] < recall - base < found["extra"]["ci_high"]


def test_paired_comparisons_on_the_engines_agree(source_of: Any, tmp_path: Path) -> None:
    frame = binary_frame(n=800)
    answers = []
    for engine in ("parquet", "sqlite", "polars-lazy"):
        source, fixtures = source_of(engine, frame)
        check, evidence = collect(source, fixtures, tmp_path, task="binary", target="churned",
                                  prediction="pred", score="proba",
                                  baseline={"prediction": "prod_pred", "score": "prod_proba"},
                                  expect={m: ">= baseline" for m in
                                          ("accuracy", "f1", "roc_auc", "log_loss", "brier")})
        answers.append([v for c in (
            compare_paired(check, evidence, m, evidence.overall)
            for m in ("accuracy", "f1", "roc_auc", "log_loss", "brier"))
                        for v in (c.value, c.baseline, c.low, c.high)])
    assert answers[0] == pytest.approx(answers[1], abs=1e-9)
    assert answers[0] == pytest.approx(answers[2], abs=1e-9)


def test_a_slice_value_not_present_fails_listing_the_values_there(
        pytester: pytest.Pytester) -> None:
    write_binary(pytester)
    pytester.makepyprojecttoml(CONFIG + 'slices = ["plan"]\n'
                               'expect = { "slices.plan.gold.f1" = ">= 0.5" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    (found,) = criteria(pytester).values()
    assert found["status"] == "failed"
    assert found["message"] == ("slices.plan.gold.f1: no rows with plan = gold (values: "
                                "'basic', 'edu', 'pro', 'team')")
    assert result.ret == 1


def test_a_class_named_in_the_config_is_found_in_a_float_label_column(
        pytester: pytest.Pytester) -> None:
    """Labels written 0.0, 1.0, 2.0 (a float target beside integer predictions): the config's
    "class.2.recall" is class 2; a class that is not there says which ones are, once."""
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 900)
    pred = np.where(rng.random(900) < 0.7, y, rng.integers(0, 3, 900))
    pd.DataFrame({"y": y.astype(float), "pred": pred}).to_parquet(pytester.path / "mc.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.model.mc]
predictions = "mc.parquet"
task = "multiclass"
target = "y"
prediction = "pred"
expect = { "class.2.recall" = ">= 0.5", "class.7.recall" = ">= 0.5" }
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1, failed=1)
    found = criteria(pytester)
    assert found["class.2.recall"]["observed"] == pytest.approx(
        sklearn_metrics.recall_score(y, pred, labels=[2], average=None)[0], abs=1e-12)
    assert found["class.7.recall"]["status"] == "error"
    assert found["class.7.recall"]["message"] == (
        "class.7.recall: no class '7' (classes: 0, 1, 2)")


def test_infinite_targets_or_predictions_name_their_columns_for_every_regression_metric(
        pytester: pytest.Pytester) -> None:
    """An infinite value in a regression's target or prediction: every criterion (and a
    slice's) says where and how many, instead of a SQL error from an infinite mean."""
    frame = regression_frame(n=600)
    frame.loc[:2, "spend"] = np.inf
    frame.loc[3, "pred"] = -np.inf
    frame.to_parquet(pytester.path / "reg.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.model.reg]
predictions = "reg.parquet"
task = "regression"
target = "spend"
prediction = "pred"
baseline = "prod"
slices = ["plan"]
expect = { mae = "<= 10", rmse = "<= baseline", r2 = ">= 0.5", "slices.plan.*.mae" = "<= 10" }
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=4)
    assert "Binder Error" not in result.stdout.str()
    found = criteria(pytester)
    problem = ("infinite values (3 in spend, 1 in pred); regression metrics need "
               "finite numbers")
    assert {name: (c["status"], c["message"]) for name, c in found.items()} == {
        "mae": ("error", f"mae: {problem}"), "rmse": ("error", f"rmse: {problem}"),
        "r2": ("error", f"r2: {problem}"),
        "slices.plan.any.mae": ("error", f"slices.plan.*.mae: {problem}")}


def test_an_infinite_or_nan_number_is_written_as_sql_each_database_reads() -> None:
    import duckdb

    from pytest_mlfunnel.engines.expr import SqlRendering
    from pytest_mlfunnel.engines.sql import SqlEngine, duckdb_executor

    connection = duckdb.connect()
    engine = SqlEngine("t", "(SELECT 1 AS x) AS t", "duckdb",
                       duckdb_executor(connection, "t"), lambda: {"x": "int"})
    rendering = SqlRendering(engine)
    written = [rendering.number(v) for v in (math.inf, -math.inf, math.nan, 2.5)]
    assert connection.execute(f"SELECT {', '.join(written)}").fetchall() == [
        (math.inf, -math.inf, None, 2.5)]

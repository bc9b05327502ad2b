"""Baseline comparisons of the metrics that depend on the order of the rows: roc_auc_ovr
(DeLong through per-row influence terms), average_precision and median_ae (a seeded paired
bootstrap), through the engines and through real runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb  # noqa: F401  (once here: pytester's in-process runs must not re-import it)
import numpy as np
import pandas as pd
import pandas.core.arrays.arrow.extension_types  # registered once, before pytester runs
import pytest
from test_paired import ovr_influence, softmax_scores
from test_predictions import collect, source_of  # noqa: F401  (a fixture)

from pytest_mlfunnel.kinds.predictions import compare_paired
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.paired import PairedError, row_bootstrap

sklearn_metrics = pytest.importorskip("sklearn.metrics")

CLASSES = np.array(["a", "b", "c"])


def multiclass_frame(seed: int = 41, n: int = 1200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, n, p=[0.5, 0.3, 0.2])
    a, b = softmax_scores(rng, y, np.array([[1.8, 1.0, 1.4], [1.2, 1.1, 0.9]]), 0.5)
    frame = pd.DataFrame({"label": y, "plan": rng.choice(["x", "y"], n)})
    for k, c in enumerate(CLASSES):
        frame[f"p_{c}"] = a[:, k]
        frame[f"prod_{c}"] = b[:, k]
    return frame


MULTICLASS = {"task": "multiclass", "target": "label", "score": ["p_a", "p_b", "p_c"],
              "slices": ["plan"], "baseline": {"score": ["prod_a", "prod_b", "prod_c"]},
              "expect": {"roc_auc_ovr": ">= baseline",
                         "slices.plan.*.roc_auc_ovr": ">= baseline"}}


@pytest.mark.parametrize("engine", ["parquet", "sqlite", "polars-lazy", "postgres"])
def test_roc_auc_ovr_against_the_baseline_equals_the_influence_computation_in_every_engine(
        engine: str, source_of: Any, tmp_path: Path) -> None:  # noqa: F811
    frame = multiclass_frame()
    source, fixtures = source_of(engine, frame)
    check, evidence = collect(source, fixtures, tmp_path, **MULTICLASS)
    for rows, scope in [(frame, evidence.overall)] + [
            (frame[frame.plan == v], evidence.slices["plan"][v]) for v in ("x", "y")]:
        y = rows.label.to_numpy()
        a = rows[["p_a", "p_b", "p_c"]].to_numpy()
        b = rows[["prod_a", "prod_b", "prod_c"]].to_numpy()
        found = compare_paired(check, evidence, "roc_auc_ovr", scope)
        value, baseline, se = ovr_influence(y, a, b)
        assert (found.value, found.baseline) == pytest.approx((value, baseline), abs=1e-12)
        assert found.baseline == pytest.approx(np.mean([sklearn_metrics.roc_auc_score(
            y == c, b[:, k]) for k, c in enumerate(CLASSES)]), abs=1e-12)
        assert found.se == pytest.approx(se, rel=1e-9)


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


MULTICLASS_CONFIG = """
[tool.mlfunnel]
[tool.mlfunnel.model.holdout]
predictions = "holdout.parquet"
task = "multiclass"
target = "label"
score = ["p_a", "p_b", "p_c"]
"""


def test_roc_auc_ovr_compared_with_the_baseline_reports_the_difference_and_its_interval(
        pytester: pytest.Pytester) -> None:
    frame = multiclass_frame()
    frame.to_parquet(pytester.path / "holdout.parquet")
    pytester.makepyprojecttoml(
        MULTICLASS_CONFIG + 'baseline = { score = ["prod_a", "prod_b", "prod_c"] }\n'
        'significance = 0.05\n'
        'expect = { roc_auc_ovr = ">= baseline", "slices.plan.*.roc_auc_ovr" = '
        '">= baseline + 0.05" }\nslices = ["plan"]\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    y = frame.label.to_numpy()
    a, b = frame[["p_a", "p_b", "p_c"]].to_numpy(), frame[["prod_a", "prod_b", "prod_c"]].to_numpy()
    value, baseline, se = ovr_influence(y, a, b)
    d = value - baseline
    z = 1.959963984540054
    overall = found["roc_auc_ovr"]
    assert overall["status"] == "passed"
    assert overall["message"] == (
        f"roc_auc_ovr {value:.4f} vs baseline {baseline:.4f}: {d:+.4f} (95% CI "
        f"{d - z * se:+.4f}..{d + z * se:+.4f}), significant at 0.05, expected >= "
        f"{baseline:.4g} (baseline, baseline {baseline:.4g})")
    assert overall["extra"]["method"] == "delong, one-vs-rest"
    assert overall["extra"]["p_value"] == pytest.approx(
        0.5 * math.erfc(d / se / math.sqrt(2)), rel=1e-9)
    sliced = found["slices.plan.any.roc_auc_ovr"]
    assert sliced["status"] == "failed"
    assert sliced["message"].startswith("1 of 2 slices failed: slices.plan.x.roc_auc_ovr ")
    assert "not significant at 0.05 (p = " in sliced["message"]
    assert "slices.plan.y" not in sliced["message"]
    assert result.ret == 1


@pytest.mark.parametrize(("baseline", "message"), [
    ('{ score = "prod_a" }', "baseline.score: multiclass takes a list of per-class probability "
                             "columns, as score does"),
    ('{ score = ["prod_a", "prod_b"] }',
     "expect.roc_auc_ovr: '>= baseline' compares with the baseline: roc_auc_ovr needs the "
     "baseline's per-class scores, as many columns as score (3; 2 given): baseline = "
     "{ score = [\"...\", ...] }, in the order of the sorted class labels"),
    ('"prod_a"', "expect.roc_auc_ovr: '>= baseline' compares with the baseline: roc_auc_ovr "
                 "needs the baseline's per-class scores, as many columns as score (3; 0 "
                 "given)"),
])
def test_roc_auc_ovr_against_the_baseline_needs_its_per_class_scores(
        pytester: pytest.Pytester, baseline: str, message: str) -> None:
    pytester.makepyprojecttoml(MULTICLASS_CONFIG + f"baseline = {baseline}\n"
                               'expect = { roc_auc_ovr = ">= baseline" }\n')
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    (line,) = [x for x in result.stderr.lines if x.strip()]
    assert line.startswith(f"ERROR: pyproject.toml: tool.mlfunnel.model.holdout: {message}")


# --------------------------------------------------------------------------- row bootstrap
BINARY_CONFIG = """
[tool.mlfunnel]
[tool.mlfunnel.model.holdout]
predictions = "holdout.parquet"
task = "binary"
target = "churned"
prediction = "pred"
score = "proba"
baseline = { prediction = "prod_pred", score = "prod_proba" }
"""

REGRESSION_CONFIG = """
[tool.mlfunnel]
[tool.mlfunnel.model.holdout]
predictions = "holdout.parquet"
task = "regression"
target = "spend"
prediction = "pred"
baseline = "prod"
"""


def binary_frame(n: int, seed: int = 61) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    shared = rng.normal(size=n)
    a = np.round(1 / (1 + np.exp(-(1.4 * y + 0.6 * shared + 0.8 * rng.normal(size=n)))), 3)
    b = np.round(1 / (1 + np.exp(-(1.0 * y + 0.6 * shared + 0.8 * rng.normal(size=n)))), 2)
    return pd.DataFrame({"churned": y, "pred": (a > 0.5).astype(int), "proba": a,
                         "prod_pred": (b > 0.5).astype(int), "prod_proba": b,
                         "plan": rng.choice(["basic", "pro"], n)})


def regression_frame(n: int, seed: int = 62) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.normal(1000, 40, n)
    shared = rng.normal(size=n)
    return pd.DataFrame({"spend": t, "pred": t + 8 * (0.7 * shared + 0.7 * rng.normal(size=n)),
                         "prod": t + 11 * (0.7 * shared + 0.7 * rng.normal(size=n))})


def test_average_precision_and_median_ae_compare_with_the_baseline_by_a_row_bootstrap(
        pytester: pytest.Pytester) -> None:
    frame = binary_frame(1500)
    frame.to_parquet(pytester.path / "holdout.parquet")
    pytester.makepyprojecttoml(BINARY_CONFIG + 'significance = 0.05\nslices = ["plan"]\n'
                               'expect = { average_precision = ">= baseline", '
                               '"slices.plan.*.average_precision" = ">= baseline + 0.5" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["average_precision"]
    value = sklearn_metrics.average_precision_score(frame.churned, frame.proba)
    baseline = sklearn_metrics.average_precision_score(frame.churned, frame.prod_proba)
    assert found["status"] == "passed"
    assert found["message"].startswith(
        f"average_precision {value:.4f} vs baseline {baseline:.4f}: {value - baseline:+.4f} "
        "(95% CI +")
    assert ", significant at 0.05, expected >= " in found["message"]
    extra = found["extra"]
    assert (extra["method"], extra["draws"], extra["seed"], extra["bootstrap_rows"]) == (
        "paired bootstrap of the rows", 2000, 20261129, 1500)
    assert extra["ci_low"] < value - baseline < extra["ci_high"]
    sliced = criteria(pytester)["slices.plan.any.average_precision"]
    assert sliced["status"] == "failed"
    assert sliced["message"].startswith("2 of 2 slices failed: slices.plan.basic."
                                        "average_precision ")
    assert result.ret == 1

    regression = regression_frame(1200)
    regression.to_parquet(pytester.path / "holdout.parquet")
    pytester.makepyprojecttoml(REGRESSION_CONFIG + 'significance = 0.05\n'
                               'expect = { median_ae = "<= baseline - 1" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["median_ae"]
    value = sklearn_metrics.median_absolute_error(regression.spend, regression.pred)
    baseline = sklearn_metrics.median_absolute_error(regression.spend, regression["prod"])
    assert found["message"].startswith(
        f"median_ae {value:.4f} vs baseline {baseline:.4f}: {value - baseline:+.4f} (95% CI -")
    assert found["extra"]["method"] == "paired bootstrap of the rows"
    assert found["status"] == ("passed" if found["extra"]["ci_high"] < -1 else "failed")
    assert result.ret == (0 if found["status"] == "passed" else 1)


def test_above_the_bootstrap_cap_a_seeded_sample_of_rows_stands_for_all_of_them(
        source_of: Any, tmp_path: Path) -> None:  # noqa: F811
    frame = binary_frame(12_000)
    source, fixtures = source_of("parquet", frame)
    check, evidence = collect(source, fixtures, tmp_path, task="binary", target="churned",
                              prediction="pred", score="proba",
                              baseline={"prediction": "prod_pred", "score": "prod_proba"},
                              expect={"average_precision": ">= baseline"})
    found = compare_paired(check, evidence, "average_precision", evidence.overall)
    assert found.extra["bootstrap_rows"] == 2000
    assert (found.value, found.baseline) == pytest.approx(
        (sklearn_metrics.average_precision_score(frame.churned, frame.proba),
         sklearn_metrics.average_precision_score(frame.churned, frame.prod_proba)), abs=1e-12)
    # the spread of 2,000 rows, scaled to 12,000: about sqrt(1/6) of a 2,000-row interval
    small = binary_frame(2000)
    source, fixtures = source_of("parquet", small)
    check, evidence = collect(source, fixtures, tmp_path, task="binary", target="churned",
                              prediction="pred", score="proba",
                              baseline={"prediction": "prod_pred", "score": "prod_proba"},
                              expect={"average_precision": ">= baseline"})
    on_2000 = compare_paired(check, evidence, "average_precision", evidence.overall)
    ratio = (found.high - found.low) / (on_2000.high - on_2000.low)
    assert ratio == pytest.approx(math.sqrt(2000 / 12_000), rel=0.25)
    assert found.low < found.difference < found.high


@pytest.mark.parametrize("engine", ["sqlite", "polars-lazy", "postgres"])
def test_row_bootstraps_on_the_engines_agree_with_parquet(
        engine: str, source_of: Any, tmp_path: Path) -> None:  # noqa: F811
    frame = binary_frame(600)
    regression = regression_frame(600)
    frame["spend"], frame["guess"], frame["prod"] = (regression.spend, regression.pred,
                                                     regression["prod"])
    answers = []
    for name in ("parquet", engine):
        source, fixtures = source_of(name, frame)
        for config in ({"task": "binary", "target": "churned", "prediction": "pred",
                        "score": "proba",
                        "baseline": {"prediction": "prod_pred", "score": "prod_proba"},
                        "expect": {"average_precision": ">= baseline"}},
                       {"task": "regression", "target": "spend", "prediction": "guess",
                        "baseline": "prod", "expect": {"median_ae": "<= baseline"}}):
            check, evidence = collect(source, fixtures, tmp_path, **config)
            (metric,) = check.expect
            c = compare_paired(check, evidence, metric, evidence.overall)
            answers += [c.value, c.baseline, c.low, c.high]
    assert answers[:8] == pytest.approx(answers[8:], abs=1e-9)


def test_max_error_against_the_baseline_is_refused_saying_why(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(REGRESSION_CONFIG + 'expect = { max_error = "<= baseline" }\n')
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    (line,) = [x for x in result.stderr.lines if x.strip()]
    assert line == (
        "ERROR: pyproject.toml: tool.mlfunnel.model.holdout: expect.max_error: '<= baseline' "
        "compares with the baseline, and max_error has no paired method: a resample's largest "
        "error is never above the largest of the rows, so a bootstrap of a maximum is "
        "inconsistent (its draws pile up at the observed value) and no standard interval "
        "exists; compare it with a number, e.g. max_error = \"<= 25\"")


def test_a_bootstrap_without_two_positive_rows_cannot_compare_saying_so(
        source_of: Any, tmp_path: Path) -> None:  # noqa: F811
    frame = binary_frame(40)
    frame["churned"] = 0
    frame.loc[3, "churned"] = 1
    source, fixtures = source_of("parquet", frame)
    check, evidence = collect(source, fixtures, tmp_path, task="binary", target="churned",
                              prediction="pred", score="proba",
                              baseline={"prediction": "prod_pred", "score": "prod_proba"},
                              expect={"average_precision": ">= baseline"})
    with pytest.raises(CriterionError) as raised:
        compare_paired(check, evidence, "average_precision", evidence.overall)
    assert str(raised.value) == (
        "cannot compare with the baseline: the bootstrap needs at least 2 "
        "positive rows (1 of 40 read)")
    with pytest.raises(PairedError, match=r"^a bootstrap needs at least 2 rows \(1\)$"):
        row_bootstrap(0.5, 0.4, 10, lambda counts: 0.0, 1, "paired bootstrap of the rows")


def test_a_copy_limit_that_is_not_a_number_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_mlfunnel.engines.copies import copy_limit

    monkeypatch.setenv("MLFUNNEL_JOIN_COPY_ROWS", "lots")
    with pytest.raises(CriterionError, match=r"^MLFUNNEL_JOIN_COPY_ROWS='lots' is not a "
                                             r"number of rows$"):
        copy_limit()
    monkeypatch.setenv("MLFUNNEL_JOIN_COPY_ROWS", "2_000_000")
    assert copy_limit() == 2_000_000

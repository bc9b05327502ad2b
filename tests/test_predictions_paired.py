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

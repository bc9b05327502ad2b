"""The ``predictions`` kind on odd holdout tables through real runs: empty tables, slices with
no values or thousands of them, and messages that name each problem once."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pandas.core.arrays.arrow.extension_types  # registered once, before pytester runs
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")

pytest_plugins = ["pytester"]

CONFIG = """
[tool.mlfunnel]
[tool.mlfunnel.model.holdout]
predictions = "holdout.{ext}"
task = "{task}"
target = "y"
prediction = "p"
"""


def project(pytester: pytest.Pytester, frame: pd.DataFrame, body: str, *, task: str = "binary",
            ext: str = "parquet") -> None:
    if ext == "parquet":
        frame.to_parquet(pytester.path / "holdout.parquet")
    else:
        frame.to_csv(pytester.path / "holdout.csv", index=False)
    pytester.makepyprojecttoml(CONFIG.format(ext=ext, task=task) + body)


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def binary(n: int, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = np.round(rng.random(n), 3)
    return pd.DataFrame({"y": rng.integers(0, 2, n), "p": (score > 0.5).astype(int),
                         "s": score, "plan": rng.choice(["a", "b"], n)})


def test_an_empty_table_is_an_error_that_names_the_metric_once(
        pytester: pytest.Pytester) -> None:
    project(pytester, binary(10).iloc[:0], 'score = "s"\n'
            'expect = { accuracy = ">= 0.5", roc_auc = ">= 0.5" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["accuracy"]["status"] == "error"
    assert found["accuracy"]["message"] == "accuracy: no rows to judge"
    assert found["roc_auc"]["message"] == "roc_auc: no rows to judge"
    assert result.ret == 1


def test_a_csv_with_a_header_and_no_rows_says_the_table_is_empty_not_that_scores_are_text(
        pytester: pytest.Pytester) -> None:
    project(pytester, binary(10).iloc[:0], 'score = "s"\nexpect = { roc_auc = ">= 0.5" }\n',
            ext="csv")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["roc_auc"]
    assert found["status"] == "error"
    assert found["message"] == "holdout.csv has no rows: nothing to judge"
    assert result.ret == 1


def test_an_empty_csv_file_says_the_table_is_empty(pytester: pytest.Pytester) -> None:
    project(pytester, binary(10), 'expect = { accuracy = ">= 0.5" }\n', ext="csv")
    (pytester.path / "holdout.csv").write_text("")
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    assert criteria(pytester)["accuracy"]["message"] == (
        "holdout.csv has no rows: nothing to judge")


def test_every_slice_of_an_empty_table_is_an_error_not_a_pass(
        pytester: pytest.Pytester) -> None:
    project(pytester, binary(10).iloc[:0], 'slices = ["plan"]\n'
            'expect = { "slices.plan.*.f1" = ">= 0.5" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["slices.plan.any.f1"]
    assert found["status"] == "error"
    assert found["message"] == "slices.plan.*.f1: no judged row has a value in plan"
    assert result.ret == 1


def test_a_slice_column_that_is_all_null_is_an_error_not_a_pass(
        pytester: pytest.Pytester) -> None:
    frame = binary(50).assign(plan=None)
    project(pytester, frame, 'slices = ["plan"]\nmin_slice_rows = 0\n'
            'expect = { "slices.plan.*.accuracy" = ">= 0", accuracy = ">= 0" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["slices.plan.any.accuracy"]["status"] == "error"
    assert found["slices.plan.any.accuracy"]["message"] == (
        "slices.plan.*.accuracy: no judged row has a value in plan")
    assert found["accuracy"]["observed"] == pytest.approx(
        sklearn_metrics.accuracy_score(frame.y, frame.p))
    assert result.ret == 1


def test_a_slice_column_of_ten_thousand_values_fails_with_a_bounded_message(
        pytester: pytest.Pytester) -> None:
    frame = binary(20000, seed=8).assign(user=np.arange(20000) // 2)
    project(pytester, frame, 'slices = ["user"]\nmin_slice_rows = 0\n'
            'expect = { "slices.user.*.accuracy" = ">= 0.9" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["slices.user.any.accuracy"]
    by_user = frame.assign(right=frame.y == frame.p).groupby("user").right.mean()
    failing = int((by_user < 0.9).sum())
    assert found["status"] == "failed"
    assert len(found["observed"]) == 10000
    assert found["observed"]["3"] == pytest.approx(by_user[3])
    first = [f"slices.user.{u}.accuracy {format(v, '.4g')}, expected >= 0.9"
             for u, v in by_user[by_user < 0.9].items()][:10]
    assert found["message"] == (f"{failing} of 10000 slices failed: {'; '.join(first)}; "
                                f"… and {failing - 10} more")
    assert max(len(line) for line in result.outlines) < 2000
    assert result.ret == 1


def test_too_few_rows_in_thousands_of_slices_is_one_bounded_warning(
        pytester: pytest.Pytester) -> None:
    frame = binary(6000, seed=2).assign(user=np.arange(6000) // 2)
    project(pytester, frame, 'slices = ["user"]\nmin_slice_rows = 5\n'
            'expect = { "slices.user.*.accuracy" = ">= 0" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["slices.user.any.accuracy"]
    assert found["status"] == "warned"
    first = [f"slices.user.{u}.accuracy: too few rows (2 < min_slice_rows 5), not judged"
             for u in range(10)]
    assert found["message"] == "; ".join(first) + "; … and 2990 more"
    assert result.ret == 0


def test_too_few_score_columns_for_the_classes_says_so_once(
        pytester: pytest.Pytester) -> None:
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([1, 1, 1], 60)
    frame = pd.DataFrame({"y": rng.choice(["a", "b", "c"], 60),
                          "p": np.array(list("abc"))[proba.argmax(1)],
                          "pa": proba[:, 0], "pb": proba[:, 1]})
    project(pytester, frame, 'score = ["pa", "pb"]\nexpect = { roc_auc_ovr = ">= 0.5" }\n',
            task="multiclass")
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    assert criteria(pytester)["roc_auc_ovr"]["message"] == (
        "roc_auc_ovr: 2 score columns for 3 classes in y ('a', 'b', 'c'); give one column per "
        "class, in the order of the sorted labels")


@pytest.mark.parametrize(("expect", "task", "message"), [
    ('{ acuracy = ">= 0.5" }', "binary",
     "expect.'acuracy': unknown metric for task = 'binary'; did you mean 'accuracy'? (metrics: "
     "rows, accuracy, balanced_accuracy, precision, recall, f1, positive_rate, roc_auc, "
     "average_precision, log_loss, brier, ece)"),
    ('{ roc_auc = ">= 0.5" }', "multiclass",
     "expect.'roc_auc': unknown metric for task = 'multiclass'; did you mean 'roc_auc_ovr'? "
     "(metrics: *"),
    ('{ "slices.plna.*.f1" = ">= 0.5" }', "binary",
     "expect.slices.plna.*.f1: 'plna' is not one of slices (plan); did you mean 'plan'?"),
])
def test_a_misspelt_metric_or_slice_is_a_config_error_that_suggests_the_name(
        pytester: pytest.Pytester, expect: str, task: str, message: str) -> None:
    project(pytester, binary(10), f'slices = ["plan"]\nexpect = {expect}\n', task=task)
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: pyproject.toml: tool.mlfunnel.model.holdout: {message}"])


def test_rows_per_slice_are_judged_in_slices_below_min_slice_rows(
        pytester: pytest.Pytester) -> None:
    """min_slice_rows keeps a metric estimated from few rows from being judged; a count of
    rows is exact, and a slice too small is what ``slices.<c>.*.rows`` is there to catch."""
    frame = binary(200).assign(plan=["big"] * 190 + ["tiny"] * 10)
    project(pytester, frame, 'slices = ["plan"]\n'
            'expect = { "slices.plan.*.rows" = ">= 50", "slices.plan.tiny.rows" = ">= 50", '
            '"slices.plan.*.accuracy" = ">= 0" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["slices.plan.any.rows"]["status"] == "failed"
    assert found["slices.plan.any.rows"]["observed"] == {"big": 190, "tiny": 10}
    assert found["slices.plan.any.rows"]["message"] == (
        "1 of 2 slices failed: slices.plan.tiny.rows 10, expected >= 50")
    assert found["slices.plan.tiny.rows"]["message"] == "slices.plan.tiny.rows 10, expected >= 50"
    assert found["slices.plan.any.accuracy"]["status"] == "warned"
    assert result.ret == 1


def multiclass(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet([1, 1, 1], n)
    return pd.DataFrame({"y": rng.choice(["a", "b", "c"], n),
                         "p": np.array(list("abc"))[proba.argmax(1)],
                         "plan": rng.choice(["x", "y"], n)})


def test_a_per_class_metric_per_slice_reports_each_slice_by_its_value(
        pytester: pytest.Pytester) -> None:
    frame = multiclass(200)
    project(pytester, frame, 'slices = ["plan"]\nexpect = { "slices.plan.*.class.a.f1" = ">= 0" }\n',
            task="multiclass")
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["slices.plan.any.class.a.f1"]
    expected = {plan: sklearn_metrics.f1_score(part.y, part.p, labels=["a"], average=None)[0]
                for plan, part in frame.groupby("plan")}
    assert found["observed"] == pytest.approx(expected)


def test_a_slice_column_named_with_a_dot_is_addressed_whole(pytester: pytest.Pytester) -> None:
    frame = multiclass(200).rename(columns={"plan": "user.plan"})
    project(pytester, frame, 'slices = ["user.plan"]\nmin_slice_rows = 0\n'
            'expect = { "slices.user.plan.*.accuracy" = ">= 0", '
            '"slices.user.plan.x.accuracy" = ">= 0" }\n', task="multiclass")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    expected = {plan: sklearn_metrics.accuracy_score(part.y, part.p)
                for plan, part in frame.groupby("user.plan")}
    assert found["slices.user.plan.any.accuracy"]["observed"] == pytest.approx(expected)
    assert found["slices.user.plan.x.accuracy"]["observed"] == pytest.approx(expected["x"])
    assert result.ret == 0


@pytest.mark.parametrize("positive", ['"True"', '"true"', "true"])
def test_the_positive_label_of_a_boolean_target_may_be_written_as_text(
        pytester: pytest.Pytester, positive: str) -> None:
    frame = binary(60).assign(y=lambda f: f.y == 1, p=lambda f: f.p == 1)
    project(pytester, frame, f'positive = {positive}\nexpect = {{ f1 = ">= 0" }}\n')
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    assert criteria(pytester)["f1"]["observed"] == pytest.approx(
        sklearn_metrics.f1_score(frame.y, frame.p))


def test_a_positive_label_absent_but_for_its_case_suggests_the_label_there(
        pytester: pytest.Pytester) -> None:
    frame = pd.DataFrame({"y": ["Yes", "No"] * 20, "p": ["Yes", "Yes"] * 20})
    project(pytester, frame, 'positive = "yes"\nexpect = { f1 = ">= 0.5" }\n')
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    assert criteria(pytester)["f1"]["message"] == (
        "f1: the positive label 'yes' is not among the labels in y, p ('No', 'Yes'); set "
        "positive = \"Yes\"")


def test_scores_of_true_and_false_are_refused_as_not_probabilities(
        pytester: pytest.Pytester) -> None:
    frame = binary(60).assign(s=lambda f: f.s > 0.5)
    project(pytester, frame, 'score = "s"\nexpect = { roc_auc = ">= 0.5", f1 = ">= 0" }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["roc_auc"]["status"] == "error"
    assert found["roc_auc"]["message"] == (
        "s: scores must be numbers (probabilities), s is bool: give the predicted probability "
        "of the positive class, or compare the labels with prediction = \"s\"")
    assert result.ret == 1


@pytest.mark.parametrize(("task", "body", "column", "problem"), [
    ("multiclass", 'expect = { accuracy = ">= 0.3", f1_macro = ">= 0.3" }\n', "p",
     "y holds its labels as numbers (0, 1, 2) and p as text ('0', '1', '2')"),
    ("binary", 'baseline = "prod"\nexpect = { accuracy = ">= 0.3", f1 = ">= baseline" }\n',
     "prod", "y holds its labels as numbers (0, 1) and prod as text ('0', '1')"),
], ids=["prediction-as-text", "baseline-as-text"])
def test_labels_of_two_types_are_an_error_saying_so_not_an_accuracy_of_zero(
        pytester: pytest.Pytester, task: str, body: str, column: str, problem: str) -> None:
    """A pipeline that wrote its predictions as text ("1") beside integer labels (1) had
    every prediction counted wrong: accuracy 0, f1 0, and nothing said why."""
    rng = np.random.default_rng(7)
    classes = 3 if task == "multiclass" else 2
    y = rng.integers(0, classes, 300)
    frame = pd.DataFrame({"y": y, "p": y if task == "binary" else y.astype(str),
                          "prod": rng.integers(0, classes, 300).astype(str)})
    project(pytester, frame, body, task=task)
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    for name, criterion in found.items():
        assert criterion["status"] == "error", name
        assert criterion["message"] == (
            f"{name}: {problem}: a label never equals one of another type, so every "
            "prediction would count as wrong; write both columns with one type (or read "
            f"{column} through a query that casts it)")
    assert set(found) == {"accuracy", "f1_macro" if task == "multiclass" else "f1"}
    assert result.ret == 1

"""The ``predictions`` check's keys: task, columns, slices, baseline and the metric names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    MetricExpectations,
    Source,
)
from pytest_mlfunnel.suggest import did_you_mean

Task = Literal["binary", "multiclass", "regression"]
Label = bool | int | float | str

#: log loss clips probabilities to [EPS, 1 - EPS]: float64 machine epsilon, as sklearn does
EPS = 2.220446049250313e-16
#: calibration bins: 10 equal-width bins, right-closed ([0, 0.1], (0.1, 0.2], ...), with the
#: edges numpy's linspace(0, 1, 11) has (so they agree with sklearn's calibration_curve)
ECE_EDGES = [i * 0.1 for i in range(1, 10)]

BINARY_LABEL_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1",
                        "positive_rate")
BINARY_SCORE_METRICS = ("roc_auc", "average_precision", "log_loss", "brier", "ece")
MULTICLASS_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                      "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted",
                      "precision_micro", "recall_micro", "f1_micro", "roc_auc_ovr")
CLASS_METRICS = ("precision", "recall", "f1")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape", "median_ae", "max_error")
#: metrics where smaller is better (for the words of a baseline comparison)
RANKED_METRICS = ("roc_auc", "average_precision", "roc_auc_ovr")


def task_metrics(task: str) -> tuple[str, ...]:
    if task == "binary":
        return ("rows", *BINARY_LABEL_METRICS, *BINARY_SCORE_METRICS)
    if task == "multiclass":
        return ("rows", *MULTICLASS_METRICS)
    return ("rows", *REGRESSION_METRICS)


@dataclass(frozen=True)
class MetricName:
    """``slices.plan.pro.class.a.f1`` -> slice ("plan", "pro"), metric "class.a.f1"."""

    text: str
    metric: str
    slice_column: str | None = None
    slice_value: str | None = None  # "*": every value present

    @property
    def base(self) -> str:
        return self.metric.rsplit(".", 1)[-1] if self.metric.startswith("class.") else \
            self.metric


def parse_metric_name(text: str, task: str, slices: Sequence[str] = ()) -> MetricName:
    """``slices`` are the check's slice columns: the longest one the text starts with is the
    column, so a column named with a dot (``user.plan``) is addressed whole."""
    metric, column, value = text, None, None
    if text.startswith("slices."):
        after = text[len("slices."):]
        named = [c for c in slices if after.startswith(f"{c}.")]
        if named:
            column = max(named, key=len)
            rest = after[len(column) + 1:]
        else:
            column, _, rest = after.partition(".")
        if ".class." in rest:
            value, _, tail = rest.partition(".class.")
            metric = "class." + tail
        else:
            value, _, metric = rest.rpartition(".")
        if not column or not value or not metric:
            raise ValueError(f"{text!r}: write slices.<column>.<value>.<metric> or "
                             "slices.<column>.*.<metric>")
    if metric.startswith("class."):
        label, _, which = metric[len("class."):].rpartition(".")
        if task != "multiclass" or not label or which not in CLASS_METRICS:
            raise ValueError(f"{text!r}: per-class metrics are class.<label>.precision, "
                             ".recall or .f1, for task = \"multiclass\"")
    elif metric not in task_metrics(task):
        raise ValueError(f"{text!r}: unknown metric for task = {task!r}"
                         f"{did_you_mean(metric, task_metrics(task))} (metrics: "
                         f"{', '.join(task_metrics(task))})")
    return MetricName(text, metric, column, value)


class BaselineColumns(BaseModel):
    """The production model's predictions: columns of the predictions table, or of another
    table joined on ``key``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    source: Source | None = None
    key: str | list[str] | None = None
    prediction: str | None = None
    score: str | list[str] | None = None

    @property
    def scores(self) -> list[str]:
        return [] if self.score is None else [self.score] if isinstance(self.score, str) else (
            list(self.score))

    @property
    def keys(self) -> list[str]:
        return [] if self.key is None else [self.key] if isinstance(self.key, str) else list(
            self.key)

    @model_validator(mode="after")
    def _columns_given(self) -> BaselineColumns:
        if self.prediction is None and self.score is None:
            raise ValueError("name the baseline's prediction and/or score column")
        if self.source is not None and not self.keys:
            raise ValueError("key: a baseline in another table is joined on a key column, "
                             "e.g. key = \"customer_id\"")
        if self.source is None and self.key is not None:
            raise ValueError("key: only a baseline in another table (source = ...) is joined")
        return self


#: metrics a baseline comparison has a paired method for (see paired.py)
PAIRED = {
    "binary": (*BINARY_LABEL_METRICS, "roc_auc", "average_precision", "log_loss", "brier",
               "ece"),
    "multiclass": ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                   "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted",
                   "precision_micro", "recall_micro", "f1_micro", "precision", "recall", "f1",
                   "roc_auc_ovr"),
    "regression": ("mae", "rmse", "r2", "mape", "median_ae"),
}


class PredictionsConfig(CheckConfig):
    predictions: Source
    task: Task
    target: str
    prediction: str | None = None
    score: str | list[str] | None = None
    positive: Label = 1
    slices: list[str] = Field(default_factory=list)
    min_slice_rows: int = Field(default=30, ge=0)
    max_missing_predictions: float = Field(default=0.0, ge=0.0, le=1.0)
    baseline: str | BaselineColumns | None = None
    significance: float | None = None
    expect: MetricExpectations

    @field_validator("significance")
    @classmethod
    def _level(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 0.5:
            raise ValueError(f"a one-sided significance level between 0 and 0.5, got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PredictionsConfig:
        if not self.expect:
            raise ValueError("expect: give at least one metric, e.g. expect = { accuracy = "
                             "\">= 0.8\" }")
        if isinstance(self.baseline, BaselineColumns) and self.baseline.score is not None and (
                isinstance(self.baseline.score, list) != (self.task == "multiclass")):
            raise ValueError("baseline.score: " + (
                "multiclass takes a list of per-class probability columns, as score does"
                if self.task == "multiclass" else
                "one column, the positive class's probability"))
        names = {}
        for text in self.expect:
            try:
                names[text] = parse_metric_name(text, self.task, self.slices)
            except ValueError as exc:
                raise ValueError(f"expect.{exc}") from None
        for text, name in names.items():
            if name.slice_column is not None and name.slice_column not in self.slices:
                raise ValueError(f"expect.{text}: {name.slice_column!r} is not one of slices "
                                 f"({', '.join(self.slices) or 'none given'})"
                                 f"{did_you_mean(name.slice_column, self.slices)}")
            needs_score = name.base in BINARY_SCORE_METRICS or name.base == "roc_auc_ovr"
            if needs_score and self.score is None:
                raise ValueError(f"expect.{text}: {name.base} needs score = the column of "
                                 "predicted probabilities")
            needs_labels = name.base not in ("rows", *BINARY_SCORE_METRICS, "roc_auc_ovr")
            if needs_labels and self.prediction is None:
                raise ValueError(f"expect.{text}: {name.base} needs prediction = the column "
                                 "of predicted labels")
            if self.expect[text].uses_baseline:
                self._baseline_usable(text, name)
        if self.task == "regression" and self.prediction is None:
            raise ValueError("prediction: regression needs the column of predicted values")
        if self.task == "binary" and isinstance(self.score, list):
            raise ValueError("score: binary takes one column, the positive class's probability")
        if self.task == "multiclass" and isinstance(self.score, str):
            raise ValueError("score: multiclass takes a list of per-class probability columns "
                             "(in the order of the sorted class labels)")
        if self.task == "regression" and self.score is not None:
            raise ValueError("score: regression has no scores; give prediction only")
        return self

    def _baseline_usable(self, text: str, name: MetricName) -> None:
        where = f"expect.{text}: {self.expect[text].text!r} compares with the baseline"
        if self.baseline is None:
            raise ValueError(f"{where}, but no 'baseline' is given")
        if name.base == "max_error":
            raise ValueError(
                f"{where}, and max_error has no paired method: a resample's largest error is "
                "never above the largest of the rows, so a bootstrap of a maximum is "
                "inconsistent (its draws pile up at the observed value) and no standard "
                "interval exists; compare it with a number, e.g. max_error = \"<= 25\"")
        if name.base not in PAIRED[self.task]:
            raise ValueError(f"{where}, and {name.base} has no paired method (paired: "
                             f"{', '.join(PAIRED[self.task])}); compare it with a number")
        if name.base in BINARY_SCORE_METRICS and self.baseline_score is None:
            raise ValueError(f"{where}: {name.base} needs the baseline's scores: baseline = "
                             "{ prediction = \"...\", score = \"...\" }")
        if name.base == "roc_auc_ovr":
            given = len(self.baseline_scores)
            if given != len(self.score or []):
                raise ValueError(
                    f"{where}: roc_auc_ovr needs the baseline's per-class scores, as many "
                    f"columns as score ({len(self.score or [])}; {given} given): baseline = "
                    "{ score = [\"...\", ...] }, in the order of the sorted class labels")
            return
        if name.base not in BINARY_SCORE_METRICS and self.baseline_prediction is None:
            raise ValueError(f"{where}: {name.base} needs the baseline's predictions: "
                             "baseline = \"<column>\" or { prediction = \"...\" }")

    @property
    def baseline_table(self) -> BaselineColumns | None:
        """The baseline when it lives in another table, joined on its key."""
        if isinstance(self.baseline, BaselineColumns) and self.baseline.source is not None:
            return self.baseline
        return None

    def baseline_columns(self) -> dict[str, str]:
        """Another table's baseline columns, by the names they take beside the predictions:
        ``baseline.<column>``."""
        joined = self.baseline_table
        if joined is None:
            return {}
        return {f"baseline.{c}": c for c in [*([joined.prediction] if joined.prediction else []),
                                             *joined.scores]}

    @property
    def baseline_prediction(self) -> str | None:
        if isinstance(self.baseline, BaselineColumns):
            column = self.baseline.prediction
            return f"baseline.{column}" if column and self.baseline_table else column
        return self.baseline

    @property
    def baseline_score(self) -> str | None:
        """The baseline's score column of a binary task."""
        if not isinstance(self.baseline, BaselineColumns) or not isinstance(
                self.baseline.score, str):
            return None
        return self.baseline_scores[0]

    @property
    def baseline_scores(self) -> list[str]:
        """The baseline's score columns (one per class for multiclass), as the predictions
        table names them."""
        if not isinstance(self.baseline, BaselineColumns):
            return []
        prefix = "baseline." if self.baseline_table else ""
        return [f"{prefix}{c}" for c in self.baseline.scores]

    def metric_names(self) -> dict[str, MetricName]:
        return {text: parse_metric_name(text, self.task, self.slices) for text in self.expect}

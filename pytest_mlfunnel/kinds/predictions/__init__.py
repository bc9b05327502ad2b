"""``predictions``: model quality measured from prediction rows, per slice, against a baseline.

The rows never leave the engine. One grouped query (``Table.crosstab``) counts rows per
(target, prediction, baseline prediction, slice values, score bin, score range) and sums the
per-row losses; every confusion-matrix metric, log loss, Brier score and calibration error
is a sum over those groups. ROC AUC and average precision need the order of the scores:
``Table.score_ranks`` computes the Mann-Whitney rank sums (and the DeLong placements when a
baseline score is paired) in the engine, once for all rows and once per slice column.
Regression sums errors per slice column, with the median of absolute errors per group.

The parts: ``config`` (the check's keys and metric names), ``evidence`` (the queries and the
counts and sums per slice), ``metrics`` (each metric from those sums), ``comparison`` (the
paired method of each metric against the baseline), ``kind`` (the criteria).
"""

from __future__ import annotations

from pytest_mlfunnel.kinds.predictions.comparison import compare_paired
from pytest_mlfunnel.kinds.predictions.config import ECE_EDGES, PredictionsConfig
from pytest_mlfunnel.kinds.predictions.evidence import Collector, Evidence, Scope
from pytest_mlfunnel.kinds.predictions.kind import PredictionsKind
from pytest_mlfunnel.kinds.predictions.metrics import metric_value

__all__ = ["ECE_EDGES", "Collector", "Evidence", "PredictionsConfig", "PredictionsKind", "Scope",
           "compare_paired", "metric_value"]

"""The public surface for third-party check kinds and metrics readers: import from here,
nothing else.

Every other module of the package is private by convention and may change between releases.
A kind is a ``CheckConfig`` subclass (its keys), a ``CheckKind`` subclass generic in that
config (its ``plan``), returned from the ``pytest_mlfunnel_check_kinds`` hook in the
rootdir's ``conftest.py`` or in a plugin. A metrics reader (a ``MetricsReader``: a source ->
a ``MetricSet``) is returned from the ``pytest_mlfunnel_metric_readers`` hook, in the same
places. See docs/extending.md.
"""

from __future__ import annotations

from pytest_mlfunnel.context import EvalContext, PlanContext
from pytest_mlfunnel.engines.protocol import Agg, AggArg, CellGrid, Table
from pytest_mlfunnel.expectations import Expectation
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    Duration,
    Evaluate,
    Evidence,
    ExpectationField,
    IsoDate,
    Source,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.sources.metrics import MetricSet, MetricsReader
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tabular import open_table, plan_aggregates

__all__ = [
    "Agg",
    "AggArg",
    "CellGrid",
    "CheckConfig",
    "CheckKind",
    "Criterion",
    "CriterionError",
    "Duration",
    "EvalContext",
    "Evaluate",
    "Evidence",
    "Expectation",
    "ExpectationField",
    "IsoDate",
    "MetricSet",
    "MetricsReader",
    "Outcome",
    "PlanContext",
    "Source",
    "SourceSpec",
    "Table",
    "open_table",
    "plan_aggregates",
]

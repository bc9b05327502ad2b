"""The ``drift`` kind: one criterion per column and statistic, planned from the schemas."""

from __future__ import annotations

import math

from pytest_mlfunnel.context import EvalContext, PlanContext
from pytest_mlfunnel.engines.protocol import Agg
from pytest_mlfunnel.expectations import Expectation
from pytest_mlfunnel.kinds.base import CheckKind, Criterion, Evaluate
from pytest_mlfunnel.kinds.drift.cache import load_summary
from pytest_mlfunnel.kinds.drift.comparison import DriftResult, compute_drift
from pytest_mlfunnel.kinds.drift.config import (
    APPLIES_TO,
    DTYPE_TYPES,
    STATISTICS,
    ColumnType,
    DriftConfig,
    default_columns,
)
from pytest_mlfunnel.kinds.drift.summary import current_aggs
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.sources.tabular import open_table
from pytest_mlfunnel.stats import PSI_EPSILON


class DriftKind(CheckKind[DriftConfig]):
    key = "drift"
    evidence = "measured"
    config_model = DriftConfig

    def plan(self, check: DriftConfig, ctx: PlanContext) -> list[Criterion]:
        fixtures = tuple(dict.fromkeys(check.drift.reference.fixtures
                                       + check.drift.current.fixtures))
        types, reference_read = self._known_types(check, ctx)
        aggs = (_current_aggs_from_cache(check, ctx, types)
                if types is not None and reference_read else None)
        needs = ((check.drift.current, tuple(aggs)),) if aggs else ()
        criteria: list[Criterion] = []
        if types is None:
            # Columns cannot be known before the run (a fixture, a file not written yet): one
            # criterion per statistic over every shared column.
            for name, expectation in check.expect.items():
                criteria.append(Criterion(name, _all_columns_evaluator(
                    check, name, expectation), fixtures, expectation.text))
            return criteria
        for column, kind in types.items():
            wanted = [(n, e) for n, e in check.expect.items() if kind is None
                      or kind in APPLIES_TO[n]]
            if not wanted:  # listed, but none of the statistics fits its type: say so
                wanted = check.expect.items()[:1]
            for name, expectation in wanted:
                criteria.append(Criterion(f"{column}.{name}", _column_evaluator(
                    check, column, name, expectation), fixtures, expectation.text,
                    needs=needs))
        return criteria

    @staticmethod
    def _known_types(check: DriftConfig, ctx: PlanContext
                     ) -> tuple[dict[str, ColumnType | None] | None, bool]:
        """Column -> how it is compared (None when unknown until the run); None when not even
        the columns are known. Reads the schemas of sources that can be opened now (files,
        databases); the flag says whether the reference's could be read."""
        schemas: list[dict[str, str] | None] = []
        probe = EvalContext(rootdir=ctx.rootdir, fixtures={}, shared=ctx.shared)
        for spec in (check.drift.reference, check.drift.current):
            if spec.fixture is not None:
                schemas.append(None)
                continue
            try:
                schemas.append(open_table(spec, probe).schema())
            except Exception:  # not there yet, unreachable: the run will say so
                schemas.append(None)
        reference_schema, current_schema = schemas
        if check.columns is not None:
            names = [c for c in check.columns if c not in check.exclude]
        elif reference_schema is not None and current_schema is not None:
            names = default_columns(check, reference_schema, current_schema)
        else:
            return None, reference_schema is not None
        types: dict[str, ColumnType | None] = {}
        for column in names:
            dtype = reference_schema.get(column) if reference_schema else None
            types[column] = check.type_override(column) or (
                DTYPE_TYPES.get(dtype) if dtype else None)
        return types, reference_schema is not None


def _current_aggs_from_cache(check: DriftConfig, ctx: PlanContext,
                             types: dict[str, ColumnType | None]) -> list[Agg] | None:
    """With a saved reference summary, the current aggregates are known at collection: the
    criteria ask them, so they join the current source's one pass (shared with its other
    checks) when any criterion of the check is selected."""
    resolved = {c: k for c, k in types.items() if k is not None}
    if not check.cache or len(resolved) != len(types):
        return None
    try:
        summary = load_summary(check, ctx.rootdir, resolved, ctx.shared)
    except CriterionError:  # the version cannot be read now: the run will say why
        return None
    return None if summary is None else current_aggs(summary)


def _shared_drift(check: DriftConfig, ctx: EvalContext) -> DriftResult:
    return ctx.per_check(lambda: compute_drift(check, ctx))


_LABELS = {"psi": "psi", "ks": "ks", "ks_p": "ks p-value", "js": "js distance",
           "chi2_p": "chi-square p-value"}


def column_outcome(result: DriftResult, column: str, statistic: str, expectation: Expectation
                   ) -> Outcome:
    drift = result.columns.get(column)
    if drift is None:
        raise CriterionError(f"{column}: not compared (columns compared: "
                             f"{', '.join(result.columns) or 'none'})")
    if drift.error is not None:
        raise CriterionError(drift.error)
    if statistic not in drift.values:
        applies = ", ".join(n for n in STATISTICS if drift.kind in APPLIES_TO[n])
        other = "numeric" if drift.kind == "categorical" else "categorical"
        raise CriterionError(f"{column}: {statistic} does not apply to a {drift.kind} column "
                             f"(use {applies}, or list {column} in {other} = [...])")
    value = drift.values[statistic]
    extra = dict(drift.extra, n_reference=drift.n_reference, n_current=drift.n_current,
                 kind=drift.kind, reference_cached=result.cached)
    extra.update({k: v for k, v in drift.values.items() if k != statistic})
    details = drift.details.get(statistic, [])
    if statistic == "psi":
        extra["psi_epsilon"] = PSI_EPSILON
    return Outcome.compare(f"{column} {_LABELS[statistic]}", _rounded(value), expectation,
                           details=details, **extra)


def _rounded(value: float) -> float:
    return value if value == 0 or math.isnan(value) else float(f"{value:.6g}")


def _column_evaluator(check: DriftConfig, column: str,
                      statistic: str, expectation: Expectation) -> Evaluate:
    def evaluate(ctx: EvalContext) -> Outcome:
        return column_outcome(_shared_drift(check, ctx), column, statistic,
                              expectation)
    return evaluate


def _all_columns_evaluator(check: DriftConfig, statistic: str,
                           expectation: Expectation) -> Evaluate:
    def evaluate(ctx: EvalContext) -> Outcome:
        result = _shared_drift(check, ctx)
        outcomes: dict[str, Outcome] = {}
        for column, drift in result.columns.items():
            if drift.error is None and statistic not in drift.values:
                continue  # e.g. ks on a categorical column: not this criterion's business
            try:
                outcomes[column] = column_outcome(result, column, statistic, expectation)
            except CriterionError as exc:
                outcomes[column] = Outcome.error(str(exc), expectation.text)
        if not outcomes:
            raise CriterionError(f"{statistic}: no column of {result.reference} it applies to")
        return Outcome.of_all(outcomes, expectation.text,
                              f"{statistic} as expected in all {len(outcomes)} columns",
                              "{bad} of {total} columns")
    return evaluate

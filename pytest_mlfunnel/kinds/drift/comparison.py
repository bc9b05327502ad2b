"""The comparison: the current data counted in the reference's cells (or by its values), and
the statistics per column."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_mlfunnel.context import EvalContext
from pytest_mlfunnel.engines.protocol import OUTSIDE, Cell, Table
from pytest_mlfunnel.expectations import format_value
from pytest_mlfunnel.kinds.drift.cache import load_summary, save_summary
from pytest_mlfunnel.kinds.drift.config import DTYPE_TYPES, ColumnType, DriftConfig, default_columns
from pytest_mlfunnel.kinds.drift.summary import (
    ColumnSummary,
    answer,
    categories,
    current_aggs,
    current_cells,
    summarize_reference,
    to_cells,
)
from pytest_mlfunnel.sources.tabular import missing_column, open_table
from pytest_mlfunnel.stats import StatsError, chi2_homogeneity, js_distance, ks_p, psi

MAX_DETAILS = 3


@dataclass
class ColumnDrift:
    kind: ColumnType
    n_reference: int = 0
    n_current: int = 0
    values: dict[str, float] = field(default_factory=dict)
    details: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class DriftResult:
    columns: dict[str, ColumnDrift]
    reference: str
    current: str
    cached: bool


def _resolve_types(check: DriftConfig, reference: Table, current: Table
                   ) -> dict[str, ColumnType]:
    ref_schema, cur_schema = reference.schema(), current.schema()
    names = (list(check.columns) if check.columns is not None
             else default_columns(check, ref_schema, cur_schema))
    types: dict[str, ColumnType] = {}
    for column in names:
        if column in check.exclude:
            continue
        dtype = ref_schema.get(column)
        kind = check.type_override(column) or (DTYPE_TYPES.get(dtype) if dtype else None)
        types[column] = kind or "numeric"  # missing or unusable: the column's error says why
    return types


def _column_problem(column: str, kind: ColumnType, reference: Table, current: Table
                    ) -> str | None:
    for table, where in ((reference, "reference"), (current, "current")):
        schema = table.schema()
        if column not in schema:
            return missing_column(column, schema, table.display)
        dtype = schema[column]
        if dtype in ("datetime", "date"):
            return (f"{column}: is {dtype} in the {where} data; drift compares numbers and "
                    "categories (leave time columns out: they always drift)")
        if dtype not in DTYPE_TYPES:
            return (f"{column}: is neither a number nor a category in the {where} data (a "
                    "list, struct, binary, time-of-day or untyped column); drift compares "
                    "numbers and categories")
        if kind == "numeric" and dtype not in ("int", "float"):
            return (f"{column}: is {dtype} in the {where} data, not a number (list it in "
                    "categorical = [...] to compare its values)")
    return None


def compute_drift(check: DriftConfig, ctx: EvalContext) -> DriftResult:
    reference = open_table(check.drift.reference, ctx)
    current = open_table(check.drift.current, ctx)
    types = _resolve_types(check, reference, current)
    problems = {c: p for c, k in types.items()
                if (p := _column_problem(c, k, reference, current)) is not None}
    usable = {c: k for c, k in types.items() if c not in problems}
    summary = load_summary(check, ctx.rootdir, usable, ctx.shared) if check.cache else None
    cached = summary is not None
    if summary is None:
        summary = summarize_reference(check, reference, usable) if usable else {}
        if check.cache:
            save_summary(check, ctx.rootdir, usable, summary, ctx.shared)
    wanted = [(agg.column or "", agg) for agg in current_aggs(summary)]
    answers = answer(current, wanted) if summary else {}
    columns: dict[str, ColumnDrift] = {}
    for column, kind in types.items():
        if column in problems:
            columns[column] = ColumnDrift(kind, error=problems[column])
            continue
        col = summary[column]
        if col.error is not None:
            columns[column] = ColumnDrift(kind, error=col.error)
            continue
        shape = (current_cells(answers, column, col) if kind == "numeric"
                 else answers[(column, "shape")])
        if isinstance(shape, str):  # the current's query for this column failed: why
            columns[column] = ColumnDrift(kind, error=shape)
            continue
        count = (answers[(column, "count")] if kind == "categorical"
                 else sum(c[1] for c in shape))
        if isinstance(count, str):
            columns[column] = ColumnDrift(kind, error=count)
            continue
        columns[column] = compare_column(check, column, col, int(count or 0), shape,
                                         current.display)
    return DriftResult(columns, reference.display, current.display, cached)


def compare_column(check: DriftConfig, column: str, ref: ColumnSummary, n_current: int,
                   shape: Any, current_display: str) -> ColumnDrift:
    drift = ColumnDrift(ref.kind, ref.n, n_current)
    if n_current == 0:
        drift.error = f"{column}: no values in the current {current_display}"
        return drift
    try:
        if ref.kind == "numeric":
            _compare_numeric(check, ref, to_cells(shape), drift)
        else:
            _compare_categorical(check, ref, dict(shape), n_current, drift)
    except StatsError as exc:
        drift.error = f"{column}: {exc}"
    return drift


def _binned(cells: list[Cell], starts: list[float]) -> list[int]:
    """Counts in the PSI/JS bins: bin k holds the cells from starts[k - 1] up to starts[k]
    (cells in order)."""
    counts = [0] * (len(starts) + 1)
    k = 0
    for cell in cells:
        while k < len(starts) and cell.id >= starts[k]:
            k += 1
        counts[k] += cell.n
    return counts


def psi_edges(ref: ColumnSummary) -> list[float]:
    """The bins' lower edges as values: a value x is in bin k when edges[k - 1] <= x <
    edges[k] (up to rounding at a cell boundary)."""
    grid = ref.cell_grid()
    low = float(ref.grid["low"])
    return [grid.start(s) if s >= OUTSIDE else max(grid.start(s), low) for s in ref.starts]


def _bin_labels(ref: ColumnSummary) -> list[str]:
    edges = psi_edges(ref)

    def shown(value: float) -> str:
        return format_value(math.ceil(value) if ref.integral and math.isfinite(value)
                            else value)

    labels = [f"< {shown(edges[0])}"] if edges else ["all"]
    labels += [f"[{shown(a)}, {shown(b)})" for a, b in itertools.pairwise(edges)]
    if edges:
        labels.append(f"> {format_value(ref.grid['high'])}" if ref.starts[-1] >= OUTSIDE
                      else f">= {shown(edges[-1])}")
    if ref.starts and ref.starts[0] == ref.cells[0].id:
        labels[0] = f"< {format_value(ref.grid['low'])}"
    return labels


def _movers(labels: list[str], ref: list[int], cur: list[int]) -> list[str]:
    n_ref, n_cur = sum(ref) or 1, sum(cur) or 1
    moves = sorted(((abs(c / n_cur - r / n_ref), label, r / n_ref, c / n_cur)
                    for label, r, c in zip(labels, ref, cur, strict=True)), reverse=True)
    return [f"{label}: {r * 100:.1f}% of reference, {c * 100:.1f}%"
            f" of current" for gap, label, r, c in moves[:MAX_DETAILS] if gap > 0]


def _compare_numeric(check: DriftConfig, ref: ColumnSummary, cells: list[Cell],
                     drift: ColumnDrift) -> None:
    ref_bins, cur_bins = _binned(ref.cells, ref.starts), _binned(cells, ref.starts)
    movers = _movers(_bin_labels(ref), ref_bins, cur_bins)
    drift.extra.update(bins=len(ref_bins), reference_bins=ref_bins, current_bins=cur_bins,
                       psi_edges=psi_edges(ref))
    if check.expect.psi is not None:
        drift.values["psi"] = psi(ref_bins, cur_bins)
        drift.details["psi"] = movers
    if check.expect.js is not None:
        drift.values["js"] = js_distance(ref_bins, cur_bins)
        drift.details["js"] = movers
    if check.wants_ks:
        # The ECDFs of both sides at every boundary of a cell either side occupies.
        statistic, bound, compared = ks_from_cells(ref.cells, cells)
        drift.values["ks"] = statistic
        drift.values["ks_p"] = ks_p(statistic, ref.n, sum(cur_bins))
        drift.extra["ks_binning_error"] = bound
        drift.extra["ks_bins"] = compared


def ks_from_cells(reference: Iterable[Sequence[Any]], current: Iterable[Sequence[Any]]
                  ) -> tuple[float, float, int]:
    """(KS statistic, bound on how far it can be below the exact one, cells compared) from
    both sides' cells, each in cell order: the largest gap between the two ECDFs at every
    cell boundary either side occupies, walked once.

    The same numbers as the KS statistic and its binning error on the aligned counts; a cell
    holding one and the same value on both sides cannot hide a gap inside it, so only the
    others count towards the bound."""
    ref, cur = to_cells(reference), to_cells(current)
    n_ref = float(sum(c.n for c in ref)) or 1.0
    n_cur = float(sum(c.n for c in cur)) or 1.0
    gap = bound = 0.0
    seen_ref = seen_cur = 0
    i = j = compared = 0
    while i < len(ref) or j < len(cur):
        a = ref[i] if i < len(ref) else None
        b = cur[j] if j < len(cur) else None
        compared += 1
        if a is not None and (b is None or a.id < b.id):
            seen_ref += a.n
            if a.low != a.high:
                bound = max(bound, a.n / n_ref)
            i += 1
        elif b is not None and (a is None or b.id < a.id):
            seen_cur += b.n
            if b.low != b.high:
                bound = max(bound, b.n / n_cur)
            j += 1
        else:
            assert a is not None and b is not None  # the same cell on both sides
            seen_ref += a.n
            seen_cur += b.n
            if not a.low == a.high == b.low == b.high:
                bound = max(bound, a.n / n_ref, b.n / n_cur)
            i += 1
            j += 1
        gap = max(gap, abs(seen_ref / n_ref - seen_cur / n_cur))
    return min(gap, 1.0), bound, compared


def _compare_categorical(check: DriftConfig, ref: ColumnSummary, current: dict[Any, int],
                         n_current: int, drift: ColumnDrift) -> None:
    reference = dict(zip(ref.values, ref.value_counts, strict=True))
    cur_values, cur_counts = categories(current, n_current)
    current_map = dict(zip(cur_values, cur_counts, strict=True))
    values = list(reference) + [v for v in current_map if v not in reference]
    r = [reference.get(v, 0) for v in values]
    c = [current_map.get(v, 0) for v in values]
    labels = [str(v) for v in values]
    movers = _movers(labels, r, c)
    new = [str(v) for v in values if reference.get(v, 0) == 0]
    if new:
        movers.insert(0, f"only in current: {', '.join(new[:MAX_DETAILS])}"
                      + (f" and {len(new) - MAX_DETAILS} more" if len(new) > MAX_DETAILS else ""))
    drift.extra.update(categories=len(values))
    if check.expect.psi is not None:
        drift.values["psi"] = psi(r, c)
        drift.details["psi"] = movers
    if check.expect.js is not None:
        drift.values["js"] = js_distance(r, c)
        drift.details["js"] = movers
    if check.expect.chi2_p is not None:
        statistic, dof, p = chi2_homogeneity(r, c)
        drift.values["chi2_p"] = p
        drift.extra.update(chi2=statistic, chi2_dof=dof)
        drift.details["chi2_p"] = movers

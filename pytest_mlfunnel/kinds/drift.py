"""``drift``: current data still looks like the reference data, column by column.

One criterion per column and statistic (``age.psi``, ``plan.chi2_p``). Numeric columns
(int, float) are counted in fine cells (``CellGrid``: about 0.1% of |x| wide, finer where
a cell holds too much) and compared in PSI/JS bins made of runs of cells that cut the
reference at its deciles, and by KS at every cell boundary; categorical columns (string,
bool) by their values. ``categorical = [...]`` / ``numeric = [...]`` override the type.
Date and time columns are left out of the default column list (time moves on, so they
always drift).

Passes over the data (each a GROUP BY per column, so each column is read once): the
reference once (twice when a cell holds more than 1/KS_BINS of it and is split), the
current data once, in the reference's cells. The reference summary -- cells, counts and
bins -- is saved under ``.mlfunnel/cache/`` keyed by the reference files' paths, sizes
and content hashes and by the binning, so a later run reads only the current data.
"""

from __future__ import annotations

import bisect
import dataclasses
import glob
import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_mlfunnel import secrets
from pytest_mlfunnel.expectations import Expectation, format_value
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    EvalContext,
    ExpectationField,
    PlanContext,
    Source,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.sources.file_types import special_file
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.table_protocol import CELL_SPAN, OUTSIDE, Agg, CellGrid, Table
from pytest_mlfunnel.sources.tabular import missing_column, open_table, plan_aggregates
from pytest_mlfunnel.stats import (
    PSI_EPSILON,
    StatsError,
    chi2_homogeneity,
    js_distance,
    ks_p,
    psi,
)

Kind = Literal["numeric", "categorical"]
STATISTICS = ("psi", "ks", "ks_p", "js", "chi2_p")
APPLIES_TO: dict[str, tuple[Kind, ...]] = {
    "psi": ("numeric", "categorical"), "js": ("numeric", "categorical"),
    "ks": ("numeric",), "ks_p": ("numeric",), "chi2_p": ("categorical",),
}
#: A reference cell holding more than 1/KS_BINS of the values over a range is split finer, so
#: the KS statistic is read from ECDFs at least this fine (ties aside).
KS_BINS = 1000
#: At most this many crowded cells are split, each into at most MAX_SUBCELLS.
MAX_REFINED = 64
MAX_SUBCELLS = 65536
#: Distinct values counted per categorical column; the rest share one "(other)" bucket.
MAX_CATEGORIES = 10_000
CACHE_DIR = ".mlfunnel/cache"
CACHE_VERSION = 2
_DTYPE_KIND: dict[str, Kind] = {"int": "numeric", "float": "numeric", "string": "categorical",
                                "bool": "categorical"}
_OTHER = "(other)"
MAX_DETAILS = 3


class DriftSources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    reference: Source
    current: Source


class DriftExpect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    psi: ExpectationField | None = None
    ks: ExpectationField | None = None
    ks_p: ExpectationField | None = None
    js: ExpectationField | None = None
    chi2_p: ExpectationField | None = None

    def items(self) -> list[tuple[str, Expectation]]:
        return [(name, value) for name in STATISTICS
                if (value := getattr(self, name)) is not None]


class DriftConfig(CheckConfig):
    drift: DriftSources
    expect: DriftExpect
    columns: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    bins: int = Field(default=10, ge=2, le=1000)
    cache: bool = True

    @field_validator("columns")
    @classmethod
    def _some_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("give one or more columns, or leave columns out to compare "
                             "every column both sides share")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DriftConfig:
        if not self.expect.items():
            raise ValueError("expect: give at least one of psi, ks, ks_p, js, chi2_p, e.g. "
                             "expect = { psi = \"<= 0.2\" }")
        both = sorted(set(self.categorical) & set(self.numeric))
        if both:
            raise ValueError(f"{both[0]} is listed as both categorical and numeric")
        return self

    def kind_override(self, column: str) -> Kind | None:
        if column in self.categorical:
            return "categorical"
        if column in self.numeric:
            return "numeric"
        return None

    @property
    def wants_ks(self) -> bool:
        return self.expect.ks is not None or self.expect.ks_p is not None


# --------------------------------------------------------------------------- planning
class DriftKind(CheckKind):
    key = "drift"
    evidence = "measured"
    config_model = DriftConfig

    def plan(self, check: DriftConfig, ctx: PlanContext) -> list[Criterion]:
        fixtures = tuple(dict.fromkeys(check.drift.reference.fixtures
                                       + check.drift.current.fixtures))
        share_key = ("drift", ctx.key_path)
        kinds = self._known_kinds(check, ctx)
        criteria: list[Criterion] = []
        if kinds is None:
            # Columns cannot be known before the run (a fixture, a file not written yet): one
            # criterion per statistic over every shared column.
            for name, expectation in check.expect.items():
                criteria.append(Criterion(name, _all_columns_evaluator(
                    check, share_key, name, expectation), fixtures, expectation.text))
            return criteria
        for column, kind in kinds.items():
            wanted = [(n, e) for n, e in check.expect.items() if kind is None
                      or kind in APPLIES_TO[n]]
            if not wanted:  # listed, but none of the statistics fits its type: say so
                wanted = check.expect.items()[:1]
            for name, expectation in wanted:
                criteria.append(Criterion(f"{column}.{name}", _column_evaluator(
                    check, share_key, column, name, expectation), fixtures, expectation.text))
        return criteria

    @staticmethod
    def _known_kinds(check: DriftConfig, ctx: PlanContext) -> dict[str, Kind | None] | None:
        """Column -> kind (None when unknown until the run); None when not even the columns
        are known. Reads the schemas of sources that can be opened now (files, databases)."""
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
            return None
        kinds: dict[str, Kind | None] = {}
        for column in names:
            dtype = reference_schema.get(column) if reference_schema else None
            kinds[column] = check.kind_override(column) or (
                _DTYPE_KIND.get(dtype) if dtype else None)
        if reference_schema is not None and check.cache:
            _plan_current_from_cache(check, ctx, kinds)
        return kinds


def default_columns(check: DriftConfig, reference: dict[str, str], current: dict[str, str]
                    ) -> list[str]:
    """Columns both sides share, numeric or categorical (or typed by an override)."""
    return [c for c in reference if c in current and c not in check.exclude
            and (reference[c] in _DTYPE_KIND or check.kind_override(c) is not None)]


def _plan_current_from_cache(check: DriftConfig, ctx: PlanContext,
                             kinds: dict[str, Kind | None]) -> None:
    """With a saved reference summary, the current aggregates are known at collection: join
    them to the current source's one pass (shared with its other checks)."""
    resolved = {c: k for c, k in kinds.items() if k is not None}
    if len(resolved) != len(kinds):
        return
    summary = _load_summary(check, ctx.rootdir, resolved)
    if summary is not None:
        plan_aggregates(ctx.shared, check.drift.current, _current_aggs(summary))


# --------------------------------------------------------------------------- the summary
@dataclass
class ColumnSummary:
    kind: Kind
    n: int
    # numeric: the reference's occupied cells [id, count, min, max] of the grid below, the
    # ids where the PSI/JS bins after the first start, and whether the column holds integers
    cells: list[list[Any]] = field(default_factory=list)
    grid: dict[str, Any] = field(default_factory=dict)
    starts: list[float] = field(default_factory=list)
    integral: bool = False
    values: list[Any] = field(default_factory=list)  # categorical: values, most frequent first
    value_counts: list[int] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def cell_grid(self) -> CellGrid:
        """The grid the current data is counted in: the reference's. Values beyond the
        reference's range go to a cell of their own only on a side where they have a bin of
        their own (see ``_place_bins``); elsewhere they fall in the grid's cells past the
        reference's, which is exact for the bins and the KS statistic alike, and saves a
        comparison per value."""
        fields = dict(self.grid)
        fields["refine"] = tuple(tuple(r) for r in fields.get("refine", ()))
        if not (self.starts and self.starts[0] == self.cells[0][0]):
            fields["low"] = None
        if not (self.starts and self.starts[-1] >= OUTSIDE):
            fields["high"] = None
        return CellGrid(**fields)


def summarize_reference(check: DriftConfig, table: Table, kinds: dict[str, Kind]
                        ) -> dict[str, ColumnSummary]:
    """One pass over the reference (each column read once): counts in fixed cells per numeric
    column, value counts per categorical one. A second pass, only for numeric columns where
    one cell holds more than 1/KS_BINS of the values, splits those cells finer."""
    schema = table.schema()
    first: list[tuple[str, Agg]] = []
    for column, kind in kinds.items():
        if kind == "numeric":
            first.append((column, Agg("cells", column, CellGrid(
                bounds=True, integers=schema.get(column) == "int"))))
        else:
            first.append((column, Agg("count", column)))
            first.append((column, Agg("value_counts", column, MAX_CATEGORIES)))
    answers = _answer(table, first)
    summaries: dict[str, ColumnSummary] = {}
    finer: list[tuple[str, Agg]] = []
    for column, kind in kinds.items():
        if kind == "categorical":
            count, shape = answers[(column, "count")], answers[(column, "shape")]
            problem = count if isinstance(count, str) else shape
            if isinstance(problem, str):
                summaries[column] = ColumnSummary(kind, 0, error=problem)
            elif not count:
                summaries[column] = ColumnSummary(kind, 0, error=_no_values(column, table))
            else:
                values, counts = _categories(shape, int(count))
                summaries[column] = ColumnSummary(kind, int(count), values=values,
                                                  value_counts=counts)
            continue
        cells = answers[(column, "shape")]
        if isinstance(cells, str):
            summaries[column] = ColumnSummary(kind, 0, error=cells)
            continue
        n = sum(c[1] for c in cells)
        if n == 0:
            summaries[column] = ColumnSummary(kind, 0, error=_no_values(column, table))
            continue
        summary = ColumnSummary(kind, n, integral=schema.get(column) == "int")
        summaries[column] = summary
        grid = CellGrid(bounds=True, integers=summary.integral)
        refine = _crowded_cells(cells, n)
        if refine:
            finer.append((column, Agg("cells", column, dataclasses.replace(grid,
                                                                           refine=refine))))
        else:
            _place_bins(check, summary, grid, cells)
    if finer:
        answers = _answer(table, finer)
        for column, agg in finer:
            cells = answers[(column, "shape")]
            if isinstance(cells, str):
                summaries[column].error = cells
            else:
                _place_bins(check, summaries[column], agg.arg, cells)
    return summaries


def _no_values(column: str, table: Table) -> str:
    return f"{column}: no values in the reference {table.display}"


def _crowded_cells(cells: list[Any], n: int) -> tuple[tuple[float, float, float, int], ...]:
    """Cells holding more than 1/KS_BINS of the values over a range (not one repeated value):
    (cell, its min, its max, sub-cells) for the finer pass, the most crowded first."""
    crowded = sorted(((count, cell, low, high) for cell, count, low, high in cells
                      if count * KS_BINS > n and abs(cell) < OUTSIDE and low is not None
                      and high is not None and math.isfinite(low) and math.isfinite(high)
                      and low < high), reverse=True)[:MAX_REFINED]
    return tuple(sorted((math.floor(cell / CELL_SPAN), float(low), float(high),
                         min(MAX_SUBCELLS, max(16, math.ceil(8 * KS_BINS * count / n))))
                        for count, cell, low, high in crowded))


def _place_bins(check: DriftConfig, summary: ColumnSummary, grid: CellGrid,
                cells: list[Any]) -> None:
    """The PSI/JS bins: runs of cells whose reference share is nearest to i/bins.

    A bin boundary is a cell boundary, so each bin's reference share is within half of a
    cell's share of i/bins. Values beyond the reference's range join the outer bins -- or get a
    bin of their own when the outer bin is one repeated value (a constant column), so that a
    current value past it still shows."""
    n = summary.n
    cumulative = list(itertools.accumulate(c[1] for c in cells))
    chosen: set[int] = set()
    for i in range(1, check.bins):
        target = i * n / check.bins
        at = bisect.bisect_left(cumulative, target)
        options = [p for p in (at, at + 1) if 1 <= p < len(cells)]
        if options:  # p: the bin starts at cells[p], with cumulative[p - 1] below it
            chosen.add(min(options, key=lambda p: (abs(cumulative[p - 1] - target), p)))
    starts = [float(cells[p][0]) for p in sorted(chosen)]
    first_bin = cells[:(sorted(chosen)[0] if chosen else len(cells))]
    last_bin = cells[(sorted(chosen)[-1] if chosen else 0):]
    if _one_value(first_bin):
        starts.insert(0, float(cells[0][0]))
    if _one_value(last_bin):
        starts.append(OUTSIDE)
    low = min(float(c[2]) for c in cells)
    high = max(float(c[3]) for c in cells)
    summary.cells = [list(c) for c in cells]
    summary.starts = starts
    summary.grid = {"per_unit": grid.per_unit, "low": low, "high": high,
                    "refine": [list(r) for r in grid.refine], "bounds": True,
                    "integers": grid.integers}


def _one_value(cells: list[Any]) -> bool:
    return len({v for c in cells for v in (c[2], c[3])}) == 1


def _categories(value_counts: Any, n: int) -> tuple[list[Any], list[int]]:
    pairs = [(k, int(v)) for k, v in dict(value_counts).items() if k is not None]
    values = [k for k, _ in pairs]
    counts = [v for _, v in pairs]
    rest = n - sum(counts)
    if rest > 0:
        values.append(_OTHER)
        counts.append(rest)
    return values, counts


def _answer(table: Table, wanted: list[tuple[str, Agg]]) -> dict[tuple[str, str], Any]:
    """Aggregates by (column, "count"|"shape"); a column's problem becomes its message, so one
    bad column does not stop the others (all are still computed in one pass)."""
    aggs = [agg for _, agg in wanted]
    out: dict[tuple[str, str], Any] = {}
    try:
        values = table.aggregate(aggs)
    except CriterionError:
        values = []
        for agg in aggs:  # answered from the pass just made, one by one
            try:
                values.append(table.aggregate([agg])[0])
            except CriterionError as exc:
                values.append(str(exc))
    for (column, agg), value in zip(wanted, values, strict=True):
        out[(column, "count" if agg.op == "count" else "shape")] = value
    return out


def _current_aggs(summary: dict[str, ColumnSummary]) -> list[Agg]:
    aggs = []
    for column, col in summary.items():
        if col.error is not None:
            continue
        if col.kind == "numeric":
            aggs.append(Agg("cells", column, col.cell_grid()))
        else:
            aggs.append(Agg("count", column))
            aggs.append(Agg("value_counts", column, MAX_CATEGORIES))
    return aggs


# --------------------------------------------------------------------------- the cache
def reference_fingerprint(spec: SourceSpec, rootdir: Path) -> str | None:
    """Path (relative to the rootdir), size and content hash of every reference file; None
    when the reference is not files.

    The content, not the modification time: a CI checkout or download gives the same file a
    new mtime on every run, and the summary should still be found. BLAKE2b reads at disk
    speed, cheaper than the pass it saves; the digest is kept in ``digests.json`` beside the
    summaries and reused while the file's size, mtime and inode are unchanged."""
    if spec.path is None:
        return None
    full = spec.resolve_path(rootdir)
    paths = sorted(glob.glob(str(full), recursive=True)) if glob.has_magic(str(full)) else (
        [str(full)] if full.exists() else [])
    if not paths or any(special_file(name) for name in paths):
        return None  # a FIFO is never read: digesting it would wait for a writer
    known = _known_digests(rootdir)
    before = dict(known)
    parts = []
    for name in paths:
        try:
            shown = Path(name).resolve().relative_to(rootdir.resolve()).as_posix()
        except ValueError:
            shown = os.path.abspath(name)
        parts.append(f"{shown}\0{os.path.getsize(name)}\0{_digest(name, known)}")
    if known != before:
        _remember_digests(rootdir, known)
    return "\n".join(parts)


def _digest(name: str, known: dict[str, Any]) -> str:
    """BLAKE2b of the file, reused while its size, modification time and inode are the ones
    it was computed for (as git's index does: a checkout that rewrites the file hashes it
    again)."""
    stat = os.stat(name)
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    key = os.path.abspath(name)
    seen = known.get(key)
    if isinstance(seen, dict) and seen.get("stat") == stamp and isinstance(seen.get("digest"),
                                                                            str):
        return str(seen["digest"])
    digest = hashlib.blake2b(digest_size=20)
    with open(name, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    known[key] = {"stat": stamp, "digest": digest.hexdigest()}
    return digest.hexdigest()


def _known_digests(rootdir: Path) -> dict[str, Any]:
    try:
        found = json.loads((rootdir / CACHE_DIR / "digests.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _remember_digests(rootdir: Path, known: dict[str, Any]) -> None:
    path = rootdir / CACHE_DIR / "digests.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(known), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass  # only a missed shortcut next time


def _cache_path(check: DriftConfig, rootdir: Path, kinds: dict[str, Kind]) -> Path | None:
    fingerprint = reference_fingerprint(check.drift.reference, rootdir)
    if fingerprint is None:
        return None
    key = json.dumps({"version": CACHE_VERSION, "files": fingerprint, "format":
                      check.drift.reference.format, "bins": check.bins,
                      "columns": sorted(kinds.items())}, sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return rootdir / CACHE_DIR / f"drift-reference-{digest}.json"


def _load_summary(check: DriftConfig, rootdir: Path, kinds: dict[str, Kind]
                  ) -> dict[str, ColumnSummary] | None:
    path = _cache_path(check, rootdir, kinds)
    if path is None or not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {column: ColumnSummary(**fields) for column, fields in raw["columns"].items()}
    except (OSError, ValueError, TypeError, KeyError):
        return None  # a damaged cache is only a missed shortcut


def _save_summary(check: DriftConfig, rootdir: Path, kinds: dict[str, Kind],
                  summary: dict[str, ColumnSummary]) -> None:
    path = _cache_path(check, rootdir, kinds)
    if path is None or any(col.error is not None for col in summary.values()):
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"reference": check.drift.reference.display(),
                           "columns": {c: s.to_json() for c, s in summary.items()}})
        if secrets.redact(body) != body:
            return  # a secret among the reference's values: masking it would change them
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(body, encoding="utf-8")
        os.replace(temporary, path)  # atomic: xdist workers may race to write it
    except OSError:
        pass


# --------------------------------------------------------------------------- evaluation
@dataclass
class ColumnDrift:
    kind: Kind
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


def _resolve_kinds(check: DriftConfig, reference: Table, current: Table) -> dict[str, Kind]:
    ref_schema, cur_schema = reference.schema(), current.schema()
    names = (list(check.columns) if check.columns is not None
             else default_columns(check, ref_schema, cur_schema))
    kinds: dict[str, Kind] = {}
    for column in names:
        if column in check.exclude:
            continue
        dtype = ref_schema.get(column)
        kind = check.kind_override(column) or (_DTYPE_KIND.get(dtype) if dtype else None)
        kinds[column] = kind or "numeric"  # missing or unusable: the column's error says why
    return kinds


def _column_problem(column: str, kind: Kind, reference: Table, current: Table) -> str | None:
    for table, where in ((reference, "reference"), (current, "current")):
        schema = table.schema()
        if column not in schema:
            return missing_column(column, schema, table.display)
        dtype = schema[column]
        if dtype not in _DTYPE_KIND:
            return (f"{column}: is {dtype} in the {where} data; drift compares numbers and "
                    "categories (leave time columns out: they always drift)")
        if kind == "numeric" and dtype not in ("int", "float"):
            return (f"{column}: is {dtype} in the {where} data, not a number (list it in "
                    "categorical = [...] to compare its values)")
    return None


def compute_drift(check: DriftConfig, ctx: EvalContext) -> DriftResult:
    reference = open_table(check.drift.reference, ctx)
    current = open_table(check.drift.current, ctx)
    kinds = _resolve_kinds(check, reference, current)
    problems = {c: p for c, k in kinds.items()
                if (p := _column_problem(c, k, reference, current)) is not None}
    usable = {c: k for c, k in kinds.items() if c not in problems}
    summary = _load_summary(check, ctx.rootdir, usable) if check.cache else None
    cached = summary is not None
    if summary is None:
        summary = summarize_reference(check, reference, usable) if usable else {}
        if check.cache:
            _save_summary(check, ctx.rootdir, usable, summary)
    answers = _answer(current, [(c, agg) for c, agg in _pairs(summary)]) if summary else {}
    columns: dict[str, ColumnDrift] = {}
    for column, kind in kinds.items():
        if column in problems:
            columns[column] = ColumnDrift(kind, error=problems[column])
            continue
        col = summary[column]
        if col.error is not None:
            columns[column] = ColumnDrift(kind, error=col.error)
            continue
        shape = answers[(column, "shape")]
        count = (answers[(column, "count")] if kind == "categorical" or isinstance(shape, str)
                 else sum(c[1] for c in shape))
        if isinstance(count, str) or isinstance(shape, str):
            columns[column] = ColumnDrift(kind, error=str(count if isinstance(count, str)
                                                          else shape))
            continue
        columns[column] = compare_column(check, column, col, int(count or 0), shape,
                                         current.display)
    return DriftResult(columns, reference.display, current.display, cached)


def _pairs(summary: dict[str, ColumnSummary]) -> list[tuple[str, Agg]]:
    return [(agg.column or "", agg) for agg in _current_aggs(summary)]


def compare_column(check: DriftConfig, column: str, ref: ColumnSummary, n_current: int,
                   shape: Any, current_display: str) -> ColumnDrift:
    drift = ColumnDrift(ref.kind, ref.n, n_current)
    if n_current == 0:
        drift.error = f"{column}: no values in the current {current_display}"
        return drift
    try:
        if ref.kind == "numeric":
            _compare_numeric(check, ref, list(shape), drift)
        else:
            _compare_categorical(check, ref, dict(shape), n_current, drift)
    except StatsError as exc:
        drift.error = f"{column}: {exc}"
    return drift


def _binned(cells: list[Any], starts: list[float]) -> list[int]:
    """Counts in the PSI/JS bins: bin k holds the cells from starts[k - 1] up to starts[k]
    (cells in order)."""
    counts = [0] * (len(starts) + 1)
    k = 0
    for cell in cells:
        while k < len(starts) and cell[0] >= starts[k]:
            k += 1
        counts[k] += cell[1]
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
    if ref.starts and ref.starts[0] == ref.cells[0][0]:
        labels[0] = f"< {format_value(ref.grid['low'])}"
    return labels


def _movers(labels: list[str], ref: list[int], cur: list[int]) -> list[str]:
    n_ref, n_cur = sum(ref) or 1, sum(cur) or 1
    moves = sorted(((abs(c / n_cur - r / n_ref), label, r / n_ref, c / n_cur)
                    for label, r, c in zip(labels, ref, cur, strict=True)), reverse=True)
    return [f"{label}: {r * 100:.1f}% of reference, {c * 100:.1f}%"
            f" of current" for gap, label, r, c in moves[:MAX_DETAILS] if gap > 0]


def _compare_numeric(check: DriftConfig, ref: ColumnSummary, cells: list[Any],
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


def ks_from_cells(ref: list[Any], cur: list[Any]) -> tuple[float, float, int]:
    """(KS statistic, bound on how far it can be below the exact one, cells compared) from
    both sides' cells, each list in cell order: the largest gap between the two ECDFs at
    every cell boundary either side occupies, walked once.

    The same numbers as ``stats.ks_statistic`` / ``stats.ks_binning_error`` on the aligned
    counts; a cell holding one and the same value on both sides cannot hide a gap inside it,
    so only the others count towards the bound."""
    n_ref = float(sum(c[1] for c in ref)) or 1.0
    n_cur = float(sum(c[1] for c in cur)) or 1.0
    gap = bound = 0.0
    seen_ref = seen_cur = 0
    i = j = cells = 0
    while i < len(ref) or j < len(cur):
        a = ref[i] if i < len(ref) else None
        b = cur[j] if j < len(cur) else None
        cells += 1
        if b is None or (a is not None and a[0] < b[0]):
            seen_ref += a[1]  # type: ignore[index]
            if a[2] != a[3]:  # type: ignore[index]
                bound = max(bound, a[1] / n_ref)  # type: ignore[index]
            i += 1
        elif a is None or b[0] < a[0]:
            seen_cur += b[1]
            if b[2] != b[3]:
                bound = max(bound, b[1] / n_cur)
            j += 1
        else:
            seen_ref += a[1]
            seen_cur += b[1]
            if not a[2] == a[3] == b[2] == b[3]:
                bound = max(bound, a[1] / n_ref, b[1] / n_cur)
            i += 1
            j += 1
        gap = max(gap, abs(seen_ref / n_ref - seen_cur / n_cur))
    return min(gap, 1.0), bound, cells


def _compare_categorical(check: DriftConfig, ref: ColumnSummary, current: dict[Any, int],
                         n_current: int, drift: ColumnDrift) -> None:
    reference = dict(zip(ref.values, ref.value_counts, strict=True))
    cur_values, cur_counts = _categories(current, n_current)
    current_map = dict(zip(cur_values, cur_counts, strict=True))
    categories = list(reference) + [v for v in current_map if v not in reference]
    r = [reference.get(v, 0) for v in categories]
    c = [current_map.get(v, 0) for v in categories]
    labels = [str(v) for v in categories]
    movers = _movers(labels, r, c)
    new = [str(v) for v in categories if reference.get(v, 0) == 0]
    if new:
        movers.insert(0, f"only in current: {', '.join(new[:MAX_DETAILS])}"
                      + (f" and {len(new) - MAX_DETAILS} more" if len(new) > MAX_DETAILS else ""))
    drift.extra.update(categories=len(categories))
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


def _shared_drift(check: DriftConfig, share_key: tuple[str, str], ctx: EvalContext
                  ) -> DriftResult:
    result: DriftResult = ctx.shared_value(share_key, lambda: compute_drift(check, ctx))
    return result


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


def _column_evaluator(check: DriftConfig, share_key: tuple[str, str], column: str,
                      statistic: str, expectation: Expectation) -> Any:
    def evaluate(ctx: EvalContext) -> Outcome:
        return column_outcome(_shared_drift(check, share_key, ctx), column, statistic,
                              expectation)
    return evaluate


def _all_columns_evaluator(check: DriftConfig, share_key: tuple[str, str], statistic: str,
                           expectation: Expectation) -> Any:
    def evaluate(ctx: EvalContext) -> Outcome:
        result = _shared_drift(check, share_key, ctx)
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
        observed = {c: o.observed for c, o in outcomes.items()}
        bad = {c: o for c, o in outcomes.items() if o.status != "passed"}
        if not bad:
            return Outcome.passed(observed, expectation.text,
                                  f"{statistic} as expected in all {len(outcomes)} columns")
        message = f"{len(bad)} of {len(outcomes)} columns: " + "; ".join(
            o.message for o in bad.values())
        if all(o.status == "error" for o in bad.values()):
            return Outcome("error", observed, expectation.text, message)
        return Outcome.failed(message, observed, expectation.text)
    return evaluate

"""The reference summary saved under ``.mlfunnel/cache/``, so a later run reads only the
current data.

Keyed by the reference files' paths, sizes and content hashes and by the binning. A file
that cannot be read, is not JSON, or is JSON of another shape (an older version, a hand
edit, a truncated write from another tool) is only a missed shortcut: the summary is made
again and saved over it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from pytest_mlfunnel import secrets
from pytest_mlfunnel.atomic import write_atomic
from pytest_mlfunnel.context import EvalContext
from pytest_mlfunnel.kinds.drift.config import ColumnType, DriftConfig
from pytest_mlfunnel.kinds.drift.summary import ColumnSummary, to_cells
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.file_types import special_file
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tabular import open_table, table_rows_and_max

CACHE_DIR = ".mlfunnel/cache"
CACHE_VERSION = 2


# --------------------------------------------------------------------------- the key
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
        _write(rootdir / CACHE_DIR / "digests.json", json.dumps(known))
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


def table_version(check: DriftConfig, shared: dict[Any, Any] | None, rootdir: Path
                  ) -> str | None:
    """What the engine can tell of a reference that is not files: the user's ``version``
    label, or the row count and largest value of ``version.column`` (one query of its own,
    once per process); None when the check gives no version."""
    version = check.version
    if version is None:
        return None
    spec = check.drift.reference
    if isinstance(version, str):
        return f"{spec.cache_key()}\0label\0{version}"
    if shared is None:
        return None
    ctx = EvalContext(rootdir=rootdir, fixtures={}, shared=shared)
    table = open_table(spec, ctx)
    try:
        rows, largest = ctx.shared_value(("drift-version", spec.cache_key(), version.column),
                                         lambda: table_rows_and_max(table, version.column))
    except CriterionError as exc:
        raise CriterionError(f"version: {exc}") from None
    return f"{spec.cache_key()}\0rows\0{rows}\0max\0{version.column}\0{largest}"


def cache_path(check: DriftConfig, rootdir: Path, types: dict[str, ColumnType],
               shared: dict[Any, Any] | None = None) -> Path | None:
    if check.drift.reference.path is not None:
        fingerprint = reference_fingerprint(check.drift.reference, rootdir)
    else:
        fingerprint = table_version(check, shared, rootdir)
    if fingerprint is None:
        return None
    reference = check.drift.reference
    parts: dict[str, Any] = {"version": CACHE_VERSION, "files": fingerprint,
                             "format": reference.format, "bins": check.bins,
                             "columns": sorted(types.items())}
    if reference.options:  # the same files read with other options are other rows
        parts["options"] = reference.options_key()
    key = json.dumps(parts, sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return rootdir / CACHE_DIR / f"drift-reference-{digest}.json"


# --------------------------------------------------------------------------- the file
class _Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_unit: int
    low: float
    high: float
    refine: list[tuple[int | float, float, float, int]]
    bounds: bool
    integers: bool


class _SavedColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ColumnType
    n: int
    cells: list[tuple[int | float, int, int | float | None, int | float | None]] = []
    grid: _Grid | None = None
    starts: list[float] = []
    integral: bool = False
    values: list[Any] = []
    value_counts: list[int] = []
    error: None = None

    @field_validator("grid", mode="before")
    @classmethod
    def _no_grid(cls, value: Any) -> Any:
        return None if value == {} else value  # a categorical column has no grid


class _SavedSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str
    columns: dict[str, _SavedColumn]


_SAVED = TypeAdapter(_SavedSummary)


def _summary_of(saved: _SavedColumn) -> ColumnSummary | None:
    """The column's summary, or None when the saved numbers do not hold together."""
    if saved.n <= 0:
        return None
    if saved.kind == "numeric":
        ids = [cell[0] for cell in saved.cells]
        if (saved.grid is None or not saved.cells or ids != sorted(set(ids))
                or sum(cell[1] for cell in saved.cells) != saved.n
                or saved.starts != sorted(saved.starts)):
            return None
        return ColumnSummary("numeric", saved.n, cells=to_cells(saved.cells),
                             grid=saved.grid.model_dump(), starts=saved.starts,
                             integral=saved.integral)
    if (not saved.values or len(saved.values) != len(saved.value_counts)
            or sum(saved.value_counts) != saved.n):
        return None
    return ColumnSummary("categorical", saved.n, values=saved.values,
                         value_counts=saved.value_counts)


def load_summary(check: DriftConfig, rootdir: Path, types: dict[str, ColumnType],
                 shared: dict[Any, Any] | None = None) -> dict[str, ColumnSummary] | None:
    """The saved summary of exactly these columns, or None (not saved, or not usable)."""
    path = cache_path(check, rootdir, types, shared)
    if path is None or not path.is_file():
        return None
    try:
        saved = _SAVED.validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None
    if set(saved.columns) != set(types):
        return None
    summary: dict[str, ColumnSummary] = {}
    for column, fields in saved.columns.items():
        found = _summary_of(fields)
        if found is None or found.kind != types[column]:
            return None
        summary[column] = found
    return summary


def save_summary(check: DriftConfig, rootdir: Path, types: dict[str, ColumnType],
                 summary: dict[str, ColumnSummary], shared: dict[Any, Any] | None = None
                 ) -> None:
    path = cache_path(check, rootdir, types, shared)
    if path is None or any(col.error is not None for col in summary.values()):
        return
    try:
        body = json.dumps({"reference": check.drift.reference.display(),
                           "columns": {c: s.to_json() for c, s in summary.items()}})
    except (TypeError, ValueError):  # a value JSON cannot hold: only the shortcut is missed
        return
    if secrets.redact(body) != body:
        return  # a secret among the reference's values: masking it would change them
    _write(path, body)


def _write(path: Path, body: str) -> None:
    """Atomically (xdist workers may race to write it); a failure is only a missed shortcut."""
    with contextlib.suppress(OSError):
        write_atomic(path, body)

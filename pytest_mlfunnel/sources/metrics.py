"""Named numbers: metrics files (.json, .toml), fixtures returning mappings, and the readers
other modules register (SQL first row, Prometheus text, JSON over HTTP).

A reader turns a SourceSpec into a ``MetricSet``; ``MetricSet.resolve`` answers a metric name
(dotted path, ``*`` for one level). ``READERS`` is a lazy table of readers by file suffix
(``".prom"``) or URL scheme (``"sqlite://"``): the built-ins are listed in ``BUILTIN_READERS``,
plugins add theirs through the ``pytest_mlfunnel_metric_readers`` hook.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from pytest_mlfunnel.context import EvalContext
from pytest_mlfunnel.jsontext import JsonTextError, parse_json
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.registry import LazyTable
from pytest_mlfunnel.sources.failures import open_once
from pytest_mlfunnel.sources.file_types import read_whole, refuse_special_files
from pytest_mlfunnel.sources.spec import SourceSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_NAMES_SHOWN = 12


class MetricSet:
    """Flat ``dotted.name -> value`` metrics with wildcard lookup."""

    def __init__(self, values: Mapping[str, Any], origin: str,
                 evidence: Mapping[str, Any] | None = None,
                 ambiguous: Mapping[str, int] | None = None) -> None:
        self.values = dict(values)
        self.origin = origin
        # where exactly the numbers came from (e.g. an MLflow run id), for the report
        self.evidence = dict(evidence or {})
        #: names more than one value flattens to ({"a.b": 1, "a": {"b": 2}}) -> how many
        self.ambiguous = dict(ambiguous or {})

    @classmethod
    def of_nested(cls, value: Any, origin: str) -> MetricSet:
        """The metrics of nested mappings and lists, by dotted name."""
        flat: dict[str, Any] = {}
        ambiguous: dict[str, int] = {}
        _flatten_into(value, "", flat, ambiguous)
        return cls(flat, origin, ambiguous=ambiguous)

    def names(self) -> list[str]:
        return list(self.values)

    def resolve(self, pattern: str) -> list[tuple[str, Any]]:
        """Every (name, value) the pattern matches; ``*`` matches exactly one level.

        A name that holds several values raises: which one was meant cannot be known."""
        if "*" not in pattern:
            found = [(pattern, self.values[pattern])] if pattern in self.values else []
        else:
            wanted = pattern.split(".")
            found = []
            for name, value in self.values.items():
                parts = name.split(".")
                if len(parts) == len(wanted) and all(
                        w == "*" or w == p for w, p in zip(wanted, parts, strict=True)):
                    found.append((name, value))
        for name, _ in found:
            if name in self.ambiguous:
                raise CriterionError(
                    f"{name}: {self.origin} has {self.ambiguous[name]} values of that name (a "
                    "key written twice in one object, or written with dots and the same path "
                    "through nested keys or lists); rename one of them")
        return found

    def describe_names(self) -> str:
        names = self.names()
        shown = ", ".join(names[:MAX_NAMES_SHOWN])
        more = f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else ""
        return shown + more if names else "none"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings (and lists) -> dotted names (of two values of one name, the later;
    ``MetricSet.of_nested`` remembers such names instead)."""
    flat: dict[str, Any] = {}
    _flatten_into(value, prefix, flat, {})
    return flat


class RepeatedKeys(list[tuple[str, Any]]):
    """A JSON object that names a key more than once, as its (key, value) pairs: ``json``
    would keep the last value, and a check would judge it without a word."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | RepeatedKeys:
    found = dict(pairs)
    return found if len(found) == len(pairs) else RepeatedKeys(pairs)


def _flatten_into(value: Any, prefix: str, flat: dict[str, Any],
                  ambiguous: dict[str, int]) -> None:
    if isinstance(value, RepeatedKeys):  # each value put, so the repeated name is ambiguous
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in value]
    elif isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        if prefix:
            _put(flat, ambiguous, prefix, value)
        return
    for key, inner in items:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(inner, Mapping | list | tuple):
            _flatten_into(inner, name, flat, ambiguous)
        else:
            _put(flat, ambiguous, name, inner)


def _put(flat: dict[str, Any], ambiguous: dict[str, int], name: str, value: Any) -> None:
    if name in flat:
        ambiguous[name] = ambiguous.get(name, 1) + 1
    flat[name] = value


#: A metrics reader: a source -> its named numbers (raise ``CriterionError`` with one line).
MetricsReader = Callable[[SourceSpec, Path], MetricSet]

_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle",
                "duckdb", "snowflake", "bigquery", "redshift", "trino", "clickhouse",
                "databricks", "awsathena", "cockroachdb")

#: The built-in readers: a file suffix (``".json"``), a URL scheme (``"sqlite://"``; a
#: ``postgresql+psycopg://`` URL is looked up as ``postgresql://``) or ``"mlflow"`` ->
#: "module:function", imported on first use.
BUILTIN_READERS: dict[str, str] = {
    ".json": "pytest_mlfunnel.sources.metrics:read_json",
    ".toml": "pytest_mlfunnel.sources.metrics:read_toml_metrics",
    ".prom": "pytest_mlfunnel.sources.prometheus:read_prom_file",
    "http://": "pytest_mlfunnel.sources.http_metrics:read_http_metrics",
    "https://": "pytest_mlfunnel.sources.http_metrics:read_http_metrics",
    "mlflow": "pytest_mlfunnel.sources.mlflow_reader:read_mlflow_metrics",
    **{f"{scheme}://": "pytest_mlfunnel.sources.sql:read_sql_metrics"
       for scheme in _SQL_SCHEMES},
}
_READER_KEY = re.compile(r"\.[A-Za-z0-9_-]+|[a-z][a-z0-9.-]*://")


def _reader(found: object) -> MetricsReader:
    assert callable(found), found
    reader: MetricsReader = found
    return reader


#: Every reader, built-in or added by a plugin (``pytest_mlfunnel_metric_readers``).
READERS: LazyTable[MetricsReader] = LazyTable("metrics reader", BUILTIN_READERS, _reader)


def add_readers(readers: object, origin: str) -> None:
    """A plugin's readers, ``{key: reader}``; a bad key or a taken one is a ValueError."""
    if not isinstance(readers, Mapping):
        raise ValueError(f"{origin} returned {type(readers).__name__}, expected a mapping of "
                         "keys ('.yaml', 's3://') to readers")
    for key, reader in readers.items():
        if not isinstance(key, str) or not _READER_KEY.fullmatch(key):
            raise ValueError(f"metrics reader key {key!r} from {origin}: expected a file "
                             "suffix such as '.yaml' or a URL scheme such as 's3://'")
        if not callable(reader):
            raise ValueError(f"metrics reader {key!r} from {origin} is not callable")
        READERS.add(key, reader, origin)


def from_object(value: Any, origin: str) -> MetricSet:
    if isinstance(value, MetricSet):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    elif hasattr(value, "model_dump"):
        value = value.model_dump()
    if not isinstance(value, Mapping):
        raise CriterionError(f"{origin} returned {type(value).__name__}, expected a mapping "
                             "of metric names to numbers")
    return MetricSet.of_nested(value, origin)


def read_json(spec: SourceSpec, rootdir: Path) -> MetricSet:
    path = _existing(spec, rootdir)
    try:
        # bytes: json finds the encoding itself (a BOM, UTF-16 as PowerShell writes it)
        data = parse_json(read_whole(path, spec.display()), object_pairs_hook=_json_object)
        if not isinstance(data, Mapping | RepeatedKeys):
            raise CriterionError(f"{spec.display()}: expected a JSON object of metrics, "
                                 f"got {type(data).__name__}")
        return MetricSet.of_nested(data, spec.display())
    except JsonTextError as exc:
        if exc.too_deep:  # said as over HTTP
            raise CriterionError(f"{spec.display()}: the JSON is nested too deeply to read"
                                 ) from None
        raise CriterionError(f"{spec.display()}: not valid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CriterionError(f"{spec.display()}: cannot read: {exc}") from None
    except RecursionError:  # in the decoder or in flatten, whichever runs out first
        raise CriterionError(f"{spec.display()}: the JSON is nested too deeply to read"
                             ) from None


def read_toml_metrics(spec: SourceSpec, rootdir: Path) -> MetricSet:
    path = _existing(spec, rootdir)
    try:
        data = tomllib.loads(read_whole(path, spec.display()).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CriterionError(f"{spec.display()}: not valid TOML (not UTF-8: byte "
                             f"0x{exc.object[exc.start]:02x} at position {exc.start})"
                             ) from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of thousands of digits
        raise CriterionError(f"{spec.display()}: not valid TOML ({exc})") from None
    except RecursionError:
        raise CriterionError(f"{spec.display()}: not valid TOML (arrays or tables nested "
                             "too deeply to read)") from None
    except OSError as exc:
        raise CriterionError(f"{spec.display()}: cannot read: {exc}") from None
    return MetricSet.of_nested(data, spec.display())


def _existing(spec: SourceSpec, rootdir: Path) -> Path:
    path = spec.resolve_path(rootdir)
    if not path.exists():
        raise CriterionError(f"{spec.display()}: file not found (expected at {path}; "
                             "an earlier CI step should write it)")
    if path.is_dir():
        raise CriterionError(f"{spec.display()}: is a directory, expected a metrics file")
    refuse_special_files([path], spec.display(), rootdir)
    return path


def load_metrics(spec: SourceSpec, rootdir: Path, context: EvalContext | None = None
                 ) -> MetricSet:
    """Read a metrics source. Files, databases and URLs are read once per session."""
    if spec.fixture is not None:
        if context is None or spec.fixture not in context.fixtures:
            raise CriterionError(f"fixture {spec.fixture!r} is not available here")
        return from_object(context.fixtures[spec.fixture], f"fixture {spec.fixture!r}")
    if context is not None:
        # a failed read fails once: a URL that timed out is not asked again per criterion
        shared = context.shared
        found: MetricSet = context.shared_value(("metrics", spec.cache_key()), lambda: open_once(
            shared, "metrics", spec.display(), lambda: _read(spec, rootdir),
            identity=spec.cache_key()))
        return found
    return _read(spec, rootdir)


def _read(spec: SourceSpec, rootdir: Path) -> MetricSet:
    found = _read_any(spec, rootdir)
    if not isinstance(found, MetricSet):  # a plugin's reader
        raise CriterionError(f"{spec.display()}: its metrics reader returned {found!r}, not a "
                             "MetricSet")
    return found


def _read_any(spec: SourceSpec, rootdir: Path) -> object:
    if spec.mlflow is not None:
        return READERS.get("mlflow")(spec, rootdir)
    if spec.spark is not None:
        raise CriterionError(f"{spec.display()}: a Spark table is read by table checks "
                             "(dataset, drift, effect, predictions), not as metrics")
    if spec.url is not None:
        scheme = spec.url_scheme.split("+", 1)[0]
        reader = READERS.find(f"{scheme}://")
        if reader is None:
            raise CriterionError(f"{spec.display()}: no metrics reader for {scheme}:// URLs")
        return reader(spec, rootdir)
    suffix = spec.suffix
    reader = READERS.find(f".{suffix}")
    if reader is None:
        known = ", ".join(k[1:] for k in READERS.keys if k.startswith("."))
        raise CriterionError(f"{spec.display()}: cannot read metrics from a .{suffix or '?'} "
                             f"file (metrics files: {known})")
    return reader(spec, rootdir)

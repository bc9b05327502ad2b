"""Opening a table source: files become views in the process's DuckDB, a database ``url``
with ``table`` or ``query`` becomes a SQL engine that speaks that database's dialect.

The engines themselves (``pytest_mlfunnel.engines``) know nothing of a ``SourceSpec``; these
openers turn one into an engine.
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_mlfunnel.engines.dialects import DuckDBDialect, Executor, dialect_for_url
from pytest_mlfunnel.engines.protocol import log_query
from pytest_mlfunnel.engines.sql import (
    SqlEngine,
    duckdb_connection,
    duckdb_executor,
    duckdb_reason,
    duckdb_schema,
)
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.database import run_query, stream_query
from pytest_mlfunnel.sources.file_types import refuse_special_files
from pytest_mlfunnel.sources.spec import SourceSpec

_FILE_READERS = {
    "parquet": "read_parquet", "pq": "read_parquet",
    "csv": "read_csv", "csv.gz": "read_csv", "txt": "read_csv",
    "tsv": "read_csv", "tsv.gz": "read_csv", "tab": "read_csv",
    "jsonl": "read_json", "ndjson": "read_json", "json": "read_json",
    "jsonl.gz": "read_json", "ndjson.gz": "read_json", "json.gz": "read_json",
}


def _duck_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_duck_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"'{k}': {_duck_literal(v)}" for k, v in value.items()) + "}"
    return "'" + str(value).replace("'", "''") + "'"


def open_file(spec: SourceSpec, rootdir: Path, shared: dict[Any, Any]) -> SqlEngine:
    """A view over the file(s) in the process's DuckDB; nothing is read until a query runs."""
    display = spec.display()
    path = spec.resolve_path(rootdir)
    pattern = str(path)
    files: list[str | Path] = [path]
    if glob.has_magic(pattern):
        files = sorted(glob.glob(pattern, recursive=True))
        if not files:
            raise CriterionError(f"{display}: no file matches {spec.path}")
    elif not path.exists():
        raise CriterionError(f"{display}: file not found (expected at {path}; an earlier CI "
                             "step should write it)")
    elif path.is_dir():
        raise CriterionError(f"{display}: is a directory; give a glob such as "
                             f"{spec.path}/*.parquet")
    refuse_special_files(files, display, rootdir)
    suffix = spec.suffix if spec.format or not glob.has_magic(pattern) else (
        SourceSpec(path=Path(pattern).name).suffix)
    reader = _FILE_READERS.get(suffix)
    if reader is None:
        known = ", ".join(sorted({"." + k for k in _FILE_READERS}))
        raise CriterionError(f"{display}: cannot read a table from a .{suffix or '?'} file "
                             f"(tables: {known}; or set format = ...)")
    options = dict(spec.options)
    if (reader == "read_parquet" and len(files) > 1 and "union_by_name" not in options
            and _types_differ(pattern, shared)):
        # DuckDB reads a glob with its first file's types, casting the others' values without
        # a word: 1.5 in a double file after an int64 one came back as 2. Read by name, the
        # files' types meet in one that holds every value (int and double as double).
        options["union_by_name"] = True
    if suffix.startswith("tsv") or suffix == "tab":
        options.setdefault("delim", "\t")
    if reader == "read_json" and suffix != "json" and suffix != "json.gz":
        options.setdefault("format", "newline_delimited")
    args = _args(options)
    connection = duckdb_connection(shared)
    counter = shared.setdefault(("tabular", "views"), itertools.count())
    view = f"mlfunnel_t{next(counter)}"
    fmt = suffix.split(".")[0]
    execute = duckdb_executor(connection, display, prefix=f"cannot read as {fmt}: ")
    if len(files) > 1 and "union_by_name" not in options:
        execute = _naming_union_by_name(execute)
    source = f"{reader}({_duck_literal(pattern)}{args})"
    create = f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {source}"
    log_query("open", display, create)  # DuckDB reads the file's head here (CSV sniffing)
    try:
        connection.execute(create)
    except Exception as exc:
        raise CriterionError(f"{display}: cannot read as {fmt}: {_error_line(exc)}") from None
    parquet = reader == "read_parquet"
    schema = duckdb_schema(execute, view, display)
    if reader == "read_csv" and not {"delim", "sep"} & set(spec.options):
        schema = _refusing_ragged_rows(schema, connection, str(files[0]), args, display)
    if reader == "read_csv":
        schema = _booleans_as_written(schema, execute, view, pattern, options)
    return SqlEngine(display, view, "duckdb", execute, schema,
                     connection_id=id(connection), cheap_bounds=parquet,
                     footers=_duck_literal(pattern) if parquet and not options else None,
                     bounded_sorts=True)


def _types_differ(pattern: str, shared: dict[Any, Any]) -> bool:
    """Whether the Parquet files of a glob hold the same columns, one of them typed apart in
    two files (read from the footers alone; the root of each schema left out)."""
    connection = duckdb_connection(shared)
    try:
        # the footers read once: every file, then each column's files and types among them
        rows = connection.execute(
            "WITH s AS MATERIALIZED (SELECT file_name, name, duckdb_type, column_id FROM "
            "parquet_schema(?)) SELECT name, count(DISTINCT file_name), "
            "count(DISTINCT duckdb_type), (SELECT count(DISTINCT file_name) FROM s) FROM s "
            "WHERE column_id > 0 GROUP BY name", [pattern]).fetchall()
    except Exception:  # an unreadable footer is named when the view is read
        return False
    same_columns = all(int(n) == int(files) for _, n, _, files in rows)
    return same_columns and any(int(kinds) > 1 for _, _, kinds, _ in rows)


def _naming_union_by_name(execute: Executor) -> Executor:
    """DuckDB's one line on files of a glob that hold other columns, with the option that
    reads them by name (a column a file lacks is then null in its rows)."""
    def run(sql: str, purpose: str) -> list[tuple[Any, ...]]:
        try:
            return execute(sql, purpose)
        except CriterionError as exc:
            if "schema mismatch" not in str(exc):
                raise
            raise CriterionError(f"{exc}; files with other columns are read by name with "
                                 "options = { union_by_name = true } on the source") from None
    return run


def _refusing_ragged_rows(load: Callable[[], dict[str, str]], connection: Any, first: str,
                          args: str, display: str) -> Callable[[], dict[str, str]]:
    """The columns of a CSV file, refusing the one column DuckDB falls back to when no
    delimiter fits every row (a row with a field too few or too many): its name is the whole
    header line, and every column the user names would be reported missing from a list that
    seems to hold it. A one-column file whose quoted name holds the delimiter is read as it
    is."""
    def load_checked() -> dict[str, str]:
        columns = load()
        if len(columns) != 1:
            return columns
        (name,) = columns
        separators = {char for char in name if char in _SEPARATORS}
        if not separators:
            return columns
        try:
            ((delimiter,),) = connection.execute(
                f"SELECT Delimiter FROM sniff_csv({_duck_literal(first)}{args})").fetchall()
        except Exception:  # the file was read once already: keep that reading
            return columns
        if delimiter in separators:
            return columns
        raise CriterionError(
            f"{display}: read as one column named {name!r}: not every row has as many fields "
            "as the header, so no delimiter fits every row; options = { null_padding = true } "
            "on the source reads a row's missing fields as nulls")
    return load_checked


_SEPARATORS = ",;\t|"
_TYPE_OPTIONS = ("types", "dtypes", "column_types")
#: the rows DuckDB's CSV sniffer looks at by default, and so the rows looked at again here
_SNIFFED_ROWS = 20480


def _booleans_as_written(load: Callable[[], dict[str, str]], execute: Executor, view: str,
                         pattern: str, options: dict[str, Any]) -> Callable[[], dict[str, str]]:
    """DuckDB's CSV sniffer reads a column of ``yes``/``no`` or ``t``/``f`` as booleans,
    where pandas and polars read only ``true``/``false`` so: a rule listing ``["yes", "no"]``
    would be told the file's own text is not a boolean. Such a column is read as the text it
    is (the view made again with ``types`` naming it VARCHAR); a column of true/false in any
    case stays boolean, and a column the source's own ``types`` names keeps its type."""
    def load_checked() -> dict[str, str]:
        columns = load()
        given = [options[k] for k in _TYPE_OPTIONS if k in options]
        if given and not all(isinstance(g, dict) for g in given):
            return columns  # types given by position: the user typed every column
        named = {name for g in given for name in g}
        candidates = [c for c, kind in columns.items() if kind == "bool" and c not in named]
        if not candidates:
            return columns
        quote = DuckDBDialect().quote
        texts = ", ".join(f"list_distinct(list(lower(trim({quote(c)}))))" for c in candidates)
        head = {k: v for k, v in options.items() if k not in (*_TYPE_OPTIONS, "all_varchar")}
        reading = f"read_csv({_duck_literal(pattern)}{_args(head)}, all_varchar = true)"
        rows = int(options.get("sample_size", _SNIFFED_ROWS))
        limit = f" LIMIT {rows}" if rows > 0 else ""  # -1: DuckDB sniffed the whole file
        (found,) = execute(f"SELECT {texts} FROM (SELECT * FROM {reading}{limit})",
                           "the text of columns sniffed as booleans")
        as_text = [c for c, seen in zip(candidates, found, strict=True)
                   if set(seen or ()) - {"true", "false"}]
        if not as_text:
            return columns
        types = {name: kind for g in given for name, kind in g.items()}
        types.update((c, "VARCHAR") for c in as_text)
        kept = {k: v for k, v in options.items() if k not in _TYPE_OPTIONS}
        execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM read_csv("
                f"{_duck_literal(pattern)}{_args(kept)}, types = {_duck_literal(types)})",
                "the view, yes/no columns read as text")
        return {c: "string" if c in as_text else kind for c, kind in columns.items()}
    return load_checked


def _args(options: dict[str, Any]) -> str:
    return "".join(f", {k} = {_duck_literal(v)}" for k, v in options.items())


# --------------------------------------------------------------------------- databases
def open_database(spec: SourceSpec, rootdir: Path) -> SqlEngine:
    """``url`` + ``table`` or ``query``: every aggregate runs in the database."""
    display = spec.display()
    dialect = dialect_for_url(spec.url_scheme)
    if spec.table:
        source = dialect.qualified(spec.table)
    elif spec.query:
        source = f"({_statement_body(spec.query)})"
    else:
        raise CriterionError(f"{display}: a database table source needs table = ... or "
                             "query = ...")

    def execute(sql: str, purpose: str) -> list[tuple[Any, ...]]:
        return run_query(spec, sql, rootdir)[1]

    def paged(sql: str, purpose: str, page: int) -> Iterator[list[tuple[Any, ...]]]:
        return stream_query(spec, sql, rootdir, page)

    def schema() -> dict[str, str]:
        names = _column_names(spec, source, rootdir)
        log_query("schema", display, f"SELECT * FROM {source} LIMIT 0")
        return dialect.column_types(source, execute, spec.table, names)

    return SqlEngine(display, source, dialect, execute, schema,
                     connection_id=("db", spec.url), paged=paged)


def _statement_body(query: str) -> str:
    """``query`` without what follows its last token when that is comments and semicolons, so
    it reads as a subquery: a trailing ``-- comment`` would swallow the closing parenthesis,
    and a ``;`` inside one is a syntax error. Quoted text and identifiers are skipped whole."""
    end, i, n = 0, 0, len(query)
    while i < n:
        char = query[i]
        if query.startswith("--", i):
            newline = query.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif query.startswith("/*", i):
            close = query.find("*/", i + 2)
            i = n if close < 0 else close + 2
        elif char in "'\"`":
            close = i + 1
            while True:  # a doubled quote is one quote inside the text
                close = query.find(char, close)
                if close < 0 or not query.startswith(char, close + 1):
                    break
                close += 2
            i = end = n if close < 0 else close + 1
        elif char == ";":
            i += 1  # kept only when a token follows (then the database says what is wrong)
        elif char.isspace():
            i += 1
        else:
            i = end = i + 1
    body = query[:end]
    return body if body.strip() else query.strip()


def _column_names(spec: SourceSpec, source: str, rootdir: Path) -> list[str]:
    columns, _ = run_query(spec, f"SELECT * FROM {source} AS s LIMIT 0", rootdir)
    return columns


def _error_line(exc: BaseException) -> str:
    return duckdb_reason(exc)

"""Databases and warehouses: SQLite through the standard library, everything else through
SQLAlchemy (the optional ``sql`` extra). Queries run in the database; only results come back.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pytest_mlfunnel import secrets
from pytest_mlfunnel.engines.connections import (
    SQL_EXTRA_HINT,
    engine_for,
    limit_statement_time,
    short_error,
    timed_out,
)
from pytest_mlfunnel.expectations import duration_seconds, format_duration
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.file_types import refuse_special_files
from pytest_mlfunnel.sources.spec import SourceSpec


def sqlite_path(url: str, rootdir: Path) -> Path:
    """``sqlite:///ops/usage.db`` is relative to the rootdir; ``sqlite:////abs`` is absolute."""
    rest = url.split(":///", 1)[1] if ":///" in url else url.split("://", 1)[1]
    rest = unquote(rest.split("?", 1)[0])
    path = Path(rest)
    return path if path.is_absolute() else rootdir / path


#: how long a query waits for a database file another process is writing (sqlite3's timeout)
SQLITE_BUSY_TIMEOUT_S = 10
#: how long one query may run, a wait for another session's lock included, unless the
#: source's ``options = { timeout = "..." }`` says otherwise
QUERY_TIMEOUT_S = 600.0
#: how long connecting to a database server may take (never more than the query timeout)
CONNECT_TIMEOUT_S = 10
_MOST_QUERY_TIMEOUT_S = 86400.0


def query_timeout(spec: SourceSpec) -> float:
    """``options = { timeout = "30 min" }`` on a database source; 10 min when not given."""
    raw = spec.timeout_option("database source", "10 min")
    if raw is None:
        return QUERY_TIMEOUT_S
    try:
        seconds = duration_seconds(raw, "10 min")
    except ValueError as exc:
        raise CriterionError(f"{spec.display()}: options.timeout: {exc}") from None
    if not 0 < seconds <= _MOST_QUERY_TIMEOUT_S:
        raise CriterionError(f"{spec.display()}: options.timeout must be more than 0 and at "
                             f"most 24 h, got {raw!r}")
    return seconds


def run_query(spec: SourceSpec, sql: str, rootdir: Path, params: Sequence[Any] = (),
              max_rows: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one query; returns (column names, rows: all of them, or the first ``max_rows``,
    the rest never fetched). Errors become one CriterionError line."""
    scheme = _checked_scheme(spec)
    limit = query_timeout(spec)
    if scheme == "sqlite":
        path = _sqlite_file(spec, rootdir)
        deadline = [time.monotonic() + limit]
        try:
            with closing(_sqlite_connect(path, limit, deadline)) as conn:
                cursor = conn.execute(sql, tuple(params))
                columns = [d[0] for d in cursor.description or ()]
                rows = cursor.fetchall() if max_rows is None else cursor.fetchmany(max_rows)
                return columns, [tuple(row) for row in rows]
        except sqlite3.Error as exc:
            raise CriterionError(_sqlite_error(spec, exc, limit)) from None
    sqlalchemy, engine = _sqlalchemy_engine(spec, scheme, limit)
    try:
        with engine.connect() as conn:
            limit_statement_time(conn, spec.url or "", limit, "timeout" in spec.options)
            if max_rows is not None:  # a server-side cursor where the driver has one: the
                conn = conn.execution_options(stream_results=True)  # rest never comes over
            # text() lets each dialect escape its own placeholders ('%' for psycopg)
            result = (conn.exec_driver_sql(sql, tuple(params)) if params
                      else conn.execute(sqlalchemy.text(sql)))
            columns = list(result.keys())
            rows = result.fetchall() if max_rows is None else result.fetchmany(max_rows)
            return columns, [tuple(row) for row in rows]
    except Exception as exc:
        raise CriterionError(_database_error(spec, exc, limit)) from None


def stream_query(spec: SourceSpec, sql: str, rootdir: Path, page: int
                 ) -> Iterator[list[tuple[Any, ...]]]:
    """``run_query``'s rows in lists of at most ``page`` rows, from ONE query whose rows the
    database hands over as they are fetched, with ``run_query``'s checks, timeouts and error
    lines (an error on a later page too). SQLite steps through the rows as they are fetched;
    through SQLAlchemy the ``yield_per`` option asks for a server-side cursor, which the
    PostgreSQL dialects have (psycopg: a named cursor, ``DECLARE`` then ``FETCH`` ``page``
    rows at a time); a driver without one buffers the rows itself, as ``run_query`` would."""
    scheme = _checked_scheme(spec)
    limit = query_timeout(spec)
    if scheme == "sqlite":
        path = _sqlite_file(spec, rootdir)
        deadline = [time.monotonic() + limit]
        try:
            with closing(_sqlite_connect(path, limit, deadline)) as conn:
                cursor = conn.execute(sql)
                while rows := cursor.fetchmany(page):
                    yield [tuple(row) for row in rows]
                    # each page has the whole bound, as each FETCH has on PostgreSQL: the
                    # time the caller spends on a page is not the query's
                    deadline[0] = time.monotonic() + limit
        except sqlite3.Error as exc:
            raise CriterionError(_sqlite_error(spec, exc, limit)) from None
        return
    sqlalchemy, engine = _sqlalchemy_engine(spec, scheme, limit)
    try:
        with engine.connect() as conn:
            limit_statement_time(conn, spec.url or "", limit, "timeout" in spec.options)
            result = conn.execution_options(yield_per=page).execute(sqlalchemy.text(sql))
            for rows in result.partitions(page):
                yield [tuple(row) for row in rows]
    except Exception as exc:
        raise CriterionError(_database_error(spec, exc, limit)) from None


def _database_error(spec: SourceSpec, exc: Exception, limit: float) -> str:
    """The driver's one line after the source's name, or what ran out and how to move it."""
    text = short_error(exc)
    bound = timed_out(text)
    if bound == "statement":
        return (f"{spec.display()}: the query did not finish within {format_duration(limit)} "
                "(a long query, or one waiting for a lock another session holds; "
                "options.timeout sets the bound)")
    if bound == "connect" and "connect_timeout=" not in (spec.url or ""):
        return (f"{spec.display()}: cannot connect: no answer within "
                f"{format_duration(_connect_timeout(limit))}")
    return f"{spec.display()}: {text}"


def _sqlite_error(spec: SourceSpec, exc: sqlite3.Error, limit: float) -> str:
    if str(exc) == "interrupted":  # the progress handler's deadline
        return (f"{spec.display()}: the query did not finish within {format_duration(limit)} "
                "(options.timeout sets the bound)")
    if str(exc) == "database is locked":
        busy = format_duration(min(SQLITE_BUSY_TIMEOUT_S, limit))
        return (f"{spec.display()}: database is locked: another connection kept it locked "
                f"for writing for {busy} (an open write transaction)")
    return f"{spec.display()}: SQL error: {exc}"


def _connect_timeout(limit: float) -> int:
    """Whole seconds, as libpq takes them."""
    return max(1, min(CONNECT_TIMEOUT_S, round(limit)))


def _checked_scheme(spec: SourceSpec) -> str:
    assert spec.url is not None
    problem = secrets.ambiguous_url(spec.url)
    if problem is not None:  # a driver would connect somewhere else, or echo the pieces
        raise CriterionError(f"{spec.display()}: {problem}")
    return spec.url_scheme


def _sqlite_file(spec: SourceSpec, rootdir: Path) -> Path:
    assert spec.url is not None
    path = sqlite_path(spec.url, rootdir)
    if not path.exists():
        raise CriterionError(f"{spec.display()}: database file not found ({path})")
    refuse_special_files([path], spec.display(), rootdir)
    return path


def _sqlite_connect(path: Path, limit: float, deadline: list[float]) -> sqlite3.Connection:
    """The file opened read-only: nothing is ever written to a user's database. A query still
    running at ``deadline[0]`` is interrupted (SQLite has no statement timeout of its own)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                           timeout=min(SQLITE_BUSY_TIMEOUT_S, limit))
    conn.set_progress_handler(lambda: time.monotonic() > deadline[0], 100_000)
    return conn


def _sqlalchemy_engine(spec: SourceSpec, scheme: str, limit: float) -> tuple[Any, Any]:
    """(the sqlalchemy module, the run's engine of the URL)."""
    assert spec.url is not None
    try:
        import sqlalchemy
    except ModuleNotFoundError:
        raise CriterionError(f"{spec.display()}: {scheme}:// needs SQLAlchemy: "
                             f"{SQL_EXTRA_HINT}") from None
    return sqlalchemy, engine_for(spec.url, spec.display(), _connect_timeout(limit))

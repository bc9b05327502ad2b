"""Databases and warehouses: SQLite through the standard library, everything else through
SQLAlchemy (the optional ``sql`` extra). Queries run in the database; only results come back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pytest_mlfunnel import secrets
from pytest_mlfunnel.engines.connections import SQL_EXTRA_HINT, engine_for, short_error
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


def run_query(spec: SourceSpec, sql: str, rootdir: Path, params: Sequence[Any] = ()
              ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one query; returns (column names, rows). Errors become one CriterionError line."""
    scheme = _checked_scheme(spec)
    if scheme == "sqlite":
        path = _sqlite_file(spec, rootdir)
        try:
            with closing(_sqlite_connect(path)) as conn:
                cursor = conn.execute(sql, tuple(params))
                columns = [d[0] for d in cursor.description or ()]
                return columns, [tuple(row) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise CriterionError(f"{spec.display()}: SQL error: {exc}") from None
    sqlalchemy, engine = _sqlalchemy_engine(spec, scheme)
    try:
        with engine.connect() as conn:
            # text() lets each dialect escape its own placeholders ('%' for psycopg)
            result = (conn.exec_driver_sql(sql, tuple(params)) if params
                      else conn.execute(sqlalchemy.text(sql)))
            columns = list(result.keys())
            return columns, [tuple(row) for row in result.fetchall()]
    except Exception as exc:
        raise CriterionError(f"{spec.display()}: {short_error(exc)}") from None


def stream_query(spec: SourceSpec, sql: str, rootdir: Path, page: int
                 ) -> Iterator[list[tuple[Any, ...]]]:
    """``run_query``'s rows in lists of at most ``page`` rows, from ONE query whose rows the
    database hands over as they are fetched, with ``run_query``'s checks, timeouts and error
    lines (an error on a later page too). SQLite steps through the rows as they are fetched;
    through SQLAlchemy the ``yield_per`` option asks for a server-side cursor, which the
    PostgreSQL dialects have (psycopg: a named cursor, ``DECLARE`` then ``FETCH`` ``page``
    rows at a time); a driver without one buffers the rows itself, as ``run_query`` would."""
    scheme = _checked_scheme(spec)
    if scheme == "sqlite":
        path = _sqlite_file(spec, rootdir)
        try:
            with closing(_sqlite_connect(path)) as conn:
                cursor = conn.execute(sql)
                while rows := cursor.fetchmany(page):
                    yield [tuple(row) for row in rows]
        except sqlite3.Error as exc:
            raise CriterionError(f"{spec.display()}: SQL error: {exc}") from None
        return
    sqlalchemy, engine = _sqlalchemy_engine(spec, scheme)
    try:
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=page).execute(sqlalchemy.text(sql))
            for rows in result.partitions(page):
                yield [tuple(row) for row in rows]
    except Exception as exc:
        raise CriterionError(f"{spec.display()}: {short_error(exc)}") from None


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


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    """The file opened read-only: nothing is ever written to a user's database."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)


def _sqlalchemy_engine(spec: SourceSpec, scheme: str) -> tuple[Any, Any]:
    """(the sqlalchemy module, the run's engine of the URL)."""
    assert spec.url is not None
    try:
        import sqlalchemy
    except ModuleNotFoundError:
        raise CriterionError(f"{spec.display()}: {scheme}:// needs SQLAlchemy: "
                             f"{SQL_EXTRA_HINT}") from None
    return sqlalchemy, engine_for(spec.url, spec.display())

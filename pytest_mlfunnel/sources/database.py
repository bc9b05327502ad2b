"""Databases and warehouses: SQLite through the standard library, everything else through
SQLAlchemy (the optional ``sql`` extra). Queries run in the database; only results come back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
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


def run_query(spec: SourceSpec, sql: str, rootdir: Path, params: Sequence[Any] = ()
              ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one query; returns (column names, rows). Errors become one CriterionError line."""
    assert spec.url is not None
    problem = secrets.ambiguous_url(spec.url)
    if problem is not None:  # a driver would connect somewhere else, or echo the pieces
        raise CriterionError(f"{spec.display()}: {problem}")
    scheme = spec.url_scheme
    if scheme == "sqlite":
        path = sqlite_path(spec.url, rootdir)
        if not path.exists():
            raise CriterionError(f"{spec.display()}: database file not found ({path})")
        refuse_special_files([path], spec.display(), rootdir)
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
                cursor = conn.execute(sql, tuple(params))
                columns = [d[0] for d in cursor.description or ()]
                return columns, [tuple(row) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise CriterionError(f"{spec.display()}: SQL error: {exc}") from None
    try:
        import sqlalchemy
    except ModuleNotFoundError:
        raise CriterionError(f"{spec.display()}: {scheme}:// needs SQLAlchemy: "
                             f"{SQL_EXTRA_HINT}") from None
    engine = engine_for(spec.url, spec.display())
    try:
        with engine.connect() as conn:
            # text() lets each dialect escape its own placeholders ('%' for psycopg)
            result = (conn.exec_driver_sql(sql, tuple(params)) if params
                      else conn.execute(sqlalchemy.text(sql)))
            columns = list(result.keys())
            return columns, [tuple(row) for row in result.fetchall()]
    except Exception as exc:
        raise CriterionError(f"{spec.display()}: {short_error(exc)}") from None

"""Joining tables that two engines read: the side(s) not on the shared DuckDB are copied into it.

``Table.joined`` looks another table's columns up by key in one engine. When the two tables live
on different engines (predictions in Parquet, production's in PostgreSQL or SQLite, or the
reverse), the table that is not on the session's shared DuckDB connection is copied into a
temporary table there, and the join runs in DuckDB as it does for two files. A database is only
read (SQLite is even opened read-only): nothing is written to it.

Cost and bounds: the copied side is read by ONE query, ``SELECT <columns> FROM <source>`` with no
``ORDER BY`` (the rows go into a table: their order does not matter), and its rows pass through
Python once, in pages of ``COPY_PAGE`` rows fetched as the copy asks for them
(``SqlEngine.run_in_pages``): a database URL's table streams through the executor that runs its
other queries, with the same checks, timeouts and error lines (SQLite steps through the rows;
PostgreSQL hands them over from a server-side cursor, so the driver never holds the whole table;
another SQLAlchemy driver without one buffers them as it does for every query), and an error on a
later page ends the copy with that one line. An engine that cannot stream (Spark, a DuckDB relation
from a fixture) runs the same one query and hands its rows over whole. A lazy frame is collected in
one piece. Only the columns needed are copied from a baseline (its key and value columns); a
predictions table is copied whole. Above ``copy_limit()`` rows (``MLFUNNEL_JOIN_COPY_ROWS``,
default 5,000,000) the join is refused with a message saying so, before any row is read.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator
from contextlib import closing
from typing import Any

from pytest_mlfunnel.engines.dialects import plain
from pytest_mlfunnel.engines.protocol import Agg, Engine
from pytest_mlfunnel.engines.sql import SqlEngine, duckdb_connection, duckdb_executor
from pytest_mlfunnel.outcome import CriterionError

COPY_PAGE = 100_000
COPY_LIMIT_ENV = "MLFUNNEL_JOIN_COPY_ROWS"
DEFAULT_COPY_LIMIT = 5_000_000
_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN",
          "date": "DATE", "datetime": "TIMESTAMP", "other": "VARCHAR"}


def copy_limit() -> int:
    """The most rows copied from one engine into another for a join."""
    text = os.environ.get(COPY_LIMIT_ENV, "").strip()
    if not text:
        return DEFAULT_COPY_LIMIT
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise CriterionError(f"{COPY_LIMIT_ENV}={text!r} is not a number of rows")
    return value


def on_connection(engine: Engine, connection: Any) -> bool:
    return isinstance(engine, SqlEngine) and engine.connection_id == id(connection)


def joined_across(left: Engine, on: list[str], right: Engine, right_on: list[str],
                  columns: dict[str, str], shared: dict[Any, Any]) -> Engine:
    """``left`` with ``columns`` of ``right`` beside each row (see ``Engine.joined_native``),
    the tables of two engines joined in the shared DuckDB."""
    connection = duckdb_connection(shared)
    limit = copy_limit()
    sides: list[Engine] = []
    for which, engine, needed in (("first", left, None),
                                  ("second", right, [*right_on, *columns.values()])):
        if on_connection(engine, connection):
            sides.append(engine)
            continue
        rows = int(engine.compute([Agg("rows")])[0])
        if rows > limit:
            raise CriterionError(
                f"cannot join {left.display} with {right.display}: two engines read them, and "
                f"the join would copy the {which} into DuckDB, but it has {rows:,} rows, more "
                f"than {limit:,} ({COPY_LIMIT_ENV}); give both tables on one engine (files "
                "and DataFrame fixtures share one DuckDB; tables of one database URL share its "
                "connection) or raise the limit")
        sides.append(copy_into(engine, connection, shared, needed))
    joined = sides[0].joined_native(on, sides[1], right_on, columns)
    assert joined is not None  # both on one DuckDB connection now
    return joined


def copy_into(engine: Engine, connection: Any, shared: dict[Any, Any],
              columns: list[str] | None) -> SqlEngine:
    """The table's rows (``columns`` of it, or all) in a temporary table of ``connection``."""
    schema = engine.schema()
    names = list(dict.fromkeys(columns)) if columns is not None else list(schema)
    counter = shared.setdefault(("tabular", "copies"), itertools.count())
    table = f"mlfunnel_copy{next(counter)}"
    quoted = ['"' + n.replace('"', '""') + '"' for n in names]
    types = [_TYPES.get(schema[n], "VARCHAR") for n in names]
    declared = ", ".join(f"{q} {t}" for q, t in zip(quoted, types, strict=True))
    connection.execute(f"CREATE TEMP TABLE {table} ({declared})")
    unnested = ", ".join(f"unnest(?::{t}[])" for t in types)
    # closed as soon as the copy stops, an insert's error too: the source's cursor goes with it
    with closing(_pages(engine, names)) as pages:
        for page in pages:
            if page:
                values = [[_value(row[i], schema[n]) for row in page]
                          for i, n in enumerate(names)]
                connection.execute(f"INSERT INTO {table} SELECT {unnested}", values)
    copied = {n: schema[n] if schema[n] != "other" else "string" for n in names}
    return SqlEngine(engine.display, table, "duckdb", duckdb_executor(connection, engine.display),
                     lambda: copied, connection_id=id(connection))


def _value(value: Any, dtype: str) -> Any:
    value = plain(value)
    if value is not None and dtype in ("other", "string") and not isinstance(value, str):
        return str(value)
    return value


def _pages(engine: Engine, names: list[str]
           ) -> Generator[list[tuple[Any, ...]], None, None]:
    """The rows of ``names``, page by page: one query, in no order (they go into a table)."""
    if isinstance(engine, SqlEngine):
        listed = ", ".join(engine.q(n) for n in names)
        yield from engine.run_in_pages(f"SELECT {listed} FROM {engine._from()}", "copy",
                                       COPY_PAGE)
        return
    collect = getattr(engine, "_collect", None)
    frame = getattr(engine, "frame", None)
    if collect is None or frame is None:
        raise CriterionError(f"{engine.display}: this engine cannot hand its rows to another")
    yield collect(frame.select(*names), "copy")

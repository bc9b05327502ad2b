"""``{ spark = "catalog.schema.table" }``: a table of the SparkSession's catalog.

The session is the ``mlfunnel_spark_session`` fixture's value (the plugin's default returns
the active session of the process; a conftest.py fixture of that name overrides it), else
``SparkSession.getActiveSession()`` when the check runs. pyspark is imported only here, and
only when a Spark source is read; the engine is ``engines.spark``.
"""

from __future__ import annotations

from typing import Any

from pytest_mlfunnel.engines.dialects import SparkDialect
from pytest_mlfunnel.engines.spark import (
    error_text,
    map_columns,
    quiet_spark_errors,
    refuse_stopped,
    schema_of,
    spark_engine,
)
from pytest_mlfunnel.engines.sql import SqlEngine
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.spec import SPARK_SESSION_FIXTURE, SourceSpec

_INSTALL = "pip install 'pytest-mlfunnel[spark]' (a local session also needs Java 17)"


def active_session(given: Any, display: str) -> Any:
    """The session a ``spark`` source reads: the ``mlfunnel_spark_session`` fixture's value,
    else the active SparkSession of this process."""
    if given is not None:
        return given
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise CriterionError(f"{display}: a spark source needs pyspark, which is not "
                             f"installed: {_INSTALL}") from None
    session = SparkSession.getActiveSession()
    if session is None:
        raise CriterionError(
            f"{display}: no active SparkSession: start one before the check runs, e.g. in a "
            f"session-scoped fixture named {SPARK_SESSION_FIXTURE} in conftest.py that "
            "returns it")
    return session


def open_spark_table(spec: SourceSpec, session: Any) -> SqlEngine:
    """``{ spark = "catalog.schema.table" }``: a table or view of the session's catalog."""
    assert spec.spark is not None
    display = spec.display()
    session = active_session(session, display)
    refuse_stopped(session, display)
    name = spec.spark.strip()
    source = SparkDialect().qualified(name)
    try:
        with quiet_spark_errors():
            table = session.table(source)
            schema, maps = schema_of(table), map_columns(table)
    except Exception as exc:
        text = error_text(exc)
        if "TABLE_OR_VIEW_NOT_FOUND" in text or "not found" in text.lower():
            where = _current_namespace(session)
            raise CriterionError(f"{display}: no table or view {name} in the SparkSession's "
                                 f"catalog (current catalog and schema: {where})") from None
        raise CriterionError(f"{display}: {text}") from None
    return spark_engine(session, source, display, schema, maps)


def _current_namespace(session: Any) -> str:
    try:
        return f"{session.catalog.currentCatalog()}.{session.catalog.currentDatabase()}"
    except Exception:  # an old or restricted catalog: the message stays useful without it
        return "unknown"

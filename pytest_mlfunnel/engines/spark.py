"""Spark as an engine: Spark SQL in a SparkSession, through the Spark dialect.

A PySpark ``DataFrame`` (classic or Spark Connect) is registered as a temporary view of its own
session (``mlfunnel_spark_<n>``) and answered by the shared SQL engine rendering through
``SparkDialect``: the one-pass aggregate ``SELECT`` runs in Spark, and only its one row (and the
few rows of the group-by queries drift and joins ask) comes back. A plan Spark has not run yet
is read once, inside the aggregate query. Tables of one session join natively, in one Spark
query. pyspark is not imported here to open a source (the session and frames come from the
user); only ``quiet_spark_errors`` imports its logger, once a Spark frame or session exists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

from pytest_mlfunnel.engines.dialects import Executor, SparkDialect, named_dtype
from pytest_mlfunnel.engines.sql import SqlEngine
from pytest_mlfunnel.funnel import first_line
from pytest_mlfunnel.outcome import CriterionError

_INTS = {"tinyint", "smallint", "int", "bigint", "byte", "short", "integer", "long"}
_FLOATS = {"float", "double", "real", "decimal"}
_STRINGS = {"string", "varchar", "char"}


def spark_dtype(type_name: str) -> str:
    """A Spark SQL type (``DataType.simpleString()``) in the table protocol's vocabulary."""
    return named_dtype(type_name, _INTS, _FLOATS, _STRINGS)


def is_spark_frame(frame: Any) -> bool:
    """A PySpark DataFrame (classic or Spark Connect), told without importing pyspark."""
    module = type(frame).__module__ or ""
    return module.startswith("pyspark.sql") and type(frame).__name__ == "DataFrame"


def schema_of(frame: Any) -> dict[str, str]:
    return {str(field.name): spark_dtype(field.dataType.simpleString())
            for field in frame.schema.fields}


def map_columns(frame: Any) -> list[str]:
    """The columns of a PySpark DataFrame holding a map, at any depth (a map, a struct or an
    array with one inside)."""
    return [str(field.name) for field in frame.schema.fields
            if _holds_map(field.dataType.jsonValue())]


def _holds_map(json_type: Any) -> bool:
    if isinstance(json_type, dict):
        return json_type.get("type") == "map" or any(_holds_map(v) for v in json_type.values())
    if isinstance(json_type, list):
        return any(_holds_map(v) for v in json_type)
    return False


def error_text(exc: BaseException) -> str:
    """What went wrong, in one line. Spark's messages run over several lines (search path,
    query context): the first says it, except where it only says who reported it."""
    text = str(exc)
    found = _root_cause(exc) or _python_error(text)
    return found or first_line(text) or type(exc).__name__


#: the most causes followed down a Java exception's chain
_MAX_CAUSES = 20


def _root_cause(exc: BaseException) -> str | None:
    """The innermost cause of an error py4j passed on unconverted (``Py4JJavaError``, whose
    first line is only "An error occurred while calling o123.collectToPython."), as Java
    names it: ``java.sql.SQLDataException: Attempt to divide by zero.``"""
    java = getattr(exc, "java_exception", None)
    if java is None or not str(exc).startswith("An error occurred while calling"):
        return None
    try:
        for _ in range(_MAX_CAUSES):
            cause = java.getCause()
            if cause is None:
                break
            java = cause
        return first_line(str(java.toString())) or None
    except Exception:  # the JVM is gone (a stopped session): the text is all there is
        return None


def _python_error(text: str) -> str | None:
    """The exception a Python function (a UDF) raised in a Spark worker, from pyspark's
    "An exception was thrown from the Python worker:" and the worker's traceback."""
    head, _, rest = text.partition("\n")
    if not head.startswith("An exception was thrown from the Python worker"):
        return None
    lines = rest.split("\n\nJVM stacktrace:", 1)[0].splitlines()
    indented = [i for i, line in enumerate(lines) if line.startswith((" ", "\t"))]
    after = lines[indented[-1] + 1:] if indented else lines
    raised = first_line("\n".join(after))
    return f"a Python function in Spark raised {raised}" if raised else None


#: the loggers pyspark 4 writes each error it raises to, with the JVM's whole stack trace
_ERROR_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


@contextlib.contextmanager
def quiet_spark_errors() -> Iterator[None]:
    """pyspark's own log of the errors raised inside: off. pyspark 4 writes each error with
    the JVM's stack trace to a stderr handler of its own, which pytest shows under the failed
    criterion; the criterion's message already holds the error's first line."""
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # pyspark 3.5 logs nothing of the kind
        yield
        return
    loggers = [PySparkLogger.getLogger(name) for name in _ERROR_LOGGERS]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, before, strict=True):
            logger.disabled = disabled


def _executor(session: Any, display: str) -> Executor:
    def execute(sql: str, purpose: str) -> list[tuple[Any, ...]]:
        try:
            with quiet_spark_errors():
                result = session.sql(sql)
                rows = result.collect()
                instants = [i for i, field in enumerate(result.schema.fields)
                            if field.dataType.typeName() == "timestamp"]
        except Exception as exc:  # AnalysisException, Py4JJavaError, SparkConnectException ...
            raise CriterionError(f"{display}: {error_text(exc)}") from None
        return [_in_utc(tuple(row), instants) for row in rows]
    return execute


def _in_utc(row: tuple[Any, ...], instants: list[int]) -> tuple[Any, ...]:
    """The row with its TIMESTAMP values (instants) as naive UTC, as every engine hands
    them over: pyspark gives them as naive times of this process's time zone."""
    if not instants:
        return row
    values = list(row)
    for i in instants:
        value = values[i]
        if isinstance(value, dt.datetime):
            values[i] = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return tuple(values)


def spark_engine(session: Any, source: str, display: str, schema: dict[str, str],
                 maps: list[str]) -> SqlEngine:
    """The SQL engine over ``source`` (a quoted table or view name) in ``session``; ``maps``
    are its columns holding a map. Tables of one session join natively, in one Spark
    query."""
    return SqlEngine(display, source, SparkDialect(maps), _executor(session, display),
                     lambda: schema, connection_id=("spark", id(session)))


def refuse_stopped(session: Any, display: str) -> None:
    """A stopped session answers with a NullPointerException about SparkEnv: say what it
    is instead."""
    if getattr(session, "is_stopped", False) is True or (  # Spark Connect
            getattr(getattr(session, "_sc", None), "_jsc", True) is None):  # classic
        raise CriterionError(
            f"{display}: the SparkSession was stopped before the check ran: keep it open "
            "until the run ends (a session-scoped fixture that stops it after yield)")


def open_spark_frame(frame: Any, display: str, shared: dict[Any, Any]) -> SqlEngine:
    """A PySpark DataFrame from a fixture, as a temporary view of its own session."""
    refuse_stopped(frame.sparkSession, display)
    counter = shared.setdefault(("spark", "views"), itertools.count())
    view = f"mlfunnel_spark_{next(counter)}"
    try:
        with quiet_spark_errors():
            frame.createOrReplaceTempView(view)
            schema, maps = schema_of(frame), map_columns(frame)
    except Exception as exc:
        raise CriterionError(f"{display}: Spark cannot use this data frame: "
                             f"{error_text(exc)}") from None
    return spark_engine(frame.sparkSession, SparkDialect().quote(view), display, schema,
                        maps)

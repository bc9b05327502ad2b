"""One SQLAlchemy engine (and its connection pool) per database URL for the whole run."""

from __future__ import annotations

from typing import Any

from pytest_mlfunnel.funnel import first_line
from pytest_mlfunnel.outcome import CriterionError

SQL_EXTRA_HINT = "pip install 'pytest-mlfunnel[sql]' (SQLAlchemy and a driver)"


#: one SQLAlchemy engine (and its connection pool) per URL for the whole run: a warehouse
#: login happens once, not once per query. ``dispose_engines`` closes them at the end.
_ENGINES: dict[tuple[str, int], Any] = {}

#: the drivers' own words for a bound that ran out (psycopg, libpq)
_CONNECT_TIMED_OUT = ("connection timeout expired", "timeout expired")
_STATEMENT_TIMED_OUT = ("canceling statement due to statement timeout",)


def engine_for(url: str, display: str, connect_timeout_s: int) -> Any:
    """The run's engine of ``url``. A PostgreSQL or MySQL host that accepts no connection (a
    firewall that drops packets, a server that never answers) is given up on after
    ``connect_timeout_s``; a ``connect_timeout`` written into the URL is the user's and wins."""
    key = (url, connect_timeout_s)
    engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    import sqlalchemy

    connect_args: dict[str, Any] = {}
    if _backend(url) in ("postgresql", "mysql", "mariadb") and "connect_timeout=" not in url:
        connect_args["connect_timeout"] = connect_timeout_s
    try:
        engine = sqlalchemy.create_engine(_with_driver(url), pool_pre_ping=False,
                                          connect_args=connect_args)
    except Exception as exc:  # unknown dialect, missing driver
        raise CriterionError(f"{display}: cannot open: {short_error(exc)} "
                             f"({SQL_EXTRA_HINT})") from None
    _ENGINES[key] = engine
    return engine


def limit_statement_time(connection: Any, url: str, seconds: float, given: bool) -> bool:
    """Bound each query on ``connection`` to ``seconds`` in the database, where it has such a
    bound: PostgreSQL's ``statement_timeout``, which counts a wait for another session's lock
    too. A timeout the URL sets (``options=-c statement_timeout=...``) is kept unless the
    source ``given`` one. True when a bound was set."""
    if _backend(url) != "postgresql" or not (given or "statement_timeout" not in url):
        return False
    connection.exec_driver_sql(f"SET statement_timeout = {max(1, round(seconds * 1000))}")
    return True


def timed_out(text: str) -> str | None:
    """``"connect"`` or ``"statement"`` when a driver's error says that bound ran out."""
    lowered = text.lower()
    if any(words in lowered for words in _STATEMENT_TIMED_OUT):
        return "statement"
    if any(words in lowered for words in _CONNECT_TIMED_OUT):
        return "connect"
    return None


def _backend(url: str) -> str:
    """``postgresql+psycopg://`` -> ``postgresql`` (``postgres`` too)."""
    backend = url.partition("://")[0].split("+", 1)[0].lower()
    return "postgresql" if backend == "postgres" else backend


def dispose_engines() -> int:
    """Close every pooled connection opened during the run; returns how many engines."""
    engines = list(_ENGINES.values())
    _ENGINES.clear()
    for engine in engines:
        engine.dispose()
    return len(engines)


def _with_driver(url: str) -> str:
    """``postgresql://`` names no driver, and SQLAlchemy's default (psycopg2) may be absent:
    use psycopg 3, the one the ``sql`` extra installs, when it is there."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() not in ("postgresql", "postgres"):
        return url
    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:
        return "postgresql://" + rest if scheme.lower() == "postgres" else url
    return f"postgresql+psycopg{sep}{rest}"


def short_error(exc: Exception) -> str:
    """The first line of a driver error, without SQLAlchemy's background links."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = first_line(text) or type(exc).__name__
    return first.split("(Background on this error")[0].strip()

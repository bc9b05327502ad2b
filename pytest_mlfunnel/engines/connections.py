"""One SQLAlchemy engine (and its connection pool) per database URL for the whole run."""

from __future__ import annotations

from typing import Any

from pytest_mlfunnel.funnel import first_line
from pytest_mlfunnel.outcome import CriterionError

SQL_EXTRA_HINT = "pip install 'pytest-mlfunnel[sql]' (SQLAlchemy and a driver)"


#: one SQLAlchemy engine (and its connection pool) per URL for the whole run: a warehouse
#: login happens once, not once per query. ``dispose_engines`` closes them at the end.
_ENGINES: dict[str, Any] = {}


def engine_for(url: str, display: str) -> Any:
    engine = _ENGINES.get(url)
    if engine is not None:
        return engine
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(_with_driver(url), pool_pre_ping=False)
    except Exception as exc:  # unknown dialect, missing driver
        raise CriterionError(f"{display}: cannot open: {short_error(exc)} "
                             f"({SQL_EXTRA_HINT})") from None
    _ENGINES[url] = engine
    return engine


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

"""Every wait on a database is bounded: connecting, a long query, another session's lock."""

from __future__ import annotations

import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

QUERY_TIMEOUT = "(a long query, or one waiting for a lock another session holds; " \
                "options.timeout sets the bound)"


def project(pytester: pytest.Pytester, source: str, check: str) -> None:
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
funnel = ["usage"]

[tool.mlfunnel.sources]
usage = {source}

[tool.mlfunnel.usage.weekly]
{check}
""")


def calls_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("create table calls (user_id integer)")
        conn.executemany("insert into calls values (?)", [(i,) for i in range(50)])
    conn.close()


def password_of(url: str) -> str:
    return url.split(":")[2].split("@")[0]


@pytest.fixture
def pg_calls(postgres_url: str) -> Iterator[tuple[str, object]]:
    """A real table in the test PostgreSQL server; yields its name and a SQLAlchemy engine."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    table = f"calls_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(postgres_url.replace("postgresql://",
                                                           "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create table {table} (user_id int)")
        conn.exec_driver_sql(f"insert into {table} select g from generate_series(1, 50) g")
    try:
        yield table, engine
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table if exists {table}")
        engine.dispose()


@pytest.mark.postgres
def test_a_postgresql_query_that_runs_long_ends_at_the_source_s_timeout(
        pytester: pytest.Pytester, postgres_url: str, pg_calls: tuple[str, object]) -> None:
    table, _ = pg_calls
    project(pytester, f'{{ url = "{postgres_url}", options = {{ timeout = "2 s" }}, query = '
                      f'"select count(*) as requests, pg_sleep(3600) as s from {table}" }}',
            'metrics = "usage"\nexpect = { requests = ">= 1" }')
    started = time.monotonic()
    result = pytester.runpytest_subprocess("--funnel", "--funnel-json=report.json",
                                           timeout=120)
    assert time.monotonic() - started < 60
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"usage (postgresql://***:***@127.0.0.1:*/*): the query did not finish within 2 s "
        f"{QUERY_TIMEOUT}"])
    password = password_of(postgres_url)
    assert password not in result.stdout.str()
    assert password not in (pytester.path / "report.json").read_text()


@pytest.mark.postgres
def test_a_postgresql_table_locked_by_an_open_transaction_ends_at_the_timeout(
        pytester: pytest.Pytester, postgres_url: str, pg_calls: tuple[str, object]) -> None:
    """Another session's open transaction holds an exclusive lock: the dataset pass waits for
    it only as long as the source's timeout, then says what it waited for."""
    table, engine = pg_calls
    project(pytester, f'{{ url = "{postgres_url}", table = "{table}", '
                      'options = { timeout = "2 s" } }',
            'dataset = "usage"\nrows = ">= 1"')
    with engine.connect() as holder:  # type: ignore[attr-defined]
        holder.exec_driver_sql(f"lock table {table} in access exclusive mode")
        result = pytester.runpytest_subprocess("--funnel", timeout=120)
        holder.rollback()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"usage (postgresql://***:***@127.0.0.1:*/* table {table}): the query did not finish "
        f"within 2 s {QUERY_TIMEOUT}"])
    assert password_of(postgres_url) not in result.stdout.str()


@pytest.mark.postgres
def test_a_postgresql_query_is_bounded_by_ten_minutes_unless_told(
        pytester: pytest.Pytester, postgres_url: str) -> None:
    """The default bound is set on the session; a bound written into the URL stays."""
    setting = "extract(epoch from current_setting('statement_timeout')::interval)"
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
funnel = ["usage"]

[tool.mlfunnel.sources]
default = {{ url = "{postgres_url}", query = "select {setting} as bound_s" }}
in_url = {{ url = "{postgres_url}?options=-c%20statement_timeout%3D45s", query = "select {setting} as bound_s" }}
given = {{ url = "{postgres_url}", options = {{ timeout = "90 min" }}, query = "select {setting} as bound_s" }}

[tool.mlfunnel.usage.default]
metrics = "default"
expect = {{ bound_s = "== 600" }}

[tool.mlfunnel.usage.in_url]
metrics = "in_url"
expect = {{ bound_s = "== 45" }}

[tool.mlfunnel.usage.given]
metrics = "given"
expect = {{ bound_s = "== 5400" }}
""")
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=3)


def test_a_database_server_that_never_answers_is_given_up_on(
        pytester: pytest.Pytester) -> None:
    """A server that accepts the TCP connection and then says nothing (as a proxy in front of
    a dead host does) is given up on at the connect bound, not waited for."""
    pytest.importorskip("psycopg")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        project(pytester, f'{{ url = "postgresql://ml:hunter2-pw@127.0.0.1:{port}/usage", '
                          'options = { timeout = "2 s" }, query = "select 1 as requests" }',
                'metrics = "usage"\nexpect = { requests = ">= 1" }')
        started = time.monotonic()
        result = pytester.runpytest_subprocess("--funnel", timeout=120)
        assert time.monotonic() - started < 60
    finally:
        silent.close()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"usage (postgresql://***:***@127.0.0.1:{port}/usage): cannot connect: no answer "
        "within 2 s"])
    assert "hunter2" not in result.stdout.str()


def test_a_sqlite_query_that_never_ends_is_interrupted_at_the_timeout(
        pytester: pytest.Pytester) -> None:
    calls_db(pytester.path / "usage.db")
    endless = ("with recursive n(x) as (select 1 union all select x + 1 from n) "
               "select count(*) as requests from n")
    project(pytester, f'{{ url = "sqlite:///usage.db", options = {{ timeout = "1 s" }}, '
                      f'query = "{endless}" }}',
            'metrics = "usage"\nexpect = { requests = ">= 1" }')
    result = pytester.runpytest_subprocess("--funnel", timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "usage (sqlite:///usage.db): the query did not finish within 1 s (options.timeout "
        "sets the bound)"])


def test_a_sqlite_file_a_writer_keeps_locked_says_what_it_waited_for(
        pytester: pytest.Pytester) -> None:
    calls_db(pytester.path / "usage.db")
    project(pytester, '{ url = "sqlite:///usage.db", options = { timeout = "1 s" }, '
                      'query = "select count(*) as requests from calls" }',
            'metrics = "usage"\nexpect = { requests = ">= 1" }')
    writer = sqlite3.connect(pytester.path / "usage.db", isolation_level=None)
    try:
        writer.execute("begin exclusive")
        writer.execute("insert into calls values (99)")
        result = pytester.runpytest_subprocess("--funnel", timeout=120)
    finally:
        writer.execute("rollback")
        writer.close()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "usage (sqlite:///usage.db): database is locked: another connection kept it locked "
        "for writing for 1 s (an open write transaction)"])


@pytest.mark.parametrize(("timeout", "message"), [
    ("10", "options.timeout: a duration needs a unit: '10 min'?"),
    ('"soon"', "options.timeout: not a duration: 'soon' (a number and a unit: ms, s, min, "
               "h, days, weeks)"),
    ('"2 days"', "options.timeout must be more than 0 and at most 24 h, got '2 days'"),
])
def test_a_database_timeout_that_is_no_duration_says_how_to_write_it(
        pytester: pytest.Pytester, timeout: str, message: str) -> None:
    calls_db(pytester.path / "usage.db")
    project(pytester, f'{{ url = "sqlite:///usage.db", options = {{ timeout = {timeout} }}, '
                      'query = "select count(*) as requests from calls" }',
            'metrics = "usage"\nexpect = { requests = ">= 1" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"usage (sqlite:///usage.db): {message}"])


def test_an_option_a_database_source_does_not_have_is_named(pytester: pytest.Pytester) -> None:
    """``timout`` would leave the default bound in silence."""
    calls_db(pytester.path / "usage.db")
    project(pytester, '{ url = "sqlite:///usage.db", options = { timout = "30 min" }, '
                      'query = "select count(*) as requests from calls" }',
            'metrics = "usage"\nexpect = { requests = ">= 1" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "usage (sqlite:///usage.db): options.timout: not an option of a database source (its "
        "one option is timeout = \"10 min\"); did you mean 'timeout'?"])

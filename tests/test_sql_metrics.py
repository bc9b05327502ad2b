"""Metrics from SQL: the first row's columns, from a real SQLite file and real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

WEEKLY = ("select count(*) as requests, count(distinct user_id) as users from calls "
          "where ts >= datetime('now', '-7 days')")


def usage_db(path: Path, users: int, calls_per_user: int, old_calls: int = 50) -> None:
    """A usage log: recent calls by ``users`` users, plus calls older than the window."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with sqlite3.connect(path) as conn:
        conn.execute("create table calls (user_id integer, ts text, latency_ms real)")
        rows = [(u, (now - dt.timedelta(hours=(u * calls_per_user + i) % 150)).isoformat(" "),
                 20.0 + i) for u in range(users) for i in range(calls_per_user)]
        rows += [(999, (now - dt.timedelta(days=30)).isoformat(" "), 5.0)] * old_calls
        conn.executemany("insert into calls values (?, ?, ?)", rows)
    conn.close()


def project(pytester: pytest.Pytester, source: str, expect: str) -> None:
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
funnel = ["usage"]

[tool.mlfunnel.sources]
usage = {source}

[tool.mlfunnel.usage.weekly]
metrics = "usage"
expect = {expect}
""")


def report(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def test_the_first_rows_columns_are_the_metrics(pytester: pytest.Pytester,
                                                xdist_args: list[str]) -> None:
    usage_db(pytester.path / "ops" / "usage.db", users=12, calls_per_user=70)
    project(pytester, f'{{ url = "sqlite:///ops/usage.db", query = "{WEEKLY}" }}',
            '{ requests = ">= 700", users = ">= 10" }')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", *xdist_args)
    result.assert_outcomes(passed=2)
    criteria = report(pytester)
    assert criteria["requests"]["observed"] == 840  # the 50 old calls are outside the window
    assert criteria["users"]["observed"] == 12
    result.stdout.fnmatch_lines(["*usage*passed*2/2*"])


def test_a_flat_lining_service_fails_in_words(pytester: pytest.Pytester) -> None:
    usage_db(pytester.path / "ops" / "usage.db", users=3, calls_per_user=10)
    project(pytester, f'{{ url = "sqlite:///ops/usage.db", query = "{WEEKLY}" }}',
            '{ requests = ">= 700", users = ">= 10" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["requests 30, expected >= 700", "users 3, expected >= 10"])


def test_a_query_with_no_rows_is_an_error_naming_the_columns(pytester: pytest.Pytester) -> None:
    usage_db(pytester.path / "ops" / "usage.db", users=3, calls_per_user=10)
    query = "select user_id, count(*) as requests from calls where user_id > 5000 group by 1"
    project(pytester, f'{{ url = "sqlite:///ops/usage.db", query = "{query}" }}',
            '{ requests = ">= 1" }')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "usage (sqlite:///ops/usage.db): the query returned no rows; metrics come from the "
        "first row's columns (user_id, requests)"])
    assert report(pytester)["requests"]["status"] == "error"


def test_a_sql_error_is_an_error_criterion(pytester: pytest.Pytester) -> None:
    usage_db(pytester.path / "ops" / "usage.db", users=3, calls_per_user=10)
    project(pytester, '{ url = "sqlite:///ops/usage.db", query = "select count(*) as '
                      'requests from callz" }', '{ requests = ">= 1" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["usage (sqlite:///ops/usage.db): SQL error: no such table: callz"])


def test_a_non_numeric_or_null_value_is_an_error_for_that_metric_only(
        pytester: pytest.Pytester) -> None:
    usage_db(pytester.path / "ops" / "usage.db", users=3, calls_per_user=10)
    query = ("select count(*) as requests, max(ts) as newest, "
             "sum(case when user_id > 5000 then latency_ms end) as vip_ms from calls")
    project(pytester, f'{{ url = "sqlite:///ops/usage.db", query = "{query}" }}',
            '{ requests = ">= 1", newest = ">= 1", vip_ms = "<= 100" }')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "newest in usage (sqlite:///ops/usage.db) is '*', not a number",
        "vip_ms in usage (sqlite:///ops/usage.db) is None, not a number",
    ])
    assert {k: c["status"] for k, c in report(pytester).items()} == {
        "requests": "passed", "newest": "error", "vip_ms": "error"}


def test_a_missing_database_file_is_an_error_naming_it(pytester: pytest.Pytester) -> None:
    project(pytester, f'{{ url = "sqlite:///ops/usage.db", query = "{WEEKLY}" }}',
            '{ requests = ">= 700" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["usage (sqlite:///ops/usage.db): database file not found (*ops/usage.db)"])


def test_a_database_table_is_not_a_metrics_source(pytester: pytest.Pytester) -> None:
    usage_db(pytester.path / "ops" / "usage.db", users=3, calls_per_user=10)
    project(pytester, '{ url = "sqlite:///ops/usage.db", table = "calls" }',
            '{ requests = ">= 700" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "usage (sqlite:///ops/usage.db table calls): a metrics source from a database needs "
        "a query whose first row holds the numbers (it names table 'calls': that is a tabular "
        "source)*"])


def test_two_unnamed_columns_with_the_same_name_ask_for_aliases(
        pytester: pytest.Pytester) -> None:
    usage_db(pytester.path / "ops" / "usage.db", users=3, calls_per_user=10)
    project(pytester, '{ url = "sqlite:///ops/usage.db", query = "select 1 as n, 2 as n" }',
            '{ n = ">= 1" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*: two columns are named 'n'; give each an alias*"])


# ------------------------------------------------------------------ PostgreSQL
@pytest.fixture
def pg_usage(postgres_url: str) -> Iterator[str]:
    """A real table of calls in the test PostgreSQL server; yields its name."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    table = f"calls_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(postgres_url.replace("postgresql://",
                                                           "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create table {table} (user_id int, amount numeric(10, 2), "
                             "ts timestamptz default now())")
        conn.exec_driver_sql(f"insert into {table} (user_id, amount) select mod(g, 17), 0.25 "
                             "from generate_series(1, 900) g")
    try:
        yield table
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table if exists {table}")
        engine.dispose()


@pytest.mark.postgres
def test_usage_from_postgresql(pytester: pytest.Pytester, postgres_url: str, pg_usage: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFUNNEL_TEST_WAREHOUSE", postgres_url)
    query = (f"select count(*) as requests, count(distinct user_id) as users, "
             f"sum(amount) as revenue from {pg_usage} where ts > now() - interval '7 days'")
    project(pytester, f'{{ url = "${{MLFUNNEL_TEST_WAREHOUSE}}", query = "{query}" }}',
            '{ requests = ">= 700", users = ">= 10", revenue = ">= 200" }')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=3)
    criteria = report(pytester)
    assert criteria["requests"]["observed"] == 900
    assert criteria["users"]["observed"] == 17
    assert criteria["revenue"]["observed"] == 225  # numeric sum, a Decimal in the driver


@pytest.mark.postgres
def test_a_postgresql_error_masks_the_password(pytester: pytest.Pytester,
                                               postgres_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFUNNEL_TEST_WAREHOUSE", postgres_url)
    project(pytester, '{ url = "${MLFUNNEL_TEST_WAREHOUSE}", query = "select count(*) as '
                      'requests from no_such_table_here" }', '{ requests = ">= 1" }')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    # the whole URL came from the environment: it is masked whole
    result.stdout.fnmatch_lines(['usage (***): *no_such_table_here*'])
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in result.stdout.str()
    assert password not in (pytester.path / "report.json").read_text()


#: the third row cannot be computed (a driver may read one row ahead of the one asked for)
FIRST_ROW_ONLY = "select case when x < 3 then 5 else {boom} end as requests from ({rows}) as t"


def test_only_the_first_row_of_a_metrics_query_is_fetched(pytester: pytest.Pytester) -> None:
    """A query of millions of rows (a table read where an aggregate was meant) was fetched
    whole for one row's numbers; the last row here cannot even be computed."""
    usage_db(pytester.path / "ops" / "usage.db", users=2, calls_per_user=2)
    query = FIRST_ROW_ONLY.format(boom="abs(-9223372036854775807 - 1)",
                                  rows="select 1 as x union all select 2 union all select 3")
    project(pytester, f'{{ url = "sqlite:///ops/usage.db", query = "{query}" }}',
            '{ requests = "== 5" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1)


@pytest.mark.postgres
def test_only_the_first_row_of_a_postgresql_metrics_query_comes_over(
        pytester: pytest.Pytester, postgres_url: str) -> None:
    query = FIRST_ROW_ONLY.format(boom="1 / (x - x)", rows="select generate_series(1, 3) as x")
    project(pytester, f'{{ url = "{postgres_url}", query = "{query}" }}',
            '{ requests = "== 5" }')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1)

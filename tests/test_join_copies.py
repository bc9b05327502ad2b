"""A baseline another engine reads is copied into the process's DuckDB by ONE query over the
source, its rows streamed page by page (no ``ORDER BY``, no ``OFFSET``): the comparison is the
same as with the baseline in Parquet, a source that breaks on a later page is one message that
names it (and no password), and the row limit is checked before any row is read."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb  # noqa: F401  (once here: pytester's in-process runs must not re-import it)
import pandas as pd
import pytest
from test_predictions_baseline_table import N, config, criteria, frames

PAGE = 400  # 1,500 rows: four pages
COPIED = '"customer_id", "prod_pred", "prod_proba"'
FIELDS = ("baseline", "difference", "ci_low", "ci_high", "p_value")


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_mlfunnel.engines import copies

    monkeypatch.setattr(copies, "COPY_PAGE", PAGE)


@pytest.fixture
def sqlite_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement SQLite runs on the connections the plugin opens in this process, as
    SQLite's own trace callback reports it (once per statement, however many rows are
    fetched)."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(statements.append)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced)
    return statements


@pytest.fixture
def postgres(request: pytest.FixtureRequest) -> Iterator[tuple[str, Callable[[str], Any]]]:
    """(the server's URL, run one statement there and return its rows)."""
    url: str = request.getfixturevalue("postgres_url")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    db = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                                  connect_args={"connect_timeout": 10})

    def run(sql: str) -> Any:
        with db.begin() as conn:
            result = conn.exec_driver_sql(sql)
            return result.fetchall() if result.returns_rows else None

    yield url, run
    db.dispose()


def in_postgres(postgres: tuple[str, Callable[[str], Any]], frame: pd.DataFrame,
                request: pytest.FixtureRequest) -> str:
    """The frame as a table of its own (dropped after the test): its name."""
    url, run = postgres
    table = f"production_{uuid.uuid4().hex[:10]}"
    sqlalchemy = pytest.importorskip("sqlalchemy")
    db = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    frame.to_sql(table, db, index=False)
    db.dispose()
    request.addfinalizer(lambda: run(f"DROP TABLE IF EXISTS {table}"))
    return table


def in_sqlite(root: Path, frame: pd.DataFrame) -> str:
    with sqlite3.connect(root / "production.db") as conn:
        frame.to_sql("production", conn, index=False)
    return f"sqlite:///{root / 'production.db'}"


def run_with_baseline(pytester: pytest.Pytester, baseline: str
                      ) -> tuple[pytest.RunResult, dict[str, dict[str, Any]]]:
    pytester.makepyprojecttoml(config('"holdout.parquet"', baseline))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    return result, criteria(pytester)


def in_parquet(pytester: pytest.Pytester, model: pd.DataFrame, production: pd.DataFrame
               ) -> dict[str, dict[str, Any]]:
    """The criteria with the same baseline in a Parquet file: no copy."""
    model.to_parquet(pytester.path / "holdout.parquet")
    production.to_parquet(pytester.path / "production.parquet")
    return run_with_baseline(pytester, '"production.parquet"')[1]


def assert_same(found: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    assert set(found) == set(expected)
    for name, criterion in expected.items():
        assert found[name]["status"] == criterion["status"], name
        assert found[name]["observed"] == pytest.approx(criterion["observed"], abs=1e-12)
        for field in FIELDS:
            if field in criterion["extra"]:
                assert found[name]["extra"][field] == pytest.approx(
                    criterion["extra"][field], abs=1e-12), (name, field)
    assert found["f1"]["extra"]["baseline"] is not None


def test_a_sqlite_baseline_of_many_pages_is_read_by_one_query_and_compares_as_in_parquet(
        pytester: pytest.Pytester, small_pages: None, sqlite_statements: list[str]) -> None:
    model, production = frames()
    expected = in_parquet(pytester, model, production)
    url = in_sqlite(pytester.path, production)
    sqlite_statements.clear()
    result, found = run_with_baseline(pytester, f'{{ url = "{url}", table = "production" }}')
    assert_same(found, expected)
    copies = [s for s in sqlite_statements if s.startswith(f"SELECT {COPIED} FROM")]
    assert copies == [f'SELECT {COPIED} FROM "production" AS t'], sqlite_statements
    assert not [s for s in sqlite_statements if "OFFSET" in s.upper()]
    assert result.ret == (0 if all(c["status"] == "passed" for c in found.values()) else 1)


def test_a_postgres_baseline_of_many_pages_is_read_once_by_one_query_and_compares_as_in_parquet(
        pytester: pytest.Pytester, request: pytest.FixtureRequest, small_pages: None,
        postgres: tuple[str, Callable[[str], Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, run = postgres
    model, production = frames()
    expected = in_parquet(pytester, model, production)
    table = in_postgres(postgres, production, request)
    # each row the source hands out, to any query, takes a number of this sequence: reading
    # the table again for each page (ORDER BY .. OFFSET ..) would take ~(pages + 1) x N
    counter = f"{table}_reads"
    run(f"CREATE SEQUENCE {counter}")
    request.addfinalizer(lambda: run(f"DROP SEQUENCE IF EXISTS {counter}"))
    query = (f"SELECT customer_id, prod_pred, prod_proba, nextval('{counter}') AS reads "
             f"FROM {table}")
    log = pytester.path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    result, found = run_with_baseline(pytester, f'{{ url = "{url}", query = "{query}" }}')
    assert_same(found, expected)
    (reads,), = run(f"SELECT last_value FROM {counter}")
    # the row count once, the copy once, the first values of the schema: a row or so each
    assert 2 * N <= reads <= 2 * N + 10, reads
    copies = [line.split("\t")[3] for line in log.read_text().splitlines()
              if line.split("\t")[1] == "copy"]
    assert copies == [f'SELECT {COPIED} FROM ({query}) AS t']
    assert "s3cret-pw" not in result.stdout.str() + log.read_text()


def broken_after_the_first_pages(production: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows in key order, and the key from which the source fails to compute a value:
    past the second page, so the first pages are read and copied before it breaks."""
    ordered = production.sort_values("customer_id").reset_index(drop=True)
    return ordered, int(ordered.customer_id[2 * PAGE + 100])


def test_a_sqlite_baseline_that_breaks_mid_copy_is_one_message_naming_it(
        pytester: pytest.Pytester, small_pages: None, sqlite_statements: list[str]) -> None:
    model, production = frames()
    model.to_parquet(pytester.path / "holdout.parquet")
    ordered, broken_from = broken_after_the_first_pages(production)
    url = in_sqlite(pytester.path, ordered)
    # abs() of the smallest 64-bit integer is an error SQLite raises while stepping the row
    query = (f"SELECT customer_id, prod_pred, CASE WHEN customer_id >= {broken_from} THEN "
             "abs(-9223372036854775807 - 1) ELSE prod_proba END AS prod_proba FROM production")
    result, found = run_with_baseline(pytester, f'{{ url = "{url}", query = "{query}" }}')
    assert found["f1"]["status"] == "error"
    assert found["f1"]["message"] == f"{url}: SQL error: integer overflow"
    assert found["recall"]["message"] == found["f1"]["message"]
    assert len([s for s in sqlite_statements if s.startswith(f"SELECT {COPIED} FROM")]) == 1
    assert "INTERNALERROR" not in result.stdout.str() and "Traceback" not in result.stdout.str()


#: (value past the break, the line the database gives): a value it cannot compute, and the
#: session ended under the copy: while a FETCH of the copy's server-side cursor runs (the
#: statement then running is the FETCH), so only a streamed copy is broken this way
BREAKS = {
    "a value": ("prod_proba / 0", "division by zero"),
    "the connection": ("CASE WHEN current_query() LIKE 'FETCH %' THEN "
                       "pg_terminate_backend(pg_backend_pid())::int ELSE prod_proba END",
                       "terminating connection due to administrator command"),
}


@pytest.mark.parametrize("broken", list(BREAKS))
def test_a_postgres_baseline_that_breaks_mid_copy_is_one_message_naming_it_without_password(
        pytester: pytest.Pytester, request: pytest.FixtureRequest, small_pages: None,
        postgres: tuple[str, Callable[[str], Any]], broken: str) -> None:
    url, _ = postgres
    value, line = BREAKS[broken]
    model, production = frames()
    model.to_parquet(pytester.path / "holdout.parquet")
    ordered, broken_from = broken_after_the_first_pages(production)
    table = in_postgres(postgres, ordered, request)
    query = (f"SELECT customer_id, prod_pred, CASE WHEN customer_id >= {broken_from} THEN "
             f"{value} ELSE prod_proba END AS prod_proba FROM {table}")
    result, found = run_with_baseline(pytester, f'{{ url = "{url}", query = "{query}" }}')
    masked = "postgresql://***:***@" + url.split("@", 1)[1]  # user and password
    assert found["f1"]["status"] == "error"
    assert found["f1"]["message"] == f"{masked}: {line}"
    assert found["recall"]["message"] == found["f1"]["message"]
    out = result.stdout.str() + result.stderr.str() + (pytester.path / "report.json").read_text()
    assert "s3cret-pw" not in out
    assert "INTERNALERROR" not in out and "Traceback" not in out


def test_a_baseline_over_the_copy_limit_is_refused_before_a_row_is_read(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        sqlite_statements: list[str]) -> None:
    monkeypatch.setenv("MLFUNNEL_JOIN_COPY_ROWS", "1000")
    model, production = frames()
    model.to_parquet(pytester.path / "holdout.parquet")
    url = in_sqlite(pytester.path, production)
    result, found = run_with_baseline(pytester, f'{{ url = "{url}", table = "production" }}')
    assert found["recall"]["status"] == "error"
    assert found["recall"]["message"] == (
        f"cannot join holdout.parquet with {url} table production: two engines read them, and "
        f"the join would copy the second into DuckDB, but it has {N:,} rows, more than 1,000 "
        "(MLFUNNEL_JOIN_COPY_ROWS); give both tables on one engine (files and DataFrame "
        "fixtures share one DuckDB; tables of one database URL share its connection) or raise "
        "the limit")
    assert sqlite_statements  # the row count ran on this connection ...
    assert not [s for s in sqlite_statements if s.startswith(f"SELECT {COPIED}")]  # ... no copy
    assert result.ret == 1

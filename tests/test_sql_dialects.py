"""SQL by dialect, one engine per database URL, SQLite dates read as dates."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.engines.dialects import (
    BigQueryDialect,
    Dialect,
    DuckDBDialect,
    PostgreSQLDialect,
    SnowflakeDialect,
    SparkDialect,
    SQLiteDialect,
    TrinoDialect,
    dialect_for_url,
)
from pytest_mlfunnel.engines.protocol import Agg, CellGrid
from pytest_mlfunnel.engines.sql import SqlEngine

sqlglot = pytest.importorskip("sqlglot")
from sqlglot import exp  # noqa: E402

#: a column whose name needs quoting in every system: a space and a quote character
AMOUNT = "ref amount"
SCHEMA = {AMOUNT: "float", "plan": "string", "n": "int", "paid": "bool", "at": "datetime"}

PASS = [Agg("rows"), Agg("duplicate_rows"), Agg("count", AMOUNT), Agg("nulls", AMOUNT),
        Agg("min", AMOUNT), Agg("max", AMOUNT), Agg("sum", "n"), Agg("mean", AMOUNT),
        Agg("var", AMOUNT), Agg("distinct", "plan"), Agg("quantiles", AMOUNT, [0.1, 0.5, 0.9]),
        Agg("histogram", AMOUNT, [0.0, 1.5, 10.0]), Agg("not_in", "plan", ["basic", "pro"]),
        Agg("not_in", "paid", [True]), Agg("min", "at"), Agg("approx_distinct", "plan"),
        Agg("approx_duplicate_rows")]

WAREHOUSES = {"snowflake": SnowflakeDialect, "bigquery": BigQueryDialect,
              "trino": TrinoDialect, "spark": SparkDialect}


def never_run(sql: str, purpose: str) -> list[tuple[Any, ...]]:
    raise AssertionError(f"rendering ran a query ({purpose})")


def engine(dialect: Dialect) -> SqlEngine:
    source = dialect.qualified("analytics.orders")
    return SqlEngine(f"orders ({dialect.name})", source, dialect, never_run, lambda: SCHEMA)


def queries(dialect: Dialect) -> dict[str, str]:
    e = engine(dialect)
    grid = CellGrid(low=-5.0, high=1e6, refine=((10.0, 0.5, 0.9, 4),), bounds=True)
    rendered = {
        "pass": e.pass_sql(PASS, nan_aware=True, probes=[AMOUNT]),
        "cells": e.cells_sql([Agg("cells", AMOUNT, grid), Agg("cells", "n",
                                                              CellGrid(integers=True)),
                              Agg("cells", AMOUNT, dataclasses.replace(grid, split_only=True))]),
        "grouped": e.grouped_sql("plan", [Agg("rows"), Agg("mean", AMOUNT),
                                          Agg("nulls", AMOUNT), Agg("min", "at")]),
        "quantiles": e.window_quantiles_sql(e._clean(AMOUNT), [0.25, 0.75], e._from()),
    }
    # the stages of their own: each first query, and the exact one after a hash repeats
    for name, (first, confirm) in (("distinct", e.distinct_sql(AMOUNT)),
                                   ("distinct text", e.distinct_sql("plan")),
                                   ("duplicates", e.duplicate_rows_sql())):
        rendered[name] = first
        if confirm is not None:
            rendered[f"{name} (hash repeats)"] = confirm
    return rendered


STAGES = ["distinct", "distinct text", "distinct text (hash repeats)", "duplicates",
          "duplicates (hash repeats)"]


def columns_named(tree: Any) -> set[str]:
    return {c.name for c in tree.find_all(exp.Column)}


@pytest.mark.parametrize("system", sorted(WAREHOUSES))
@pytest.mark.parametrize("query", ["pass", "cells", "grouped", "quantiles"])
def test_each_warehouse_dialect_renders_sql_its_system_parses(system: str, query: str) -> None:
    sql = queries(WAREHOUSES[system]())[query]
    tree = sqlglot.parse_one(sql, read=system)  # raises ParseError on text it cannot read
    # quoted the system's way: the column is a column, not a string literal
    assert AMOUNT in columns_named(tree), sql
    assert not any(isinstance(lit, exp.Literal) and lit.this == AMOUNT
                   for lit in tree.find_all(exp.Literal)), sql


@pytest.mark.parametrize("system", sorted(WAREHOUSES))
@pytest.mark.parametrize("query", STAGES)
def test_each_warehouse_renders_its_own_stages_sql_its_system_parses(system: str,
                                                                    query: str) -> None:
    rendered = queries(WAREHOUSES[system]())
    tree = sqlglot.parse_one(rendered[query], read=system)
    named = columns_named(tree)
    assert (AMOUNT if query == "distinct" else "plan") in named, rendered[query]


def test_rows_are_hashed_natively_by_each_system_not_cast_to_text() -> None:
    hashed = {name: queries(cls())["duplicates"] for name, cls in WAREHOUSES.items()}
    assert "xxhash64(`ref amount`, `plan`, `n`, `paid`, `at`)" in hashed["spark"]
    assert 'HASH("ref amount", "plan", "n", "paid", "at")' in hashed["snowflake"]
    # BigQuery's SELECT DISTINCT refuses ARRAY and STRUCT columns: the row is fingerprinted
    assert "FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(" in hashed["bigquery"]
    assert "DISTINCT *" not in queries(BigQueryDialect())["duplicates (hash repeats)"]
    assert "xxhash64(to_utf8(json_format(CAST(ROW(" in hashed["trino"]
    assert "hash_record_extended(ROW(" in queries(PostgreSQLDialect())["duplicates"]
    assert "hash(" in queries(DuckDBDialect())["duplicates"]
    # no row hash in SQLite: SELECT DISTINCT * in a query of its own
    assert "SELECT DISTINCT *" in queries(SQLiteDialect())["duplicates"]
    for rendered in (queries(cls()) for cls in (*WAREHOUSES.values(), DuckDBDialect,
                                                PostgreSQLDialect, SQLiteDialect)):
        assert "CAST(" not in rendered["duplicates"].replace("CAST(ROW(", "")


def test_approx_uses_each_systems_hyperloglog_and_knows_its_error() -> None:
    rendered = {name: queries(cls())["pass"] for name, cls in WAREHOUSES.items()}
    assert "approx_count_distinct(`plan`, 0.01)" in rendered["spark"]
    assert 'APPROX_COUNT_DISTINCT("plan")' in rendered["snowflake"]
    assert "APPROX_COUNT_DISTINCT(`plan`)" in rendered["bigquery"]
    assert 'approx_distinct("plan")' in rendered["trino"]
    assert 'approx_count_distinct("plan")' in queries(DuckDBDialect())["pass"]
    assert all(cls.approx_error > 0 for cls in WAREHOUSES.values())
    # PostgreSQL and SQLite have no estimate: the count is exact and says so (error 0)
    assert PostgreSQLDialect.approx_error == SQLiteDialect.approx_error == 0.0
    assert 'count(DISTINCT "plan")' in queries(PostgreSQLDialect())["pass"]


def test_postgres_quoting_read_by_spark_is_a_string_so_the_check_can_fail() -> None:
    sql = queries(PostgreSQLDialect())["grouped"]
    tree = sqlglot.parse_one(sql, read="spark")
    assert AMOUNT not in columns_named(tree)


@pytest.mark.parametrize("dialect", [DuckDBDialect(), SQLiteDialect(), PostgreSQLDialect()])
def test_local_dialects_render_sql_their_own_parser_reads(dialect: Dialect) -> None:
    for name, sql in queries(dialect).items():
        tree = sqlglot.parse_one(sql, read=dialect.sqlglot)
        if "DISTINCT *" in sql:  # SQLite's duplicate rows name no column
            continue
        assert ("plan" if "text" in name else AMOUNT) in columns_named(tree), (name, sql)


def test_quantiles_use_each_systems_percentile_function() -> None:
    rendered = {name: queries(cls())["pass"] for name, cls in WAREHOUSES.items()}
    assert ("percentile(CASE WHEN NOT (isnan(`ref amount`)) THEN `ref amount` END, "
            "array(0.1, 0.5, 0.9))") in rendered["spark"]
    assert "percentile_cont(0.5) WITHIN GROUP (ORDER BY" in rendered["snowflake"]
    # no exact percentile aggregate there: quantiles take the window query instead
    assert "percentile" not in rendered["bigquery"].lower()
    assert "percentile" not in rendered["trino"].lower()
    assert "`analytics`.`orders`" in rendered["bigquery"]


def test_grouped_queries_order_by_an_alias_not_an_aggregate_for_spark(tmp_path: Path) -> None:
    """``ORDER BY count(*)`` in a grouped query is rejected by Spark: offending values order
    by an alias. Checked by running the engine's query on a real SQLite table."""
    seen: list[str] = []
    db = tmp_path / "plans.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (plan TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("gold",)] * 3 + [("team",)] * 2 +
                         [("basic",)] * 4 + [("pro",)])

    def execute(sql: str, purpose: str) -> list[tuple[Any, ...]]:
        seen.append(sql)
        with sqlite3.connect(db) as conn:
            return list(conn.execute(sql))

    e = SqlEngine("plans", "t", SQLiteDialect(), execute, lambda: {"plan": "string"})
    assert e.offending("plan", "not_in", ["basic", "pro"], "string") == ["gold", "team"]
    assert e.offending("plan", "duplicated", None, "string") == ["basic", "gold", "team"]
    assert seen and all("ORDER BY count(*)" not in sql for sql in seen)


@pytest.mark.parametrize(("url", "name"), [
    ("sqlite:///x.db", "sqlite"), ("postgresql+psycopg://h/db", "postgresql"),
    ("databricks://token@host", "spark"), ("snowflake://u@acct/db", "snowflake"),
    ("bigquery://project/dataset", "bigquery"), ("trino://u@host:8080/hive", "trino"),
    ("mssql+pyodbc://h/db", "ansi")])
def test_a_database_url_picks_its_dialect_by_backend_name(url: str, name: str) -> None:
    assert dialect_for_url(url.split("://", 1)[0]).name == name


# --------------------------------------------------------------------------- SQLite dates
def run_for_messages(pytester: pytest.Pytester, passed: int, failed: int) -> dict[str, str]:
    """Runs the funnel; each criterion's message by its name (no TypeError anywhere)."""
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(passed=passed, failed=failed)
    assert "TypeError" not in result.stdout.str()
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].split("::")[-1]: c["message"] for g in data["gates"] for c in g["criteria"]}


def test_sqlite_datetime_bounds_compare_as_dates(pytester: pytest.Pytester) -> None:
    with sqlite3.connect(pytester.path / "events.db") as conn:
        conn.execute("CREATE TABLE events (id INTEGER, at DATETIME, day DATE)")
        conn.executemany("INSERT INTO events VALUES (?, ?, ?)", [
            (1, "2024-03-01 10:00:00", "2024-03-01"), (2, "2024-06-30 23:59:59", "2024-06-30"),
            (3, None, None)])
    pytester.makepyprojecttoml("""
[tool.mlfunnel.sources]
events = { url = "sqlite:///events.db", table = "events" }

[tool.mlfunnel.data.events]
dataset = "events"
columns.at = { min = "2024-01-01", max = "2024-05-01" }
columns.day = { min = "2024-01-01", max = "2025-01-01" }
""")
    messages = run_for_messages(pytester, passed=3, failed=1)
    assert messages["at.max"].startswith("at: max 2024-06-30 23:59:59"), messages["at.max"]


def test_sqlite_text_in_a_datetime_column_that_is_not_a_date_is_kept_as_text() -> None:
    assert SQLiteDialect().from_database("soon", "datetime") == "soon"
    assert str(SQLiteDialect().from_database("2024-06-30", "date")) == "2024-06-30"


def test_sqlite_text_kept_in_a_numeric_column_is_named_not_compared_or_counted_as_zero(
        pytester: pytest.Pytester) -> None:
    """SQLite keeps 'n/a' written into a REAL column as text: min/max would compare it with
    numbers (TypeError on bytes), avg would read it as 0, drift would drop it or count it in
    the cell of 0. Each numeric rule on that column says so; the clean column still answers."""
    with sqlite3.connect(pytester.path / "shop.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount REAL, qty INTEGER, plan TEXT)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", [
            (i, "n/a" if i % 50 == 0 else 10.0 + i % 7,
             b"\x00" if i % 90 == 0 else i % 5, ["basic", "pro"][i % 2]) for i in range(600)])
    pytester.makepyprojecttoml("""
[tool.mlfunnel.sources]
orders = { url = "sqlite:///shop.db", table = "orders" }

[tool.mlfunnel.data.orders]
dataset = "orders"
columns.id = { min = 0, max = 1000 }
columns.amount = { min = 0, max = 100 }
columns.qty = { max = 10 }

[tool.mlfunnel.maintenance.drift]
drift = { reference = "orders", current = "orders" }
columns = ["id", "amount", "qty", "plan"]
expect = { psi = "<= 0.2" }
""")
    messages = run_for_messages(pytester, passed=4, failed=5)
    assert messages["amount.min"] == (
        "amount: holds values that are not numbers (e.g. 'n/a') in orders (sqlite:///shop.db "
        "table orders), where min needs numbers; the database keeps what was written whatever the "
        "column's declared type: clean the column, or read it through a query that casts it")
    assert messages["qty.max"].startswith(
        "qty: holds values that are not numbers (e.g. b'\\x00') in orders (sqlite:///shop.db "
        "table orders), where max needs numbers")
    assert messages["amount.psi"].startswith(
        "amount: holds values that are not numbers (e.g. 'n/a') in orders (sqlite:///shop.db "
        "table orders), where drift needs numbers")
    assert messages["qty.psi"].startswith("qty: holds values that are not numbers")
    assert {c for c, m in messages.items() if "not numbers" not in m} == {
        "id.min", "id.max", "id.psi", "plan.psi"}


# --------------------------------------------------------------------------- one engine per URL
def count_engines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Wraps SQLAlchemy's create_engine so every engine made is recorded (the real one runs)."""
    import sqlalchemy

    made: list[str] = []
    real = sqlalchemy.create_engine

    def recording(url: Any, **kwargs: Any) -> Any:
        made.append(str(url))
        return real(url, **kwargs)

    monkeypatch.setattr(sqlalchemy, "create_engine", recording)
    return made


@pytest.mark.postgres
def test_one_engine_serves_every_query_of_a_postgres_source(
        pytester: pytest.Pytester, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy

    setup = sqlalchemy.create_engine(postgres_url.replace("postgresql://",
                                                          "postgresql+psycopg://", 1))
    with setup.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS engines_orders")
        conn.exec_driver_sql("CREATE TABLE engines_orders (id integer, amount double precision,"
                             " plan text)")
        conn.exec_driver_sql("INSERT INTO engines_orders SELECT g, g * 1.5, CASE WHEN mod(g, 3) = 0 "
                             "THEN 'pro' ELSE 'basic' END FROM generate_series(1, 50) AS g")

    def backends() -> int:
        with setup.connect() as conn:
            return int(conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                "'mlfunnel-engines-test'").scalar_one())

    made = count_engines(monkeypatch)
    url = postgres_url + ("&" if "?" in postgres_url else "?") + (
        "application_name=mlfunnel-engines-test")
    monkeypatch.setenv("PG_URL", url)
    pytester.makepyprojecttoml("""
[tool.mlfunnel.sources]
orders = { url = "${PG_URL}", table = "engines_orders" }
mean = { url = "${PG_URL}", query = "select avg(amount) as mean_amount from engines_orders" }

[tool.mlfunnel.data.orders]
dataset = "orders"
rows = ">= 50"
columns.amount = { min = 0, nulls = "== 0" }
columns.plan = { values = ["basic", "pro"] }

[tool.mlfunnel.data.mean]
metrics = "mean"
expect = { mean_amount = ">= 10" }
""")
    try:
        result = pytester.runpytest_inprocess("--funnel", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=5)
        assert len(made) == 1, made  # schema, the pass and the metrics query: one engine
        # disposed at the end of the run: no connection left open (a backend leaves
        # pg_stat_activity a moment after its client closed: a loaded server takes a while)
        deadline = time.monotonic() + 10
        while backends() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert backends() == 0
    finally:
        with setup.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS engines_orders")
        setup.dispose()


def test_a_failed_sqlalchemy_url_names_the_missing_driver(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
[tool.mlfunnel.sources]
wh = { url = "nosuchdb://u@host/db", table = "orders" }

[tool.mlfunnel.data.wh]
dataset = "wh"
rows = ">= 1"
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*wh*cannot open: Can't load plugin*(SQLAlchemy and a driver)*"])


# --------------------------------------------------------------------------- the docs' example
def test_the_data_sources_page_example_runs_against_a_real_sqlite_file(
        pytester: pytest.Pytester) -> None:
    page = (Path(__file__).parent.parent / "docs" / "data-sources.md").read_text()
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    with sqlite3.connect(pytester.path / "warehouse.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount REAL, paid INTEGER, "
                     "placed_at DATETIME)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", [
            (1, 12.5, 1, "2024-02-01 09:00:00"), (2, 80.0, 0, "2024-03-15 17:30:00"),
            (3, 1500.0, 1, "2024-04-02 08:15:00")])
    pytester.makepyprojecttoml(example)
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*amount: max 1500*expected <= 1000*"])


def test_one_engine_serves_every_query_of_a_sqlite_file_read_through_sqlalchemy(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    with sqlite3.connect(pytester.path / "shop.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount REAL, plan TEXT)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                         [(i, i * 1.5, "pro" if i % 3 == 0 else "basic") for i in range(1, 51)])
    made = count_engines(monkeypatch)
    url = f"sqlite+pysqlite:///{pytester.path / 'shop.db'}"
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.sources]
orders = {{ url = "{url}", table = "orders" }}
mean = {{ url = "{url}", query = "select avg(amount) as mean_amount from orders" }}

[tool.mlfunnel.data.orders]
dataset = "orders"
rows = ">= 50"
columns.amount = {{ min = 0, nulls = "== 0" }}
columns.plan = {{ values = ["basic", "pro"] }}

[tool.mlfunnel.data.mean]
metrics = "mean"
expect = {{ mean_amount = ">= 10" }}
""")
    from pytest_mlfunnel.engines import connections

    result = pytester.runpytest_inprocess("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    assert made == [url]  # the schema, the pass and the metrics query share it
    assert connections._ENGINES == {}  # disposed and forgotten when the run ended

"""A join between tables on two connections: the smaller side's keys go into the other engine
and are matched there; a table of the same name on the first connection is never read."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

#: events reference user ids 1..200; the real users table holds 1..150 (75% of events match),
#: a stale table of the same name beside the events holds every id (100% would be wrong)
EVENTS = [(i, 1 + i % 200) for i in range(400)]
USERS = list(range(1, 151))
STALE = list(range(1, 201))


def sqlite_db(path: Path, tables: dict[str, tuple[str, list[tuple[int, ...]]]]) -> None:
    with sqlite3.connect(path) as conn:
        for name, (columns, rows) in tables.items():
            conn.execute(f"CREATE TABLE {name} ({columns})")
            marks = ", ".join("?" for _ in rows[0])
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
    conn.close()


def report(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].split("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def queries(log: Path) -> list[tuple[str, str]]:
    return [(line.split("\t")[1], line.split("\t")[3]) for line in log.read_text().splitlines()]


def run(pytester: pytest.Pytester, config: str, in_process: bool = True
        ) -> tuple[pytest.RunResult, list[tuple[str, str]]]:
    pytester.makepyprojecttoml(config)
    log = pytester.path / "queries.log"
    pytester._monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))  # type: ignore[attr-defined]
    runner = pytester.runpytest if in_process else pytester.runpytest_subprocess
    result = runner("--funnel", "-p", "no:cacheprovider", "-p", "no:xdist",
                    "--funnel-json", "report.json")
    return result, queries(log)


def test_two_sqlite_files_join_in_one_engine_and_never_read_the_stale_table_of_that_name(
        pytester: pytest.Pytester) -> None:
    sqlite_db(pytester.path / "events.db", {"events": ("id INTEGER, user_id INTEGER", EVENTS),
                                            "users": ("user_id INTEGER", [(u,) for u in STALE])})
    sqlite_db(pytester.path / "crm.db", {"users": ("user_id INTEGER", [(u,) for u in USERS])})
    result, sent = run(pytester, """
[tool.mlfunnel.sources]
events = { url = "sqlite:///events.db", table = "events" }
users = { url = "sqlite:///crm.db", table = "users" }

[tool.mlfunnel.data.events]
dataset = "events"
join = { dataset = "users", on = "user_id", match = ">= 90%" }
""")
    result.assert_outcomes(failed=1)
    message = str(report(pytester)["data::events::join"]["message"])
    assert message.startswith("user_id: 75% of rows (300 of 400) found in users, expected "
                              ">= 90%; e.g. not found: ")
    shown = message.split("e.g. not found: ")[1]
    assert all(int(k) > 150 for k in shown.replace("...", "").split(", ") if k.strip())
    # the users (150 rows, the smaller side) went into the events' database as literal rows
    joins = [sql for purpose, sql in sent if purpose == "join"]
    assert joins[0].startswith('SELECT count(*) FROM "events" AS t JOIN (SELECT column1 AS k0 '
                               "FROM (VALUES (1), (2), (3)")
    # the examples: the events' keys with their counts went into crm.db, checked against its
    # own users table
    assert joins[1].startswith('SELECT sum(CASE WHEN EXISTS (SELECT 1 FROM "users" AS t WHERE '
                               't."user_id" = k.k0) THEN k.mlfunnel_n END) FROM (SELECT column1')


def test_a_parquet_table_joins_a_sqlite_table_both_ways(pytester: pytest.Pytester) -> None:
    import polars as pl

    pl.DataFrame({"id": [e[0] for e in EVENTS], "user_id": [e[1] for e in EVENTS]}
                 ).write_parquet(pytester.path / "events.parquet")
    pl.DataFrame({"user_id": USERS}).write_parquet(pytester.path / "users.parquet")
    sqlite_db(pytester.path / "crm.db", {"users": ("user_id INTEGER", [(u,) for u in USERS]),
                                         "events": ("id INTEGER, user_id INTEGER", EVENTS)})
    result, sent = run(pytester, """
[tool.mlfunnel.sources]
events = "events.parquet"
users = { url = "sqlite:///crm.db", table = "users" }
db_events = { url = "sqlite:///crm.db", table = "events" }
file_users = "users.parquet"

[tool.mlfunnel.data.file_to_db]
dataset = "events"
join = { dataset = "users", on = "user_id", match = ">= 70%" }

[tool.mlfunnel.data.db_to_file]
dataset = "db_events"
join = { dataset = "file_users", on = "user_id", match = ">= 70%" }

[tool.mlfunnel.data.users_in_events]
dataset = "file_users"
join = { dataset = "db_events", on = "user_id", match = "== 100%" }
""")
    result.assert_outcomes(passed=3)
    found = report(pytester)
    assert found["data::file_to_db::join"]["observed"] == 0.75
    assert found["data::db_to_file::join"]["observed"] == 0.75
    assert found["data::users_in_events::join"]["observed"] == 1.0
    # users (smaller) into the Parquet's DuckDB and into SQLite; for users_in_events the
    # smaller side is users itself: its keys and counts go into SQLite's events
    purposes = [purpose for purpose, _ in sent]
    assert purposes.count("join") == 3 and "join keys" in purposes


def test_duckdb_relations_of_two_connections_with_tables_of_one_name(
        pytester: pytest.Pytester) -> None:
    import duckdb

    with duckdb.connect(str(pytester.path / "a.duckdb")) as a:
        a.execute("CREATE TABLE events AS SELECT i AS id, 1 + i % 200 AS user_id "
                  "FROM range(400) r(i)")
        a.execute("CREATE TABLE users AS SELECT i AS user_id FROM range(1, 201) r(i)")
    with duckdb.connect(str(pytester.path / "b.duckdb")) as b:
        b.execute("CREATE TABLE users AS SELECT i AS user_id FROM range(1, 151) r(i)")
    pytester.makeconftest("""
import duckdb
import pytest

@pytest.fixture(scope="session")
def events():
    return duckdb.connect("a.duckdb", read_only=True).table("events")

@pytest.fixture(scope="session")
def users():
    return duckdb.connect("b.duckdb", read_only=True).table("users")
""")
    result, sent = run(pytester, """
[tool.mlfunnel.data.events]
dataset = { fixture = "events" }
join = { dataset = { fixture = "users" }, on = "user_id", match = ">= 70%" }
""")
    result.assert_outcomes(passed=1)
    assert report(pytester)["data::events::join"]["observed"] == 0.75
    assert any(purpose == "join" and "VALUES" in sql for purpose, sql in sent)


def test_a_polars_lazy_frame_takes_the_keys_of_a_smaller_parquet_file(
        pytester: pytest.Pytester) -> None:
    import polars as pl

    pl.DataFrame({"user_id": USERS[:100]}).write_parquet(pytester.path / "users.parquet")
    pytester.makeconftest(f"""
import polars as pl
import pytest

@pytest.fixture
def events():
    return pl.LazyFrame({{"user_id": {[e[1] for e in EVENTS]!r}}})
""")
    result, sent = run(pytester, """
[tool.mlfunnel.data.users]
dataset = "users.parquet"
join = { dataset = { fixture = "events" }, on = "user_id", match = "== 100%" }

[tool.mlfunnel.data.events]
dataset = { fixture = "events" }
join = { dataset = "users.parquet", on = "user_id", match = ">= 60%" }
""")
    result.assert_outcomes(passed=1, failed=1)
    found = report(pytester)
    assert found["data::users::join"]["observed"] == 1.0
    assert found["data::events::join"]["observed"] == 0.5
    assert str(found["data::events::join"]["message"]).startswith(
        "user_id: 50% of rows (200 of 400) found in users.parquet, expected >= 60%; e.g. "
        "not found: ")
    assert ("join", "polars plan") in sent


@pytest.mark.parametrize("system", ["snowflake", "bigquery", "trino", "spark", "postgres",
                                    "duckdb", "sqlite"])
def test_keys_sent_into_each_dialect_render_sql_its_system_parses(system: str) -> None:
    sqlglot = pytest.importorskip("sqlglot")
    from pytest_mlfunnel.engines.dialects import dialect_for_url
    from pytest_mlfunnel.engines.sql import SqlEngine

    dialect = dialect_for_url({"postgres": "postgresql"}.get(system, system))
    sent: list[str] = []

    def execute(sql: str, purpose: str) -> list[tuple[object, ...]]:
        sent.append(sql)
        return [(3,)] if purpose == "join" else [("late",)]

    engine = SqlEngine("users", dialect.qualified("crm.users"), dialect, execute,
                       lambda: {"user id": "int", "plan": "string"})
    assert engine.rows_with_keys(["user id", "plan"], [(1, "pro"), (2, "it's")], False) == 3
    assert engine.keys_present(["user id"], [(1, 4), (9, 2)], True, examples=1) == (
        3, [("late",)])
    assert len(sent) == 3
    for sql in sent:
        sqlglot.parse_one(sql, read=dialect.sqlglot)  # raises on a syntax error


def test_ibis_tables_of_two_connections_never_read_the_stale_table_of_that_name(
        pytester: pytest.Pytester) -> None:
    """Ibis: the events' connection also holds a stale ``users`` table with every id; the
    users of the other connection must be the ones matched (75%, not 100%)."""
    pytest.importorskip("ibis")
    pytester.makeconftest(f"""
import ibis
import pytest

@pytest.fixture(scope="session")
def events():
    con = ibis.duckdb.connect()
    con.create_table("events", ibis.memtable({{"id": [e[0] for e in {EVENTS!r}],
                                              "user_id": [e[1] for e in {EVENTS!r}]}}))
    con.create_table("users", ibis.memtable({{"user_id": {STALE!r}}}))
    return con.table("events")

@pytest.fixture(scope="session")
def users():
    con = ibis.duckdb.connect()
    con.create_table("users", ibis.memtable({{"user_id": {USERS!r}}}))
    return con.table("users")
""")
    result, _ = run(pytester, """
[tool.mlfunnel.data.events]
dataset = { fixture = "events" }
join = { dataset = { fixture = "users" }, on = "user_id", match = ">= 90%" }
""", in_process=False)  # after other in-process runs, ibis reads the stale table
    result.assert_outcomes(failed=1)
    message = str(report(pytester)["data::events::join"]["message"])
    assert message.startswith("user_id: 75% of rows (300 of 400) found in "), message


def test_a_date_key_finds_the_same_day_at_midnight_in_a_timestamp_key_on_every_engine(
        pytester: pytest.Pytester) -> None:
    """A day and that day at 00:00 are one moment: compared as text ('2026-01-01' against
    '2026-01-01 00:00:00') no key ever matched. Days 1-4 of 5 are there at midnight, day 5
    only at noon, which is not that day's key."""
    import datetime as dt

    pl = pytest.importorskip("polars")
    days = [dt.date(2026, 1, d) for d in range(1, 6)]
    times = [dt.datetime(2026, 1, d) for d in range(1, 5)] + [dt.datetime(2026, 1, 5, 12)]
    pl.DataFrame({"day": days}).write_parquet(pytester.path / "days.parquet")
    pl.DataFrame({"day": times}).write_parquet(pytester.path / "times.parquet")
    pytester.makeconftest("""
import polars as pl
import pytest

@pytest.fixture
def lazy_times():
    return pl.scan_parquet("times.parquet")

@pytest.fixture
def lazy_days():
    return pl.scan_parquet("days.parquet")
""")
    pairs = [("file_days", '"days.parquet"', "times.parquet"),
             ("file_times", '"times.parquet"', "days.parquet"),
             ("lazy_days", '{ fixture = "lazy_days" }', "times.parquet"),
             ("lazy_times", '{ fixture = "lazy_times" }', "days.parquet")]
    config = "".join(f"""
[tool.mlfunnel.data.{name}]
dataset = {left}
join = {{ dataset = "{right}", on = "day", match = ">= 0.8" }}
""" for name, left, right in pairs)
    result, _ = run(pytester, config)
    found = report(pytester)
    for name, _, _ in pairs:
        assert found[f"data::{name}::join"]["extra"]["matched"] == 4, (name, found)
    assert found["data::file_days::join"]["message"] == (
        "day: 80% of rows (4 of 5) found in times.parquet, expected >= 0.8")
    assert result.ret == 0


def test_a_date_key_and_a_postgres_timestamp_key_match_both_ways(
        pytester: pytest.Pytester, postgres_url: str) -> None:
    """Keys sent between engines as values: a day reaches PostgreSQL's timestamp column as
    that day at 00:00, a timestamp at 00:00 reaches a date column as its day, one at noon as
    no day."""
    import datetime as dt

    pl = pytest.importorskip("polars")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pl.DataFrame({"day": [dt.date(2026, 1, d) for d in range(1, 7)]}).write_parquet(
        pytester.path / "days.parquet")
    engine = sqlalchemy.create_engine(postgres_url.replace("postgresql://",
                                                           "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP TABLE IF EXISTS join_times"))
        conn.execute(sqlalchemy.text("CREATE TABLE join_times (day timestamp)"))
        conn.execute(sqlalchemy.text("INSERT INTO join_times VALUES ('2026-01-01'), "
                                     "('2026-01-02'), ('2026-01-03'), ('2026-01-05 12:00')"))
    engine.dispose()
    run(pytester, f"""
[tool.mlfunnel.sources]
times = {{ url = "{postgres_url}", table = "join_times" }}

[tool.mlfunnel.data.days]
dataset = "days.parquet"
join = {{ dataset = "times", on = "day", match = ">= 0.5" }}

[tool.mlfunnel.data.times]
dataset = "times"
join = {{ dataset = "days.parquet", on = "day", match = ">= 0.75" }}
""")
    found = report(pytester)
    assert found["data::days::join"]["message"] == (
        "day: 50% of rows (3 of 6) found in times, expected >= 0.5")
    assert found["data::times::join"]["message"] == (
        "day: 75% of rows (3 of 4) found in days.parquet, expected >= 0.75")

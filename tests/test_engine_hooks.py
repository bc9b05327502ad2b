"""What each SQL system decides for itself: how a table's column types are found, how a query
reaches the driver, and where DuckDB spills what does not fit in memory."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.engines.dialects import (
    Dialect,
    DuckDBDialect,
)
from pytest_mlfunnel.engines.sql import (
    DEFAULT_SPILL_LIMIT,
    SPILL_LIMIT_ENV,
    duckdb_connection,
    duckdb_executor,
    spill_folder,
)
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tables import open_database

pytest_plugins = ["pytester"]


def sqlite_file(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount REAL, plan TEXT, paid BOOLEAN, "
                     "at DATETIME, day DATE, note)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (1, 9.5, "basic", 1, "2024-06-30 10:00:00", "2024-06-30", None),
            (2, None, "pro", 0, "2024-07-01 11:30:00", "2024-07-01", 7),
            (3, 12.0, None, 1, None, None, "x"),
        ])
    conn.close()
    return path


def test_sqlite_reads_a_tables_declared_types_from_its_catalog(tmp_path: Path) -> None:
    db = sqlite_file(tmp_path / "shop.db")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE typed (id INTEGER, amount REAL, plan TEXT, paid BOOLEAN, "
                     "at DATETIME, day DATE)")
        conn.execute("INSERT INTO typed SELECT id, amount, plan, paid, at, day FROM orders")
    conn.close()
    engine = open_database(SourceSpec(url=f"sqlite:///{db}", table="typed"), tmp_path)
    assert engine.schema() == {"id": "int", "amount": "float", "plan": "string",
                               "paid": "bool", "at": "datetime", "day": "date"}


def test_sqlite_falls_back_to_first_values_for_an_untyped_column_or_a_query(
        tmp_path: Path) -> None:
    db = sqlite_file(tmp_path / "shop.db")
    table = open_database(SourceSpec(url=f"sqlite:///{db}", table="orders"), tmp_path)
    # ``note`` is declared without a type: the catalog cannot say, the first value does; the
    # other columns keep their declared types (a BOOLEAN, a DATETIME and a DATE among them)
    assert table.schema() == {"id": "int", "amount": "float", "plan": "string", "paid": "bool",
                              "at": "datetime", "day": "date", "note": "int"}
    query = open_database(SourceSpec(url=f"sqlite:///{db}", query="select id, plan from orders"),
                          tmp_path)
    assert query.schema() == {"id": "int", "plan": "string"}


def test_the_ansi_form_asks_the_first_value_of_each_column_in_one_query() -> None:
    sent: list[str] = []

    def execute(sql: str, purpose: str) -> list[tuple[Any, ...]]:
        sent.append(sql)
        return [(1, None, "a")]

    found = Dialect().column_types('"t"', execute, "t", ["n", "empty", "s"])
    assert found == {"n": "int", "empty": "other", "s": "string"}
    assert sent == ['SELECT (SELECT "n" FROM "t" AS s WHERE "n" IS NOT NULL LIMIT 1), '
                    '(SELECT "empty" FROM "t" AS s WHERE "empty" IS NOT NULL LIMIT 1), '
                    '(SELECT "s" FROM "t" AS s WHERE "s" IS NOT NULL LIMIT 1)']


def test_duckdb_reads_types_from_describe(tmp_path: Path) -> None:
    import duckdb

    connection = duckdb.connect()
    connection.execute("CREATE TABLE t (a BIGINT, b DOUBLE, c VARCHAR, d BOOLEAN, e TIMESTAMP, "
                       "f DATE, g INTEGER[])")
    execute = duckdb_executor(connection, "t")
    assert DuckDBDialect().column_types("t", execute) == {
        "a": "int", "b": "float", "c": "string", "d": "bool", "e": "datetime", "f": "date",
        "g": "other"}


@pytest.mark.postgres
def test_postgres_types_and_percent_signs_in_a_query_reach_the_database_as_written(
        pytester: pytest.Pytester, postgres_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    table = f"orders_{abs(hash(str(pytester.path))) % 10**8}"
    engine = sqlalchemy.create_engine(postgres_url.replace("postgresql://",
                                                           "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"CREATE TABLE {table} (id BIGINT, plan TEXT, amount NUMERIC, "
                             "at TIMESTAMP, paid BOOLEAN)")
        conn.execute(sqlalchemy.text(
            f"INSERT INTO {table} SELECT i, CASE WHEN i % 4 = 0 THEN 'pro' ELSE 'basic' END, "
            "i * 1.5, TIMESTAMP '2024-01-01' + i * INTERVAL '1 hour', i % 2 = 0 "
            "FROM generate_series(1, 40) AS g(i)"))
    try:
        pytester.makepyprojecttoml(f"""
[tool.mlfunnel.sources]
buckets = {{ url = "${{PG_URL}}", query = "select id % 3 as bucket, plan from {table} where plan like 'b%'" }}
orders = {{ url = "${{PG_URL}}", table = "{table}" }}

[tool.mlfunnel.data.buckets]
dataset = "buckets"
rows = "== 30"
columns.bucket = {{ min = 0, max = 2 }}
columns.plan = {{ values = ["basic"] }}

[tool.mlfunnel.data.orders]
dataset = "orders"
columns.amount = {{ max = 60 }}
columns.at = {{ min = "2024-01-01" }}
columns.paid = {{ values = [true, false] }}
""")
        pytester._monkeypatch.setenv("PG_URL", postgres_url)  # type: ignore[attr-defined]
        spec = SourceSpec(url=postgres_url, table=table)
        assert open_database(spec, pytester.path).schema() == {
            "id": "int", "plan": "string", "amount": "float", "at": "datetime", "paid": "bool"}
        result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=7)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        engine.dispose()


# --------------------------------------------------------------------------- DuckDB's spill
def settings(connection: Any) -> tuple[str, str]:
    row = connection.execute("SELECT current_setting('temp_directory'), "
                             "current_setting('max_temp_directory_size')").fetchone()
    return str(row[0]), str(row[1])


def test_the_spill_folder_may_have_a_quote_in_its_path(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    temporary = tmp_path / "o'brien's tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    folder, _ = settings(duckdb_connection({}))
    assert Path(folder).parent == temporary and Path(folder).is_dir()


def test_duckdb_spills_into_a_temporary_folder_of_its_own_with_a_size_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(SPILL_LIMIT_ENV, raising=False)
    folder, limit = settings(duckdb_connection({}))
    assert Path(folder).parent == Path(tempfile.gettempdir())
    assert Path(folder).name.startswith("mlfunnel-duckdb-") and Path(folder).is_dir()
    assert limit == "10.0 GiB" and DEFAULT_SPILL_LIMIT == "10GiB"
    monkeypatch.setenv(SPILL_LIMIT_ENV, "512MB")
    assert settings(duckdb_connection({}))[1] == "488.2 MiB"  # DuckDB shows it in MiB


def test_a_query_over_the_spill_cap_says_which_setting_allows_more(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPILL_LIMIT_ENV, "1MB")
    connection = duckdb_connection({})
    connection.execute("SET memory_limit = '30MB'")
    connection.execute("SET threads = 1")
    execute = duckdb_executor(connection, "big.parquet")
    with pytest.raises(CriterionError) as caught:
        execute("SELECT count(*) FROM (SELECT i, md5(CAST(i AS VARCHAR)) AS s FROM "
                "range(3000000) AS r(i) ORDER BY s)", "aggregate")
    message = str(caught.value)
    assert message.startswith("big.parquet: Out of Memory Error: ")
    assert message.endswith(f"(DuckDB may spill at most 1MB to disk: set {SPILL_LIMIT_ENV} "
                            "to allow more)")


def test_a_spill_cap_that_is_not_a_size_is_one_clear_error(pytester: pytest.Pytester) -> None:
    import polars as pl

    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(pytester.path / "t.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.t]
dataset = "t.parquet"
rows = ">= 1"
""")
    pytester._monkeypatch.setenv(SPILL_LIMIT_ENV, "lots")  # type: ignore[attr-defined]
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{SPILL_LIMIT_ENV}='lots' is not a size: give one such as "
                                 "10GiB or 500MB*"])
    assert "Traceback" not in result.stdout.str() and "INTERNALERROR" not in result.stdout.str()


def test_a_run_leaves_no_duckdb_folder_in_the_working_directory(
        pytester: pytest.Pytester) -> None:
    import polars as pl

    pl.DataFrame({"x": list(range(1000))}).write_parquet(pytester.path / "t.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.t]
dataset = "t.parquet"
columns.x = { unique = true }
""")
    temp = pytester.path / "temp"
    temp.mkdir()
    pytester._monkeypatch.setenv("TMPDIR", str(temp))  # type: ignore[attr-defined]
    pytester.makeconftest("""
import tempfile

def pytest_unconfigure(config):
    folders = [str(p) for p in __import__("pathlib").Path(tempfile.gettempdir()).glob(
        "mlfunnel-duckdb-*")]
    print("spill folders:", folders)
""")
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    # while the run was on, its one folder was under $TMPDIR
    assert f"spill folders: ['{temp}/mlfunnel-duckdb-" in result.stdout.str()
    assert not (pytester.path / ".tmp").exists()
    assert list(temp.glob("mlfunnel-duckdb-*")) == []  # removed when the process ended


SPILLING_PROCESS = """
import sys
from pytest_mlfunnel.engines.sql import duckdb_connection
connection = duckdb_connection({})
print(connection.execute("SELECT current_setting('temp_directory')").fetchone()[0], flush=True)
sys.stdin.read()
"""


def spilling_process(temp: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process with a DuckDB connection, alive until its stdin closes, and its spill folder."""
    child = subprocess.Popen([sys.executable, "-c", SPILLING_PROCESS], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env={**os.environ, "TMPDIR": str(temp)})
    assert child.stdout is not None
    folder = Path(child.stdout.readline().strip())
    assert folder.parent == temp and folder.is_dir(), folder
    return child, folder


@pytest.mark.skipif(sys.platform == "win32", reason="folders are swept where flock exists")
def test_the_spill_folder_of_a_killed_run_is_removed_by_the_next_one_and_a_live_one_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    killed, killed_folder = spilling_process(tmp_path)
    live, live_folder = spilling_process(tmp_path)
    (killed_folder / "duckdb_temp_block-1.block").write_bytes(b"x" * 4096)
    older = tmp_path / "mlfunnel-duckdb-made-by-an-older-version"
    older.mkdir()
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed_folder.is_dir()  # no exit handler ran
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mine = Path(spill_folder())
    assert not killed_folder.exists()
    assert live_folder.is_dir() and mine.is_dir() and older.is_dir()
    live.communicate("", timeout=30)
    assert live.returncode == 0 and not live_folder.exists()  # removed at its own exit

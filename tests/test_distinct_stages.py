"""Exact distinct counts and duplicate rows in stages of their own, and their estimates.

Every count is checked against Python counting the rows read back through the source's own
driver (pyarrow, sqlite3, psycopg); a deliberately weak row hash forces collisions to show that
a collision is never counted as a duplicate.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.engines import sql as sql_engine
from pytest_mlfunnel.engines.dialects import DuckDBDialect, PostgreSQLDialect
from pytest_mlfunnel.engines.protocol import Agg
from pytest_mlfunnel.engines.sql import SqlEngine
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tables import open_database, open_file

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pacsv = pytest.importorskip("pyarrow.csv")

COLUMNS = ["id", "name", "score", "day"]
DAY = dt.date(2026, 1, 1)
#: rows with every kind of tie: whole repeated rows (NULLs and NaN included), rows differing in
#: one column only, -0.0 beside 0.0, NaN beside NULL
BASE: list[tuple[Any, ...]] = [
    (1, "ann", 0.5, DAY),
    (1, "ann", 0.5, DAY),  # a duplicate
    (1, "ann", 0.5, DAY + dt.timedelta(days=1)),  # differs in the day only
    (2, None, None, DAY),
    (2, None, None, DAY),  # a duplicate, with NULLs
    (3, "bob", float("nan"), None),
    (3, "bob", float("nan"), None),  # a duplicate, with NaN
    (4, "cy", 0.0, DAY),
    (4, "cy", -0.0, DAY),  # equal: -0.0 is 0.0
    (5, "dee", 1.25, DAY),
    (None, "eve", 2.5, DAY),
    (None, "eve", 2.5, DAY),  # a duplicate with a NULL key
    (6, "ann", 0.25, DAY),
]


def rows(repeat: int = 1) -> list[tuple[Any, ...]]:
    """BASE, then ``repeat - 1`` shifted copies of it (same ties, other values)."""
    out = list(BASE)
    for k in range(1, repeat):
        out += [(None if i is None else i + 10 * k, None if n is None else f"{n}{k}", s, d)
                for i, n, s, d in BASE]
    return out


def normal(value: Any) -> Any:
    """A value as the engines compare it: NaN equal to NaN, -0.0 equal to 0.0."""
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else value + 0.0
    return value


def duplicate_rows(found: list[tuple[Any, ...]]) -> int:
    return len(found) - len({tuple(normal(v) for v in row) for row in found})


def distinct(found: list[tuple[Any, ...]], column: str) -> int:
    """NaN counts as a null: neither is a value."""
    at = COLUMNS.index(column)
    return len({normal(row[at]) for row in found
                if row[at] is not None and normal(row[at]) != "NaN"})


def write_parquet(path: Path, data: list[tuple[Any, ...]]) -> None:
    table = pa.table({c: [r[i] for r in data] for i, c in enumerate(COLUMNS)})
    pq.write_table(table, path)


def read_parquet(path: Path) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in COLUMNS) for r in pq.read_table(path).to_pylist()]


def write_sqlite(path: Path, data: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT, score REAL, day DATE)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                         [(i, n, s, None if d is None else d.isoformat()) for i, n, s, d in data])


def read_sqlite(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT id, name, score, day FROM t"))


@pytest.fixture
def postgres_table(postgres_url: str) -> Iterator[Callable[[list[tuple[Any, ...]]], str]]:
    psycopg = pytest.importorskip("psycopg")
    made: list[str] = []

    def make(data: list[tuple[Any, ...]]) -> str:
        name = f"stages_{abs(hash((postgres_url, len(made), id(made)))) % 10**8}"
        with psycopg.connect(postgres_url, connect_timeout=10) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute(f"CREATE TABLE {name} (id BIGINT, name TEXT, score DOUBLE PRECISION, "
                         "day DATE)")
            with conn.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s)", data)
        made.append(name)
        return name

    yield make
    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        for name in made:
            conn.execute(f"DROP TABLE IF EXISTS {name}")


def read_postgres(url: str, table: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        return list(conn.execute(f"SELECT id, name, score, day FROM {table}"))


def counted(engine: SqlEngine) -> dict[str, int]:
    aggs = [Agg("duplicate_rows"), *(Agg("distinct", c) for c in COLUMNS), Agg("rows")]
    values = engine.compute(aggs)
    return {"duplicates": values[0], **{c: v for c, v in zip(COLUMNS, values[1:-1],
                                                           strict=True)}}


def expected(found: list[tuple[Any, ...]]) -> dict[str, int]:
    return {"duplicates": duplicate_rows(found), **{c: distinct(found, c) for c in COLUMNS}}


@pytest.mark.parametrize("repeat", [1, 40])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_files_count_duplicate_rows_and_distinct_values_as_python_does(
        tmp_path: Path, fmt: str, repeat: int) -> None:
    data = rows(repeat)
    write_parquet(tmp_path / "t.parquet", data)
    found = read_parquet(tmp_path / "t.parquet")
    if fmt == "csv":  # NaN and -0.0 written as text, read back by pyarrow's own parser
        pacsv.write_csv(pq.read_table(tmp_path / "t.parquet"), tmp_path / "t.csv")
        found = [tuple(r[c] for c in COLUMNS)
                 for r in pacsv.read_csv(tmp_path / "t.csv", convert_options=pacsv.ConvertOptions(
                     strings_can_be_null=True)).to_pylist()]  # "" is NULL, as DuckDB reads it
    engine = open_file(SourceSpec(path=f"t.{fmt}"), tmp_path, {})
    assert counted(engine) == expected(found)
    assert expected(found)["duplicates"] == 5 * repeat  # the test data holds what it says


def test_sqlite_counts_duplicate_rows_and_distinct_values_as_python_does(
        tmp_path: Path) -> None:
    write_sqlite(tmp_path / "t.db", rows(3))
    engine = open_database(SourceSpec(url=f"sqlite:///{tmp_path / 't.db'}", table="t"),
                           tmp_path)
    found = read_sqlite(tmp_path / "t.db")  # SQLite keeps NaN as NULL
    assert counted(engine) == expected(found)
    assert expected(found)["duplicates"] == 15


@pytest.mark.postgres
def test_postgres_hashes_rows_in_the_database_and_counts_as_python_does(
        tmp_path: Path, postgres_url: str,
        postgres_table: Callable[[list[tuple[Any, ...]]], str]) -> None:
    table = postgres_table(rows(3))
    queries: list[str] = []
    engine = open_database(SourceSpec(url=postgres_url, table=table), tmp_path)
    run = engine._execute
    engine._execute = lambda sql, purpose: queries.append(sql) or run(sql, purpose)
    assert counted(engine) == expected(read_postgres(postgres_url, table))
    assert any("hash_record_extended(ROW(" in q for q in queries)


class WeakDuckDB(DuckDBDialect):
    """A row hash of one bit: nearly every pair of rows collides."""

    def row_hash(self, columns: list[str]) -> str | None:
        return f"(hash({', '.join(columns)}) % 2)"


class WeakPostgreSQL(PostgreSQLDialect):
    def row_hash(self, columns: list[str]) -> str | None:
        return f"(hash_record_extended(ROW({', '.join(columns)}), 0) & 1)"


def logged(engine: SqlEngine) -> list[str]:
    purposes: list[str] = []
    run = engine._execute
    engine._execute = lambda sql, purpose: purposes.append(purpose) or run(sql, purpose)
    return purposes


@pytest.mark.parametrize("repeat", [1, 25])
def test_a_row_hash_collision_is_never_counted_as_a_duplicate(tmp_path: Path,
                                                             repeat: int) -> None:
    data = rows(repeat)
    distinct_rows = list(dict.fromkeys(tuple(normal(v) for v in r) for r in data))
    write_parquet(tmp_path / "all.parquet", data)
    write_parquet(tmp_path / "distinct.parquet",
                  [tuple(float("nan") if v == "NaN" else v for v in r) for r in distinct_rows])
    for name, duplicates in (("distinct", 0), ("all", 5 * repeat)):
        engine = open_file(SourceSpec(path=f"{name}.parquet"), tmp_path, {})
        engine.dialect = WeakDuckDB()
        purposes = logged(engine)
        found = counted(engine)
        assert found == expected(read_parquet(tmp_path / f"{name}.parquet"))
        assert found["duplicates"] == duplicates
        # the weak hash collides on nearly every pair: the exact comparison of colliding
        # rows, in the same query as the hashes' sort, decided
        assert purposes.count("duplicate rows") == 1
        assert "duplicate rows (hash repeats)" not in purposes
        # the string column too: hashed, its colliding values compared in the same query
        assert "distinct (values)" in purposes and "distinct (hash repeats)" not in purposes


@pytest.mark.postgres
def test_a_row_hash_collision_in_postgres_is_never_a_duplicate(
        tmp_path: Path, postgres_url: str,
        postgres_table: Callable[[list[tuple[Any, ...]]], str]) -> None:
    distinct_rows = [r for i, r in enumerate(rows(4)) if i % len(BASE) not in (1, 4, 6, 8, 11)]
    for data, duplicates in ((distinct_rows, 0), (rows(4), 20)):
        table = postgres_table(data)
        engine = open_database(SourceSpec(url=postgres_url, table=table), tmp_path)
        engine.dialect = WeakPostgreSQL()
        purposes = logged(engine)
        found = counted(engine)
        assert found == expected(read_postgres(postgres_url, table))
        assert found["duplicates"] == duplicates
        assert "duplicate rows (hash repeats)" in purposes


def test_exact_counts_run_in_stages_of_their_own_beside_the_one_pass(tmp_path: Path) -> None:
    write_parquet(tmp_path / "t.parquet", rows(2))
    engine = open_file(SourceSpec(path="t.parquet"), tmp_path, {})
    purposes = logged(engine)
    engine.compute([Agg("rows"), Agg("mean", "score"), Agg("duplicate_rows"),
                    Agg("distinct", "name"), Agg("distinct", "score")])
    assert purposes.count("aggregate") == 1
    assert purposes.count("duplicate rows") == 1
    assert purposes.count("distinct") == 2


@pytest.mark.parametrize("weak", [False, True])
@pytest.mark.parametrize("name", ["distinct", "all"])
def test_a_wide_file_counts_its_duplicate_rows_in_the_pass_and_confirms_repeats_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weak: bool, name: str) -> None:
    data = rows(3)
    if name == "distinct":
        data = [tuple(float("nan") if v == "NaN" else v for v in r)
                for r in dict.fromkeys(tuple(normal(v) for v in r) for r in data)]
    write_parquet(tmp_path / "t.parquet", data)
    monkeypatch.setattr(sql_engine, "CARRY_MIN_COLUMNS", len(COLUMNS))  # "wide" from 4
    engine = open_file(SourceSpec(path="t.parquet"), tmp_path, {})
    if weak:
        engine.dialect = WeakDuckDB()
    purposes = logged(engine)
    values = engine.compute([Agg("rows"), Agg("mean", "score"), Agg("duplicate_rows"),
                             Agg("distinct", "name")])
    found = read_parquet(tmp_path / "t.parquet")
    scores = [r[2] for r in found if r[2] is not None and not math.isnan(r[2])]
    assert values == [len(found), pytest.approx(sum(scores) / len(scores)),
                      duplicate_rows(found), distinct(found, "name")]
    assert values[2] == (0 if name == "distinct" else 15)
    # the pass gathered the row hashes: a stage reads the rows again only when one repeats
    # (always with the weak hash), and then compares them exactly
    assert purposes.count("duplicate rows") == (name == "all" or weak)


def test_a_narrow_table_counts_duplicate_rows_in_a_stage_of_its_own(
        tmp_path: Path) -> None:
    write_parquet(tmp_path / "t.parquet", rows(2))  # 4 columns: narrow
    engine = open_file(SourceSpec(path="t.parquet"), tmp_path, {})
    purposes = logged(engine)
    engine.compute([Agg("rows"), Agg("mean", "score"), Agg("duplicate_rows")])
    assert purposes.count("duplicate rows") == 1


@pytest.mark.parametrize("weak", [False, True])
def test_duplicate_rows_of_a_large_file_are_counted_in_parts_as_python_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weak: bool) -> None:
    data = rows(25)
    write_parquet(tmp_path / "t.parquet", data)
    monkeypatch.setattr(sql_engine, "ROWS_PER_PART", 100)  # 325 rows: 4 parts
    engine = open_file(SourceSpec(path="t.parquet"), tmp_path, {})
    if weak:
        engine.dialect = WeakDuckDB()
    queries: list[str] = []
    run = engine._execute
    engine._execute = lambda sql, purpose: queries.append(sql) or run(sql, purpose)
    assert engine.compute([Agg("duplicate_rows")]) == [125]
    assert duplicate_rows(read_parquet(tmp_path / "t.parquet")) == 125
    assert [q for q in queries if "% 4 = " in q] == [
        q for q in queries if "lag(v)" in q] and len([q for q in queries if "lag(v)" in q]) == 4


# --------------------------------------------------------------------------- approx = true
def json_report(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].split("::")[-1]: c for g in data["gates"] for c in g["criteria"]}


def keyed_rows(n: int, repeated: int) -> list[tuple[Any, ...]]:
    data: list[tuple[Any, ...]] = [(i, f"user-{i:06d}", i / 7, DAY) for i in range(n)]
    return data + data[:repeated]


def test_approx_estimates_duplicates_and_unique_and_says_how_far_off_they_may_be(
        pytester: pytest.Pytester) -> None:
    write_parquet(pytester.path / "users.parquet", keyed_rows(20_000, 4_000))
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.users]
dataset = "users.parquet"
approx = true
duplicates = "<= 1%"
columns.id = { unique = true }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(failed=2)
    found = json_report(pytester)
    duplicates, unique = found["duplicates"], found["id.unique"]
    # 4,000 of 24,000 rows repeat; a 2.7% standard error on 20,000 distinct is about 540
    assert abs(duplicates["observed"] - 4_000 / 24_000) < 0.05
    estimated = round(duplicates["observed"] * 24_000)
    assert duplicates["message"].startswith("duplicates: ")
    assert "duplicated rows (estimated)" in duplicates["message"]
    assert duplicates["message"].endswith(
        "an estimate (HyperLogLog): relative standard error 2.7% of the "
        f"{24_000 - estimated} distinct, about ±{round(0.027 * (24_000 - estimated))}")
    assert unique["message"].startswith("id: about ")
    assert "repeated values" in unique["message"]
    assert unique["message"].endswith("expected unique; an estimate (HyperLogLog), relative "
                                      f"standard error 2.7%: repeats up to about "
                                      f"{round(2 * 0.027 * 24_000)} cannot be told from none")
    result.stdout.fnmatch_lines(["*duplicated rows (estimated)*"])


def test_approx_unique_passes_on_unique_keys(pytester: pytest.Pytester) -> None:
    write_parquet(pytester.path / "users.parquet", keyed_rows(20_000, 0))
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.users]
dataset = "users.parquet"
approx = true
columns.name = { unique = true }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(passed=1)
    message = json_report(pytester)["name.unique"]["message"]
    assert message.startswith("name: about ")
    assert "distinct values among 20000 non-null, consistent with unique" in message


def test_approx_on_an_engine_without_an_estimate_counts_exactly_and_says_so(
        pytester: pytest.Pytester) -> None:
    write_sqlite(pytester.path / "t.db", rows(2))
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.data.t]
dataset = {{ url = "sqlite:///{pytester.path / 't.db'}", table = "t" }}
approx = true
duplicates = "== 0"
columns.name = {{ unique = true }}
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(failed=2)
    found = json_report(pytester)
    assert found["duplicates"]["message"] == (
        "duplicates: 10 duplicated rows (38.46% of 26 rows), expected == 0; "
        "counted exactly (this engine has no estimate)")
    assert found["name.unique"]["message"].startswith(
        "name: 12 repeated values (10 distinct among 22 non-null), expected unique; e.g. ")


def test_approx_must_be_true_or_false(pytester: pytest.Pytester) -> None:
    write_parquet(pytester.path / "users.parquet", keyed_rows(10, 0))
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.users]
dataset = "users.parquet"
approx = "yes"
duplicates = "== 0"
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*pyproject.toml: tool.mlfunnel.data.users.approx: *"])

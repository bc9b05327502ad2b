"""Odd column names, odd types and odd tables through real ``pytest --funnel`` runs: each
message is compared with what the data holds, worked out by hand in the test."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import sqlite3
from typing import Any

import pytest

pl = pytest.importorskip("polars")


@pytest.fixture(scope="module", autouse=True)
def _engines_imported_once() -> None:
    """In-process pytester runs drop the modules first imported during a run, and C
    extensions load once per process: what the inner runs use is imported before they start."""
    for module in ("dask.dataframe", "psycopg", "scipy.stats", "pyarrow.parquet"):
        with contextlib.suppress(ImportError):  # a test needing a missing one fails on its own
            importlib.import_module(module)


def run(pytester: pytest.Pytester, config: str, *, subprocess: bool = False
        ) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyprojecttoml('[tool.mlfunnel]\nrequire = "none"\n' + config)
    runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    result = runner("--funnel", "-p", "no:cacheprovider", "-p", "no:xdist",
                    "--funnel-json", "report.json", "-rA")
    data = json.loads((pytester.path / "report.json").read_text())
    criteria = {c["id"].split("::", 1)[-1]: c for g in data["gates"] for c in g["criteria"]}
    return result, criteria


def test_a_long_text_value_is_shown_shortened_in_a_failure(pytester: pytest.Pytester) -> None:
    long = "z" * 100_000
    pl.DataFrame({"note": [long + str(i) for i in range(3)]}).write_parquet(
        pytester.path / "notes.parquet")
    result, criteria = run(pytester, """
[tool.mlfunnel.data.notes]
dataset = "notes.parquet"
columns.note = { values = ["x"] }
""")
    message = criteria["data::notes::note.values"]["message"]
    shown = "'" + "z" * 100 + "'... (100001 characters)"
    assert message == f"note: 3 values outside ['x'], e.g. {shown}, {shown}, {shown}"
    assert max(len(line) for line in result.outlines) < 1000


def test_a_blob_column_leaves_the_declared_dates_of_a_sqlite_table_dates(
        pytester: pytest.Pytester) -> None:
    with sqlite3.connect(pytester.path / "shop.db") as db:
        db.execute("create table orders (id integer, placed date, receipt blob, note)")
        db.executemany("insert into orders values (?, ?, ?, ?)",
                       [(i, f"2026-11-0{i}", b"\x00\x01", "n") for i in range(1, 6)])
    _, criteria = run(pytester, """
[tool.mlfunnel.data.orders]
dataset = { url = "sqlite:///shop.db", table = "orders" }
columns.placed = { min = "2026-11-02", dtype = "date" }
columns.note = { dtype = "string" }
""")
    assert criteria["data::orders::placed.min"]["message"] == (
        "placed: min 2026-11-01, expected >= 2026-11-02; e.g. 2026-11-01")
    assert criteria["data::orders::placed.dtype"]["status"] == "passed"
    assert criteria["data::orders::note.dtype"]["status"] == "passed"


@pytest.mark.parametrize("lines", [["1,2.5,p", "2,3.5", "3,4.5,q"],
                                   ["1,2.5,p", "2,3.5,q,extra", "3,4.5,q"]],
                         ids=["a-short-row", "a-long-row"])
def test_a_csv_whose_rows_are_ragged_says_so_instead_of_missing_columns(
        pytester: pytest.Pytester, lines: list[str]) -> None:
    (pytester.path / "ragged.csv").write_text("\n".join(["a,x,c", *lines]) + "\n")
    (pytester.path / "quoted.csv").write_text('"a,x"\n1\n2\n')
    _, criteria = run(pytester, """
[tool.mlfunnel.data.ragged]
dataset = "ragged.csv"
rows = "== 3"
columns.a = { nulls = "== 0" }

[tool.mlfunnel.data.quoted]
dataset = "quoted.csv"
columns."a,x" = { min = 1 }
""")
    because = ("ragged.csv: read as one column named 'a,x,c': not every row has as many "
               "fields as the header, so no delimiter fits every row; options = { null_padding "
               "= true } on the source reads a row's missing fields as nulls")
    assert criteria["data::ragged::rows"]["message"] == because
    assert criteria["data::ragged::a.nulls"]["status"] == "error"
    assert criteria["data::quoted::a-x.min"]["status"] == "passed"  # one column, quoted


def test_one_file_read_with_other_options_is_a_source_of_its_own(
        pytester: pytest.Pytester) -> None:
    (pytester.path / "ragged.csv").write_text("a,x,c\n1,2.5,p\n2,3.5\n3,4.5,q\n")
    _, criteria = run(pytester, """
[tool.mlfunnel.data.plain]
dataset = "ragged.csv"
rows = "== 3"

[tool.mlfunnel.data.padded]
dataset = { path = "ragged.csv", options = { null_padding = true } }
columns.a = { min = 2 }
columns.c = { nulls = "== 0" }
""")
    assert criteria["data::plain::rows"]["status"] == "error"
    assert criteria["data::padded::a.min"]["message"] == "a: min 1, expected >= 2; e.g. 1"
    assert criteria["data::padded::c.nulls"]["message"] == (
        "c: 1 null (33.33% of 3 rows), expected == 0")


def test_a_drift_reference_read_with_other_options_is_summarised_apart(
        pytester: pytest.Pytester) -> None:
    (pytester.path / "ref.csv").write_text("x\n" + "1\n" * 50 + "2\n" * 50)
    (pytester.path / "cur.csv").write_text("x\n" + "2\n" * 100)
    config = """
[tool.mlfunnel.maintenance.plain]
drift = { reference = "ref.csv", current = "cur.csv" }
expect = { psi = "<= 0.1" }

[tool.mlfunnel.maintenance.ones_are_nulls]
drift = { reference = { path = "ref.csv", options = { nullstr = "1" } }, current = "cur.csv" }
expect = { psi = "<= 0.1" }
"""
    for _ in range(2):  # the second run reads both summaries from the cache
        _, criteria = run(pytester, config)
        assert criteria["maintenance::plain::x.psi"]["status"] == "failed"
        assert criteria["maintenance::ones_are_nulls::x.psi"]["observed"] == 0


def test_a_decimal_column_of_a_lazy_frame_is_checked_and_compared(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import decimal
import polars as pl
import pytest

@pytest.fixture(scope="session")
def prices():
    values = [decimal.Decimal("1.5") * i for i in range(10)] + [None]
    return pl.LazyFrame({"price": pl.Series(values, dtype=pl.Decimal(38, 10))})
""")
    _, criteria = run(pytester, """
[tool.mlfunnel.data.prices]
dataset = { fixture = "prices" }
columns.price = { max = 13, nulls = "== 0", dtype = "float" }

[tool.mlfunnel.maintenance.prices]
drift = { reference = { fixture = "prices" }, current = { fixture = "prices" } }
expect = { psi = "<= 0.1" }
""")
    assert criteria["data::prices::price.max"]["message"] == (
        "price: max 13.5, expected <= 13; e.g. 13.5")
    assert criteria["data::prices::price.nulls"]["message"] == (
        "price: 1 null (9.091% of 11 rows), expected == 0")
    assert criteria["data::prices::price.dtype"]["status"] == "passed"
    assert criteria["maintenance::prices::psi"]["status"] == "passed"


def test_names_that_differ_only_in_case_say_how_duckdb_reads_them(
        pytester: pytest.Pytester) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"Amount": [1, 2], "amount": [-1, -2], "AMOUNT": [10, 20]}),
                   pytester.path / "case.parquet")
    pytester.makeconftest("""
import pandas as pd
import pytest

@pytest.fixture(scope="session")
def amounts():
    return pd.DataFrame({"Amount": [1, 2], "amount": [-1, -2]})
""")
    _, criteria = run(pytester, """
[tool.mlfunnel.data.file]
dataset = "case.parquet"
columns.AMOUNT = { max = 10 }
columns.amount_1 = { min = 0 }

[tool.mlfunnel.data.frame]
dataset = { fixture = "amounts" }
columns.amount = { min = 0 }
""")
    assert criteria["data::file::AMOUNT.max"]["message"] == (
        "AMOUNT: read as 'AMOUNT_2' from case.parquet, which also has 'Amount': DuckDB takes "
        "names that differ only in case for one name and numbers the later ones; name the "
        "column 'AMOUNT_2' here (columns: Amount, amount_1, AMOUNT_2)")
    assert criteria["data::file::amount_1.min"]["message"] == (
        "amount_1: min -2, expected >= 0; e.g. -2, -1")
    assert criteria["data::frame::amount.min"]["message"] == (
        "amount: read as 'amount_1' from fixture 'amounts', which also has 'Amount': DuckDB "
        "takes names that differ only in case for one name and numbers the later ones; name "
        "the column 'amount_1' here (columns: Amount, amount_1)")


def test_a_glob_of_files_with_other_columns_names_union_by_name(
        pytester: pytest.Pytester) -> None:
    (pytester.path / "parts").mkdir()
    pl.DataFrame({"a": [1, 2], "x": [0.5, 1.5]}).write_parquet(pytester.path / "parts/p1.parquet")
    pl.DataFrame({"a": [3], "c": ["q"]}).write_parquet(pytester.path / "parts/p2.parquet")
    _, criteria = run(pytester, """
[tool.mlfunnel.data.parts]
dataset = "parts/*.parquet"
columns.c = { nulls = "== 0" }
columns.x = { max = 1 }

[tool.mlfunnel.data.by_name]
dataset = { path = "parts/*.parquet", options = { union_by_name = true } }
columns.c = { nulls = "== 0" }
columns.x = { max = 1 }
""")
    assert criteria["data::parts::c.nulls"]["message"] == (
        "c: no such column in parts/*.parquet (columns: a, x); the columns of a glob are those "
        "of its first file, unless the source reads them by name with options = { "
        "union_by_name = true }")
    message = criteria["data::parts::x.max"]["message"]
    assert message.startswith("parts/*.parquet: cannot read as parquet: ")
    assert "schema mismatch" in message
    assert message.endswith("; files with other columns are read by name with options = { "
                            "union_by_name = true } on the source")
    assert criteria["data::by_name::c.nulls"]["message"] == (
        "c: 2 nulls (66.67% of 3 rows), expected == 0")
    assert criteria["data::by_name::x.max"]["message"] == "x: max 1.5, expected <= 1; e.g. 1.5"


def test_duplicate_rows_and_repeated_values_of_a_postgres_table_with_json_columns_are_counted(
        pytester: pytest.Pytester, postgres_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    table = f"events_{abs(hash(str(pytester.path))) % 10**8}"
    engine = sqlalchemy.create_engine(postgres_url.replace("postgresql://",
                                                           "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"CREATE TABLE {table} (id INT, payload JSON, spot POINT, "
                             "amount NUMERIC, doc XML)")
        # rows 1 and 2 again, row 3 with a payload that differs only in a value
        conn.exec_driver_sql(
            f"INSERT INTO {table} VALUES (1, '{{\"a\": 1}}', point(1, 2), 1.5, '<a/>'), "
            f"(2, '[1, 2]', point(0, 0), 2, '<b/>'), (3, '{{\"a\": 1}}', NULL, NULL, NULL), "
            f"(1, '{{\"a\": 1}}', point(1, 2), 1.5, '<a/>'), "
            f"(2, '[1, 2]', point(0, 0), 2, '<b/>'), (3, '{{\"a\": 2}}', NULL, NULL, NULL)")
    try:
        pytester._monkeypatch.setenv("PG_URL", postgres_url)  # type: ignore[attr-defined]
        _, criteria = run(pytester, f"""
[tool.mlfunnel.data.events]
dataset = {{ url = "${{PG_URL}}", table = "{table}" }}
duplicates = "== 0"
columns.payload = {{ unique = true }}
""")
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        engine.dispose()
    assert criteria["data::events::duplicates"]["message"] == (
        "duplicates: 2 duplicated rows (33.33% of 6 rows), expected == 0")
    # the payloads {"a": 1}, [1, 2], {"a": 1}, [1, 2], {"a": 1}, {"a": 2}: 3 distinct values
    assert criteria["data::events::payload.unique"]["message"] == (
        "payload: 3 repeated values (3 distinct among 6 non-null), expected unique; e.g. "
        "'{\"a\": 1}', '[1, 2]'")


def test_a_current_table_whose_column_cannot_be_binned_says_why_in_drift(
        pytester: pytest.Pytester) -> None:
    pl.DataFrame({"x": [float(i) for i in range(20)]}).write_parquet(pytester.path / "ref.parquet")
    with sqlite3.connect(pytester.path / "cur.db") as db:
        db.execute("create table t (x real)")
        db.executemany("insert into t values (?)", [(float(i),) for i in range(19)] + [("n/a",)])
    _, criteria = run(pytester, """
[tool.mlfunnel.maintenance.live]
drift = { reference = "ref.parquet", current = { url = "sqlite:///cur.db", table = "t" } }
expect = { psi = "<= 0.2" }
""")
    assert criteria["maintenance::live::x.psi"]["message"] == (
        "x: holds values that are not numbers (e.g. 'n/a') in sqlite:///cur.db table t, where "
        "drift needs numbers; the database keeps what was written whatever the column's "
        "declared type: clean the column, or read it through a query that casts it")


def test_an_effect_reads_nan_as_null_and_boolean_groups_on_parquet_and_sqlite(
        pytester: pytest.Pytester) -> None:
    stats = pytest.importorskip("scipy.stats")
    after = [i >= 20 for i in range(40)]
    values = [float(i % 20) + (5.0 if i >= 20 else 0.0) for i in range(40)]
    values[3] = float("nan")
    pl.DataFrame({"min. per box": values, "treated": after}).write_parquet(
        pytester.path / "kpi.parquet")
    with sqlite3.connect(pytester.path / "kpi.db") as db:
        db.execute('create table kpi ("min. per box" real, treated boolean)')
        db.executemany("insert into kpi values (?, ?)",
                       [(None if v != v else v, int(t)) for v, t in zip(values, after,
                                                                           strict=True)])
    checks = "".join(f"""
[tool.mlfunnel.effectiveness.{name}]
effect = {source}
metric = "min. per box"
by = "treated"
before = false
after = true
expect = "increase"
""" for name, source in (("parquet", '"kpi.parquet"'),
                         ("sqlite", '{ url = "sqlite:///kpi.db", table = "kpi" }')))
    _, criteria = run(pytester, checks)
    before_values = [v for v, t in zip(values, after, strict=True) if not t and v == v]
    after_values = [v for v, t in zip(values, after, strict=True) if t]
    p = stats.ttest_ind(after_values, before_values, equal_var=False,
                        alternative="greater").pvalue
    assert round(p, 4) == 0.0092
    for name in ("parquet", "sqlite"):
        found = criteria[f"effectiveness::{name}::min.-per-box"]
        assert found["message"] == (
            "min. per box rose 47.3% (9.842 -> 14.5), an increase as expected; p = 0.0092 "
            "(welch, one-sided, n = 19/20)")


def test_a_pandas_frame_with_a_column_duckdb_cannot_read_names_the_column(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pandas as pd
import pytest

@pytest.fixture(scope="session")
def months():
    return pd.DataFrame({"n": [1, 2, 3],
                         "month": pd.period_range("2026-01", periods=3, freq="M")})
""")
    # a process of its own: once pandas has told pyarrow of its Period type, DuckDB reads it
    _, criteria = run(pytester, """
[tool.mlfunnel.data.months]
dataset = { fixture = "months" }
rows = "== 3"
columns.n = { min = 1 }
""", subprocess=True)
    assert criteria["data::months::rows"]["message"] == (
        "fixture 'months': DuckDB cannot read the column month (period[M]) of this pandas "
        "frame (Not implemented Error: Data type 'period[M]' not recognized); convert it in "
        "the fixture, to text, numbers or timestamps, or leave it out")
    assert criteria["data::months::n.min"]["status"] == "error"


def test_drift_of_a_nested_or_binary_column_says_what_it_is_not_that_it_is_time(
        pytester: pytest.Pytester) -> None:
    frame = pl.DataFrame({"tags": [[1, 2], [3]], "raw": [b"a", b"b"],
                          "at": [dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)]})
    frame.write_parquet(pytester.path / "ref.parquet")
    _, criteria = run(pytester, """
[tool.mlfunnel.maintenance.odd]
drift = { reference = "ref.parquet", current = "ref.parquet" }
columns = ["tags", "raw", "at"]
expect = { psi = "<= 0.1" }
""")
    nested = ("is neither a number nor a category in the reference data (a list, struct, "
              "binary, time-of-day or untyped column); drift compares numbers and categories")
    assert criteria["maintenance::odd::tags.psi"]["message"] == f"tags: {nested}"
    assert criteria["maintenance::odd::raw.psi"]["message"] == f"raw: {nested}"
    assert criteria["maintenance::odd::at.psi"]["message"] == (
        "at: is datetime in the reference data; drift compares numbers and categories (leave "
        "time columns out: they always drift)")


def test_a_glob_of_parquet_files_typing_a_column_apart_reads_every_value_as_written(
        pytester: pytest.Pytester) -> None:
    """DuckDB reads a glob with the first file's types: 1.5 in a float file under an int
    first file came back as 2, so max, mean and dtype told of numbers no file holds."""
    (pytester.path / "parts").mkdir()
    pl.DataFrame({"x": [1, 2, 3], "n": ["a", "b", "c"]}).write_parquet(
        pytester.path / "parts/p1.parquet")
    pl.DataFrame({"x": [1.5, 3.5], "n": ["d", "e"]}).write_parquet(
        pytester.path / "parts/p2.parquet")
    pl.DataFrame({"x": [4], "n": ["f"]}, schema={"x": pl.Int32, "n": pl.String}).write_parquet(
        pytester.path / "parts/p3.parquet")
    _, criteria = run(pytester, """
[tool.mlfunnel.data.parts]
dataset = "parts/*.parquet"
rows = "== 6"
columns.x = { max = 3.6, min = 1, dtype = "int", values = [1, 2, 3, 4] }
""")
    assert criteria["data::parts::rows"]["status"] == "passed"
    assert criteria["data::parts::x.max"]["message"] == "x: max 4, expected <= 3.6; e.g. 4"
    assert criteria["data::parts::x.min"]["status"] == "passed"
    assert criteria["data::parts::x.dtype"]["message"] == "x: dtype float, expected int"
    assert criteria["data::parts::x.values"]["message"] == (
        "x: 2 values outside [1, 2, 3, 4], e.g. 1.5, 3.5")


def test_a_repeated_nan_is_not_shown_as_a_repeated_value_on_any_engine(
        pytester: pytest.Pytester) -> None:
    """NaN counts as a null: the count of repeats leaves it out, and so must the examples
    (DuckDB showed 'nan', a lazy polars frame 'None')."""
    nan = float("nan")
    pl.DataFrame({"f": [nan, nan, nan, 1.5, 1.5, 2.0, None, None]}).write_parquet(
        pytester.path / "f.parquet")
    pytester.makeconftest("""
import pandas as pd
import polars as pl
import pytest

@pytest.fixture
def eager():
    return pd.read_parquet("f.parquet")

@pytest.fixture
def lazy():
    return pl.scan_parquet("f.parquet")
""")
    checks = "".join(f"""
[tool.mlfunnel.data.{name}]
dataset = {source}
columns.f = {{ unique = true }}
""" for name, source in (("file", '"f.parquet"'), ("eager", '{ fixture = "eager" }'),
                         ("lazy", '{ fixture = "lazy" }')))
    _, criteria = run(pytester, checks)
    for name in ("file", "eager", "lazy"):
        assert criteria[f"data::{name}::f.unique"]["message"] == (
            "f: 1 repeated value (2 distinct among 3 non-null), expected unique; e.g. 1.5"), name

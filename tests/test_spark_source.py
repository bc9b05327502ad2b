"""Spark sources: a catalog table and a PySpark frame, aggregated by Spark SQL in the session.

The engine matrix (test_engine_matrix.py) checks the answers against every other engine;
these tests check what is particular to Spark: where the session comes from, what a user sees
when pyspark, the session or the table is missing, and that pyspark is never imported for a
run without a Spark source.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import engine_matrix
import pytest

for _module in ("duckdb", "narwhals", "pyarrow", "pandas", "pyspark.sql"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module)

CHECK = """
[tool.mlfunnel.data.events]
dataset = {source}
rows = ">= 3"
columns.amount = {{ nulls = "== 0", max = 100 }}
"""


@pytest.fixture
def spark(spark_session: Any) -> Any:
    return spark_session


@pytest.fixture
def events_table(spark: Any, tmp_path: Path) -> Any:
    """``spark_catalog.default.<name>``: four rows, one amount above 100."""
    name = f"events_{tmp_path.name[-12:].replace('-', '_').lower()}"
    frame = spark.createDataFrame([(1, 10.0), (2, 20.5), (3, 130.0), (4, 7.0)],
                                  "id bigint, amount double")
    frame.write.mode("overwrite").option("path", str(tmp_path / "events")).saveAsTable(
        f"default.{name}")
    yield f"spark_catalog.default.{name}"
    spark.sql(f"DROP TABLE IF EXISTS default.{name}")


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def test_a_catalog_table_is_aggregated_by_spark_sql(pytester: pytest.Pytester,
                                                    events_table: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    pytester.makepyprojecttoml(CHECK.format(source=f'{{ spark = "{events_table}" }}'))
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*amount: max 130, expected <= 100; e.g. 130*"])
    assert criteria(pytester)["rows"]["observed"] == 4
    queries = [line.split("\t") for line in log.read_text().splitlines()]
    aggregate = [q for q in queries if q[1] == "aggregate"]
    # one pass: every aggregate of the source in one Spark SQL SELECT, backtick-quoted
    assert len(aggregate) == 1
    assert aggregate[0][2] == f"spark {events_table}"
    table = ".".join(f"`{part}`" for part in events_table.split("."))
    assert aggregate[0][3].startswith("SELECT count(*), ") and f"FROM {table} AS t" in \
        aggregate[0][3]


def test_a_conftest_fixture_gives_the_session(pytester: pytest.Pytester, events_table: str
                                              ) -> None:
    pytester.makeconftest("""
import pytest
import engine_matrix

@pytest.fixture(scope="session")
def mlfunnel_spark_session():
    engine_matrix.RUNNING["asked"] = True
    return engine_matrix.RUNNING["spark"]
""")
    engine_matrix.RUNNING.pop("asked", None)
    pytester.makepyprojecttoml(CHECK.format(source=f'{{ spark = "{events_table}" }}'))
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert engine_matrix.RUNNING.pop("asked") is True


def test_a_pyspark_frame_from_a_fixture_runs_in_spark_sql_and_joins_a_table_there(
        pytester: pytest.Pytester, events_table: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    pytester.makeconftest("""
import pytest
import engine_matrix

@pytest.fixture(scope="session")
def orders():
    spark = engine_matrix.RUNNING["spark"]
    return spark.createDataFrame([(10, 1), (11, 2), (12, 9)], "order_id bigint, id bigint")
""")
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.data.orders]
dataset = {{ fixture = "orders" }}
rows = "== 3"
join = {{ dataset = {{ spark = "{events_table}" }}, on = "id", match = ">= 90%" }}
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*66.67% of rows*"])
    purposes = [line.split("\t")[1] for line in log.read_text().splitlines()]
    assert "join" in purposes and "join keys" not in purposes  # one query in Spark


def test_a_missing_table_names_the_table_and_the_current_schema(
        pytester: pytest.Pytester, spark: Any) -> None:
    pytester.makepyprojecttoml(CHECK.format(source='{ spark = "default.no_such_events" }'))
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(failed=3)
    assert {c["status"] for c in criteria(pytester).values()} == {"error"}
    result.stdout.fnmatch_lines([
        "*spark default.no_such_events: no table or view default.no_such_events in the "
        "SparkSession's catalog (current catalog and schema: spark_catalog.default)*"])


def test_config_mistakes_in_a_spark_source_name_the_key(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(CHECK.format(source='{ spark = "db.events", table = "x" }'))
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines([
        "*pyproject.toml: tool.mlfunnel.data.events.dataset: table does not go with spark (a "
        "table of the SparkSession's catalog: { spark = \"catalog.schema.table\" })*"])


def test_without_pyspark_a_spark_source_says_how_to_install_it(
        pytester: pytest.Pytester) -> None:
    # a process where pyspark cannot be imported, as on a machine without it
    pytester.makeconftest("import sys\nsys.modules['pyspark'] = None\n")
    pytester.makepyprojecttoml(CHECK.format(source='{ spark = "default.events" }'))
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(failed=3)
    assert ("spark default.events: a spark source needs pyspark, which is not installed: pip "
            "install 'pytest-mlfunnel[spark]' (a local session also needs Java 17)"
            in result.stdout.lines)


def test_without_a_session_a_spark_source_says_where_to_start_one(
        pytester: pytest.Pytester) -> None:
    engine_matrix.require("pyspark")
    pytester.makepyprojecttoml(CHECK.format(source='{ spark = "default.events" }'))
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*spark default.events: no active SparkSession: start one before the check runs, e.g. "
        "in a session-scoped fixture named mlfunnel_spark_session in conftest.py that "
        "returns it*"])


def test_a_run_without_a_spark_source_never_imports_pyspark(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(conftest="""
import sys
from pathlib import Path

def pytest_sessionfinish(session):
    Path("imported.txt").write_text(" ".join(sorted(
        m for m in ("pyspark", "py4j") if m in sys.modules)) or "none")
""")
    (pytester.path / "events.csv").write_text("id,amount\n1,10\n2,20\n3,30\n")
    pytester.makepyprojecttoml(CHECK.format(source='"events.csv"'))
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=3)
    assert (pytester.path / "imported.txt").read_text() == "none"


def test_the_data_sources_page_spark_example_runs_in_a_session_of_its_own(
        pytester: pytest.Pytester) -> None:
    engine_matrix.require("pyspark")
    page = (Path(__file__).parent.parent / "docs" / "data-sources.md").read_text()
    section = page.split("## Spark and Databricks", 1)[1]
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    conftest = section.split("```python\n", 1)[1].split("```", 1)[0]
    # the table the example reads, written when the run starts (the example's own fixture
    # then gets the same session back from getOrCreate)
    pytester.makeconftest(conftest + """

def pytest_sessionstart(session):
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false") \\
        .getOrCreate()
    spark.createDataFrame([(1, 12.5), (2, 80.0), (3, 1500.0)], "id bigint, amount double") \\
        .write.saveAsTable("default.events")
""")
    pytester.makepyprojecttoml(toml)
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*amount: max 1500, expected <= 1000*"])


def test_the_spark_bench_runs_at_a_small_size(tmp_path: Path) -> None:
    engine_matrix.require("pyspark")
    folder = tmp_path / "bench"
    shutil.copytree(Path(__file__).parent.parent / "bench", folder,
                    ignore=shutil.ignore_patterns("data", ".venv*", "__pycache__"))
    result = subprocess.run([sys.executable, str(folder / "spark.py"), "--rows", "5000",
                             "--repeat", "1"], capture_output=True, text=True, timeout=300,
                            cwd=folder)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("5,000 rows x 7 columns · pyspark local[2] · median of 1 rounds")
    assert "load average" in lines[0]
    measured = [line for line in lines if "funnel pass (Spark SQL)" in line]
    assert len(measured) == 2 and all("target <= 1.3x" in line for line in measured)


def test_a_spark_connect_session_is_aggregated_by_spark_sql_like_a_classic_one(
        pytester: pytest.Pytester) -> None:
    """A Spark Connect session (``SparkSession.builder.remote``): a local Connect server in a
    process of its own (it would turn later sessions of this process into Connect ones),
    reading a fixture's frame and a temporary view by name, in one aggregate query each."""
    engine_matrix.require("pyspark")
    pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect]")
    pytester.makeconftest("""
import pytest
from pyspark.sql import SparkSession

@pytest.fixture(scope="session")
def mlfunnel_spark_session():
    spark = SparkSession.builder.remote("local[2]") \\
        .config("spark.sql.shuffle.partitions", "2").getOrCreate()
    assert type(spark).__module__.startswith("pyspark.sql.connect")
    spark.createDataFrame([(1, 10.0), (2, 20.5), (3, 130.0), (4, 7.0)],
                          "id bigint, amount double").createOrReplaceTempView("events")
    yield spark
    spark.stop()

@pytest.fixture(scope="session")
def orders(mlfunnel_spark_session):
    return mlfunnel_spark_session.createDataFrame([(10, 1), (11, 2), (12, 9)],
                                                  "order_id bigint, id bigint")
""")
    pytester.makepyprojecttoml(CHECK.format(source='{ spark = "events" }') + """
[tool.mlfunnel.data.orders]
dataset = { fixture = "orders" }
rows = "== 3"
columns.order_id = { unique = true }
join = { dataset = { spark = "events" }, on = "id", match = ">= 90%" }
""")
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider",
                                           "--funnel-json", "report.json", timeout=300)
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(["*amount: max 130, expected <= 100; e.g. 130*",
                                 "*66.67% of rows*"])
    data = json.loads((pytester.path / "report.json").read_text())
    observed = {c["id"].split("::", 1)[1]: c["observed"] for g in data["gates"]
                for c in g["criteria"]}
    assert observed["data::events::rows"] == 4 and observed["data::orders::rows"] == 3


def test_drift_of_a_spark_frame_bins_infinite_values_like_duckdb(
        pytester: pytest.Pytester, spark: Any) -> None:
    values = [float("inf"), float("-inf"), float("nan"), None, *[float(i) for i in range(8)]]
    engine_matrix.RUNNING["inf_frame"] = spark.createDataFrame(
        [(v,) for v in values], "score double")
    pytester.makeconftest("""
import pytest
import engine_matrix

@pytest.fixture(scope="session")
def scores():
    return engine_matrix.RUNNING["inf_frame"]
""")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"score": values}), pytester.path / "scores.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.maintenance.spark]
drift = { reference = "scores.parquet", current = { fixture = "scores" } }
expect = { psi = "<= 0.01", ks = "<= 0.01" }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    found = criteria(pytester)
    assert found["psi"]["status"] == "passed", found["psi"]["message"]
    assert found["ks"]["status"] == "passed", found["ks"]["message"]
    result.assert_outcomes(passed=2)


@pytest.fixture
def ansi(spark: Any) -> Any:
    """ANSI mode on (Spark 4's default) for one test, the session's own setting restored."""
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "true")
    yield spark
    spark.conf.set("spark.sql.ansi.enabled", before)


def test_a_view_failing_at_run_time_is_one_line_without_the_java_stack(
        pytester: pytest.Pytester, ansi: Any) -> None:
    ansi.sql("CREATE OR REPLACE TEMP VIEW ratios AS SELECT id, 10 / (id - id) AS ratio "
             "FROM range(4)")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.ratios]
dataset = { spark = "ratios" }
columns.ratio = { max = 3 }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "spark ratios: [DIVIDE_BY_ZERO] Division by zero. Use `try_divide` to tolerate "
        "divisor being 0 and return NULL instead. If necessary set \"spark.sql.ansi.enabled\" "
        "to \"false\" to bypass this error. SQLSTATE: 22012"])
    # pyspark logs each error it raises, with the JVM's stack, on a handler of its own
    output = result.stdout.str() + result.stderr.str()
    assert "org.apache.spark" not in output and "SQLQueryContextLogger" not in output
    assert "Captured stderr" not in output


def test_duplicate_rows_and_unique_count_a_map_column_as_duckdb_does(
        pytester: pytest.Pytester, spark: Any) -> None:
    # Spark refuses to hash a map (equal maps may hash apart): its entries, in their order,
    # stand for it, as DuckDB compares maps; a map inside a struct or an array too
    engine_matrix.RUNNING["map_frame"] = spark.sql("""
SELECT * FROM VALUES
  (map('a', 1), named_struct('m', map('k', 1.5)), array(map('x', 1))),
  (map('a', 1), named_struct('m', map('k', 1.5)), array(map('x', 1))),
  (map('a', 1, 'b', 2), named_struct('m', map('k', 2.0)), array(map('x', 1))),
  (map('b', 2, 'a', 1), named_struct('m', map('k', 2.0)), array(map('x', 2))),
  (NULL, NULL, NULL) AS t(tags, info, items)""")
    pytester.makeconftest("""
import pytest
import engine_matrix

@pytest.fixture(scope="session")
def tagged():
    return engine_matrix.RUNNING["map_frame"]
""")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.tagged]
dataset = { fixture = "tagged" }
duplicates = "== 0"
columns.tags = { unique = true }
columns.info = { unique = true }
columns.items = { unique = true }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    found = criteria(pytester)
    assert {name: c["status"] for name, c in found.items()} == {
        "duplicates": "failed", "tags.unique": "failed", "info.unique": "failed",
        "items.unique": "failed"}, [c["message"] for c in found.values()]
    result.stdout.fnmatch_lines([
        "duplicates: 1 duplicated row (20% of 5 rows), expected == 0",
        "tags: 1 repeated value (3 distinct among 4 non-null), expected unique; "
        "e.g. '{\"a\":1}'",
        "info: 2 repeated values (2 distinct among 4 non-null), expected unique; e.g. *",
        "items: 2 repeated values (2 distinct among 4 non-null), expected unique; "
        "e.g. '[{\"x\":1}]'"])


def test_a_database_error_under_a_jdbc_frame_names_its_cause(
        pytester: pytest.Pytester, spark: Any, tmp_path: Path) -> None:
    # a frame read over JDBC (Derby, which Spark ships) whose query fails only when rows come:
    # py4j's first line ("An error occurred while calling o123.collectToPython.") says nothing
    url = f"jdbc:derby:memory:{tmp_path.name};create=true"
    # Derby writes its log into the working directory unless told where, when it starts
    spark.sparkContext._jvm.java.lang.System.setProperty(  # type: ignore[union-attr]
        "derby.stream.error.file", str(tmp_path / "derby.log"))
    derby = {"driver": "org.apache.derby.iapi.jdbc.AutoloadedDriver"}
    spark.createDataFrame([(1, 2.0), (0, 3.0)], "n int, amount double").write.jdbc(
        url, "app.amounts", properties=derby)
    engine_matrix.RUNNING["jdbc_frame"] = spark.read.format("jdbc").options(
        url=url, query='SELECT "amount" / "n" AS ratio FROM app.amounts', **derby).load()
    pytester.makeconftest("""
import pytest
import engine_matrix

@pytest.fixture(scope="session")
def ratios():
    return engine_matrix.RUNNING["jdbc_frame"]
""")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.ratios]
dataset = { fixture = "ratios" }
columns.RATIO = { max = 3 }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "fixture 'ratios': ERROR 22012: Attempt to divide by zero."])
    assert "An error occurred while calling" not in result.stdout.str()


def test_a_python_udf_failing_in_a_frame_names_the_python_error(
        pytester: pytest.Pytester, spark: Any) -> None:
    from pyspark.sql.functions import udf

    @udf("double")
    def checked(amount: float) -> float:
        if amount > 100:
            raise ValueError(f"amount {amount} out of range\nsee the runbook")
        return amount

    engine_matrix.RUNNING["udf_frame"] = spark.createDataFrame(
        [(10.0,), (130.0,)], "amount double").select(checked("amount").alias("amount"))
    pytester.makeconftest("""
import pytest
import engine_matrix

@pytest.fixture(scope="session")
def checked():
    return engine_matrix.RUNNING["udf_frame"]
""")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.checked]
dataset = { fixture = "checked" }
columns.amount = { max = 100 }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "fixture 'checked': a Python function in Spark raised ValueError: amount 130.0 out of "
        "range"])
    assert "An exception was thrown from the Python worker" not in result.stdout.str()


def test_a_sampled_effect_reads_the_same_rows_in_any_partitioning_and_on_duckdb_and_polars(
        pytester: pytest.Pytester, spark: Any) -> None:
    # a sample numbered in the order Spark reads the rows changed with the partitioning: one
    # partition and five gave two p-values, and DuckDB on the same Parquet file a third
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(5)
    period = ["before" if i % 2 else "after" for i in range(300)]
    values = [round(float(v) + (0.6 if p == "after" else 0.0), 1)
              for v, p in zip(rng.normal(10, 2, 300), period, strict=True)]
    values[:6] = [float("nan"), None, None, 9.5, 9.5, 9.5]  # NaN, nulls and ties
    period[10] = None  # type: ignore[call-overload]
    frame = pl.DataFrame({"period": period, "minutes": values})
    frame.write_parquet(pytester.path / "kpi.parquet")
    rows = list(frame.iter_rows())
    engine_matrix.RUNNING["kpi_one"] = spark.createDataFrame(
        rows, "period string, minutes double").coalesce(1)
    engine_matrix.RUNNING["kpi_five"] = spark.createDataFrame(
        rows[::-1], "period string, minutes double").repartition(5)
    pytester.makeconftest("""
import polars as pl
import pytest
import engine_matrix

@pytest.fixture(scope="session")
def kpi_one():
    return engine_matrix.RUNNING["kpi_one"]

@pytest.fixture(scope="session")
def kpi_five():
    return engine_matrix.RUNNING["kpi_five"]

@pytest.fixture(scope="session")
def kpi_lazy():
    return pl.scan_parquet("kpi.parquet").sort("minutes")
""")
    sources = {"parquet": '"kpi.parquet"', "lazy": '{ fixture = "kpi_lazy" }',
               "one": '{ fixture = "kpi_one" }', "five": '{ fixture = "kpi_five" }'}
    pytester.makepyprojecttoml("".join(f"""
[tool.mlfunnel.effectiveness.{name}]
effect = {source}
metric = "minutes"
by = "period"
expect = "increase"
test = "bootstrap"
max_rows = 120
seed = 7
""" for name, source in sources.items()))
    pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json", "report.json")
    data = json.loads((pytester.path / "report.json").read_text())
    found = {c["check"]: (c["extra"]["p_value"], c["extra"]["n_before"], c["extra"]["n_after"],
                          c["message"]) for g in data["gates"]
             for c in g["criteria"]}
    assert "bootstrap on a sample of 120 of 300 rows (max_rows 120, seed 7)" in found["one"][3]
    assert found["five"] == found["one"]
    assert found["parquet"] == found["one"]
    assert found["lazy"] == found["one"]


@pytest.fixture
def new_york_session_in_tokyo(spark: Any) -> Any:
    """The session's time zone New York and this process's Tokyo, as on a laptop; both
    restored after."""
    import os
    import time

    before_session = spark.conf.get("spark.sql.session.timeZone")
    before_process = os.environ.get("TZ")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield spark
    spark.conf.set("spark.sql.session.timeZone", before_session)
    if before_process is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = before_process
    time.tzset()


def test_timestamps_are_compared_and_shown_in_utc_whatever_the_time_zones(
        pytester: pytest.Pytester, new_york_session_in_tokyo: Any) -> None:
    # the bound '2021-01-01' was read in the session's zone (05:00 UTC), so rows after
    # midnight UTC were shown as offending; the values came back in the process's zone
    engine_matrix.RUNNING["stamps"] = new_york_session_in_tokyo.sql("""
SELECT CAST(t AS TIMESTAMP) AS ts, CAST(replace(replace(t, 'T', ' '), 'Z', '') AS TIMESTAMP_NTZ)
  AS wall FROM VALUES ('2020-12-31T23:00:00Z'), ('2021-01-01T00:00:00Z'),
  ('2021-01-01T02:00:00Z'), ('2024-12-31T23:30:00Z') AS v(t)""")
    pytester.makeconftest("""
import pytest
import engine_matrix

@pytest.fixture(scope="session")
def stamps():
    return engine_matrix.RUNNING["stamps"]
""")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.stamps]
dataset = { fixture = "stamps" }
columns.ts = { min = "2021-01-01", max = "2024-12-31T23:00:00+00:00" }
columns.wall = { min = "2021-01-01", max = "2024-12-31T23:00:00" }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines([
        "ts: min 2020-12-31 23:00:00, expected >= 2021-01-01; e.g. 2020-12-31 23:00:00",
        "ts: max 2024-12-31 23:30:00+00:00, expected <= 2024-12-31T23:00:00+00:00; e.g. "
        "2024-12-31 23:30:00",
        "wall: min 2020-12-31 23:00:00, expected >= 2021-01-01; e.g. 2020-12-31 23:00:00",
        "wall: max 2024-12-31 23:30:00, expected <= 2024-12-31T23:00:00; e.g. 2024-12-31 "
        "23:30:00"], consecutive=False)


def test_a_frame_of_a_stopped_session_says_the_session_was_stopped(
        pytester: pytest.Pytester) -> None:
    engine_matrix.require("pyspark")
    pytester.makeconftest("""
import pytest
from pyspark.sql import SparkSession

@pytest.fixture(scope="session")
def mlfunnel_spark_session():
    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false") \\
        .getOrCreate()
    spark.stop()  # stopped too early, by mistake
    return spark

@pytest.fixture(scope="session")
def events(mlfunnel_spark_session):
    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false") \\
        .getOrCreate()
    frame = spark.createDataFrame([(1, 2.0)], "id bigint, amount double")
    spark.stop()
    return frame
""")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.events]
dataset = { fixture = "events" }
rows = ">= 1"
[tool.mlfunnel.data.table]
dataset = { spark = "default.events" }
rows = ">= 1"
""")
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(failed=2)
    stopped = ("the SparkSession was stopped before the check ran: keep it open until the run "
               "ends (a session-scoped fixture that stops it after yield)")
    result.stdout.fnmatch_lines([f"fixture 'events': {stopped}",
                                 f"spark default.events: {stopped}"], consecutive=False)
    assert "NullPointerException" not in result.stdout.str()

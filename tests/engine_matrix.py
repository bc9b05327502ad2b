"""The engine matrix: one table written into every engine a check can read.

``conftest.py`` parametrizes the ``matrix_engine`` fixture over ``ENGINES`` (``--engines`` widens or
narrows it); a test asks ``matrix_engine.source(pytester, "events", frame)`` for the TOML of a source
holding that polars frame in that engine, then runs pytest on it. Engines that need a process
of their own (a JVM for Spark, a Dask scheduler) are started once per test process by the
session fixtures in ``conftest.py`` and kept in ``RUNNING``; pytester's in-process runs reach
them through this module, which they do not re-import.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: every engine, in the order runs list them; the first is the reference the others match
ENGINES = ("parquet", "sqlite", "postgres", "duckdb-sqlalchemy", "polars-lazy", "dask", "ibis",
           "sqlframe", "pyspark", "spark-table")
REFERENCE = ENGINES[0]
#: what each engine imports (a missing one skips, and fails under CI)
MODULES = {"postgres": ("sqlalchemy", "psycopg"), "duckdb-sqlalchemy": ("sqlalchemy",
                                                                       "duckdb_engine"),
           "polars-lazy": ("polars",), "dask": ("dask.dataframe", "distributed"),
           "ibis": ("ibis",), "sqlframe": ("sqlframe.duckdb",), "pyspark": ("pyspark.sql",),
           "spark-table": ("pyspark.sql",)}
#: what a fixture frame of each frame engine is built with, from a Parquet file's path
FRAME_CODE = {
    "polars-lazy": "import polars as pl\n    return pl.scan_parquet(path)",
    "dask": "import dask.dataframe as dd\n    return dd.read_parquet(path)",
    "ibis": "import ibis\n    return ibis.duckdb.connect().read_parquet(path)",
    "sqlframe": ("from sqlframe.duckdb import DuckDBSession\n"
                 "    return DuckDBSession.builder.getOrCreate().read.parquet(path)"),
    "pyspark": "import engine_matrix\n    return engine_matrix.RUNNING['spark'].read.parquet(path)",
}
#: sessions and clients started once per test process (``conftest.py`` fills it)
RUNNING: dict[str, Any] = {}
SPARK_START_TIMEOUT = 180.0


def require(engine: str) -> None:
    """Import what ``engine`` needs: skip without it, but fail under CI, which installs it
    (``.ci/run`` installs Java 17 too)."""
    missing = None
    for module in MODULES.get(engine, ()):
        try:
            __import__(module)
        except ImportError as exc:
            missing = f"{module} is not installed ({exc}); the test extra installs it"
            break
    if missing is None and engine in ("pyspark", "spark-table") and not (
            shutil.which("java") or os.environ.get("JAVA_HOME")):
        missing = "no Java: Spark needs Java 17 (apt-get install openjdk-17-jre-headless)"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"engine {engine}: {missing}")
        pytest.skip(f"engine {engine}: {missing}")


def start_spark(warehouse: Path) -> Any:
    """A local[2] SparkSession with small settings, started within SPARK_START_TIMEOUT.

    The JVM starts in a thread so the wait is bounded; the session is then made in this
    thread, where it becomes the active session a ``spark`` source finds."""
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    settings = {"spark.master": "local[2]", "spark.app.name": "mlfunnel-tests",
                "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
                "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                "spark.sql.session.timeZone": "UTC", "spark.sql.warehouse.dir": str(warehouse),
                "spark.driver.memory": "1g"}
    # Python UDFs run in workers of this interpreter (pyspark's default is python3 on PATH)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = SparkConf().setAll(list(settings.items()))
    _bounded(lambda: SparkContext.getOrCreate(conf), SPARK_START_TIMEOUT, "Spark (local[2])")
    return SparkSession.builder.config(map=settings).getOrCreate()


def start_dask() -> Any:
    """A distributed LocalCluster of two single-threaded workers, as the default scheduler of
    this process. The workers are threads of this process: worker processes forked from a
    test process (pytester, xdist) were seen to die and leave a compute waiting forever."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                           dashboard_address=None, silence_logs=40)
    return Client(cluster, timeout="60s")


def _bounded(start: Callable[[], Any], timeout: float, what: str) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = start()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{what} did not start within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class Engine:
    """One engine of the matrix: puts a polars frame where that engine reads it."""

    def __init__(self, name: str, postgres_url: str | None = None) -> None:
        self.name = name
        self.postgres_url = postgres_url
        self._fixtures: list[str] = []
        self._cleanups: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"Engine({self.name})"

    def source(self, pytester: pytest.Pytester, name: str, frame: Any) -> str:
        """The inline TOML source of ``frame`` stored as ``name`` in this engine."""
        root = pytester.path
        parquet = root / "data" / f"{name}.parquet"
        parquet.parent.mkdir(exist_ok=True)
        frame.write_parquet(parquet)
        if self.name == "parquet":
            return f'"data/{name}.parquet"'
        if self.name == "sqlite":
            _to_sqlite(root / "data" / "tables.db", name, frame)
            return f'{{ url = "sqlite:///data/tables.db", table = "{name}" }}'
        if self.name == "duckdb-sqlalchemy":
            import duckdb

            with duckdb.connect(str(root / "data" / "tables.duckdb")) as con:
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet(?)",
                            [str(parquet)])
            return f'{{ url = "duckdb:///data/tables.duckdb", table = "{name}" }}'
        if self.name == "postgres":
            assert self.postgres_url is not None
            table = self._to_postgres(name, frame)
            return f'{{ url = "{self.postgres_url}", table = "{table}" }}'
        if self.name == "spark-table":
            table = f"mlfunnel_{name}_{uuid.uuid4().hex[:8]}"
            spark = RUNNING["spark"]
            spark.sql(f"CREATE TABLE spark_catalog.default.{table} USING parquet "
                      f"LOCATION '{parquet.parent / (table + '.dir')}' AS SELECT * FROM "
                      f"parquet.`{parquet}`")
            self._cleanups.append(lambda: spark.sql(f"DROP TABLE IF EXISTS "
                                                    f"spark_catalog.default.{table}"))
            return f'{{ spark = "spark_catalog.default.{table}" }}'
        self._fixtures.append(f"""
@pytest.fixture(scope="session")
def {name}_frame():
    path = {str(parquet)!r}
    {FRAME_CODE[self.name]}
""")
        pytester.makeconftest("import pytest\n" + "".join(self._fixtures))
        return f'{{ fixture = "{name}_frame" }}'

    def _to_postgres(self, name: str, frame: Any) -> str:
        import sqlalchemy

        assert self.postgres_url is not None
        schema = f"mlfunnel_{uuid.uuid4().hex[:10]}"
        db = sqlalchemy.create_engine(self.postgres_url.replace("postgresql://",
                                                                "postgresql+psycopg://", 1))
        types = {"Int64": "BIGINT", "Float64": "DOUBLE PRECISION", "String": "TEXT",
                 "Boolean": "BOOLEAN", "Datetime(time_unit='us', time_zone=None)": "TIMESTAMP"}
        columns = ", ".join(f'"{c}" {types[str(t)]}' for c, t in frame.schema.items())
        marks = ", ".join(f":{c}" for c in frame.columns)
        with db.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            conn.exec_driver_sql(f"CREATE TABLE {schema}.{name} ({columns})")
            conn.execute(sqlalchemy.text(f"INSERT INTO {schema}.{name} VALUES ({marks})"),
                         list(frame.iter_rows(named=True)))

        def drop() -> None:
            with db.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            db.dispose()
        self._cleanups.append(drop)
        return f"{schema}.{name}"

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            cleanup()


def _to_sqlite(path: Path, name: str, frame: Any) -> None:
    types = {"Int64": "INTEGER", "Float64": "REAL", "String": "TEXT", "Boolean": "BOOLEAN"}
    declared = ", ".join(f'"{c}" {types.get(str(t), "DATETIME")}'
                         for c, t in frame.schema.items())
    rows = [tuple(v.isoformat(sep=" ") if hasattr(v, "isoformat") else
                  None if isinstance(v, float) and v != v else v for v in row)
            for row in frame.iter_rows()]
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {name} ({declared})")
        conn.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(frame.columns))})",
                         rows)
    conn.close()

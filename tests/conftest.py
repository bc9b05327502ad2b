"""Shared test fixtures: real servers and files only."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from typing import Any

import engine_matrix
import pytest

#: Extension modules (DuckDB, pyarrow, pandas' Arrow types ...) must not be imported twice in
#: one process, and pytester's in-process runs drop the modules first imported during a run.
EXTENSION_MODULES = ("duckdb", "narwhals", "numpy", "pyarrow", "pandas", "polars", "pydantic",
                     "sqlalchemy", "prometheus_client",
                     # pydantic's models and the constraint types (Ge, Le ...) it recognises by
                     # class: loaded anew by a later run, a Field(ge=2) lost its bound
                     "annotated_types", "pydantic.main", "pydantic.fields",
                     # registers pandas' Arrow types, first imported by a Parquet write
                     "pandas.core.arrays.arrow.extension_types", "pyarrow.pandas_compat",
                     # the namespace the frames engine checks frames against: loaded anew by
                     # a later run, a pandas frame was no longer its DataFrame and went to
                     # the lazy engine, which reads case-twin columns another way
                     "narwhals.stable.v2")


def import_once(*modules: str) -> None:
    """Import ``modules`` now, outside any pytester run, so every in-process run finds them in
    the snapshot it restores (a missing one fails the test that needs it, on its own)."""
    for module in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


@pytest.fixture(scope="session", autouse=True)
def _extension_modules_imported_once() -> None:
    """Before the first test, not at collection: ``--collect-only`` and a run of one light
    test file do not pay for pandas, polars or SQLAlchemy."""
    import_once(*EXTENSION_MODULES)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server `.ci/run` starts (`eval "$(bash .ci/postgres.sh)"` locally)."""
    url = os.environ.get("MLFUNNEL_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("MLFUNNEL_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL")
        pytest.skip("no PostgreSQL server: run eval \"$(bash .ci/postgres.sh)\"")
    return url


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engines", default=None,
        help="Engines of the engine matrix (tests/engine_matrix.py), comma-separated, or "
             f"'all' ({', '.join(engine_matrix.ENGINES)}). Default: every engine for the "
             "cases marked engine_core, the reference engine (parquet) for the rest.")
    parser.addoption(
        "--xdist-variants", action="store_true", default=False,
        help="Run every test that takes xdist_args under -n 2 as well (CI does); without it "
             "only the tests marked xdist_matters get their xdist variant.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "xdist_matters(without_xdist=False): xdist is the point of this test "
                   "(report merging, one pass per process): its -n 2 variant always runs, and "
                   "with without_xdist=True a -p no:xdist variant too")
    config.addinivalue_line(
        "markers", "engine_core: a core case of the engine matrix: it runs on every engine "
                   "unless --engines says otherwise")


def _matrix_engines(config: pytest.Config, core: bool) -> list[str]:
    given = config.getoption("engines")
    if not given:
        return list(engine_matrix.ENGINES) if core else [engine_matrix.REFERENCE]
    if given.strip() == "all":
        return list(engine_matrix.ENGINES)
    names = [n.strip() for n in given.split(",") if n.strip()]
    unknown = [n for n in names if n not in engine_matrix.ENGINES]
    if unknown:
        raise pytest.UsageError(f"--engines: unknown engine {unknown[0]!r} (engines: "
                                f"{', '.join(engine_matrix.ENGINES)}, or all)")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``matrix_engine``: the engines of the matrix (see ``_matrix_engines``).
    ``xdist_args``: the extra pytest arguments of a run, ``[]`` and, where it matters or with
    ``--xdist-variants``, ``["-n", "2"]``; ``xdist_matters(without_xdist=True)`` adds
    ``["-p", "no:xdist"]`` (the plugin with pytest-xdist not loaded at all)."""
    if "matrix_engine" in metafunc.fixturenames:
        core = metafunc.definition.get_closest_marker("engine_core") is not None
        metafunc.parametrize("matrix_engine", _matrix_engines(metafunc.config, core),
                             indirect=True)
    if "xdist_args" not in metafunc.fixturenames:
        return
    matters = metafunc.definition.get_closest_marker("xdist_matters")
    variants = [pytest.param([], id="plain")]
    if matters is not None or metafunc.config.getoption("xdist_variants"):
        variants.append(pytest.param(["-n", "2"], id="xdist"))
    if matters is not None and matters.kwargs.get("without_xdist"):
        variants.append(pytest.param(["-p", "no:xdist"], id="no-xdist"))
    metafunc.parametrize("xdist_args", variants)


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local[2] SparkSession per test process, never one per test (a JVM takes seconds)."""
    engine_matrix.require("pyspark")
    session = engine_matrix.start_spark(tmp_path_factory.mktemp("spark-warehouse"))
    session.sparkContext.setLogLevel("ERROR")
    engine_matrix.RUNNING["spark"] = session
    yield session
    engine_matrix.RUNNING.pop("spark", None)
    session.stop()


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """One distributed LocalCluster per test process, the default scheduler while it runs."""
    engine_matrix.require("dask")
    client = engine_matrix.start_dask()
    engine_matrix.RUNNING["dask"] = client
    yield client
    engine_matrix.RUNNING.pop("dask", None)
    client.close()
    client.cluster.close()


@pytest.fixture
def matrix_engine(request: pytest.FixtureRequest) -> Iterator[engine_matrix.Engine]:
    """One engine of the matrix (parametrized by ``pytest_generate_tests``)."""
    name: str = request.param
    engine_matrix.require(name)
    postgres = request.getfixturevalue("postgres_url") if name == "postgres" else None
    if name in ("pyspark", "spark-table"):
        request.getfixturevalue("spark_session")
    if name == "dask":
        request.getfixturevalue("dask_client")
    found = engine_matrix.Engine(name, postgres)
    yield found
    found.close()

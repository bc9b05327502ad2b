"""Shared test fixtures: real servers and files only."""

from __future__ import annotations

import contextlib
import importlib
import os

import pytest

# pytester's in-process runs drop modules first imported during the run; extension modules
# (DuckDB, pyarrow, pandas' Arrow types) must not be imported twice in one process. Importing
# them here keeps them in the snapshot pytester restores.
for _module in ("duckdb", "narwhals", "numpy", "pyarrow", "pandas", "polars", "pydantic",
                "sqlalchemy", "prometheus_client"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module)


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
        "--xdist-variants", action="store_true", default=False,
        help="Run every test that takes xdist_args under -n 2 as well (CI does); without it "
             "only the tests marked xdist_matters get their xdist variant.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "xdist_matters(without_xdist=False): xdist is the point of this test "
                   "(report merging, one pass per process): its -n 2 variant always runs, and "
                   "with without_xdist=True a -p no:xdist variant too")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``xdist_args``: the extra pytest arguments of a run, ``[]`` and, where it matters or
    with ``--xdist-variants``, ``["-n", "2"]``; ``xdist_matters(without_xdist=True)`` adds
    ``["-p", "no:xdist"]`` (the plugin with pytest-xdist not loaded at all)."""
    if "xdist_args" not in metafunc.fixturenames:
        return
    matters = metafunc.definition.get_closest_marker("xdist_matters")
    variants = [pytest.param([], id="plain")]
    if matters is not None or metafunc.config.getoption("xdist_variants"):
        variants.append(pytest.param(["-n", "2"], id="xdist"))
    if matters is not None and matters.kwargs.get("without_xdist"):
        variants.append(pytest.param(["-p", "no:xdist"], id="no-xdist"))
    metafunc.parametrize("xdist_args", variants)

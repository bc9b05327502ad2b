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

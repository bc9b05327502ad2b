"""Shared test fixtures: real servers and files only."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server `.ci/run` starts (`eval "$(bash .ci/postgres.sh)"` locally)."""
    url = os.environ.get("MLFUNNEL_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("MLFUNNEL_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL")
        pytest.skip("no PostgreSQL server: run eval \"$(bash .ci/postgres.sh)\"")
    return url

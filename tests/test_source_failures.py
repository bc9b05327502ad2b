"""A source that fails is remembered for the session by what it reads, not by how it is shown.

Outputs show a URL with its user, password and query values masked, and a SQL source by its
database: two sources can look alike and read different things. The failure of one must
never be handed to the other.
"""

from __future__ import annotations

import sqlite3

import pytest
from live_server import LiveServer, live_server

__all__ = ["live_server"]


def test_two_metric_urls_told_apart_only_by_a_query_value_are_read_apart(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
funnel = ["deployment"]

[tool.mlfunnel.deployment.stalled]
metrics = {{ url = "{live_server.url}/slow?ms=3000", options = {{ timeout = "300 ms" }} }}
expect = {{ score = ">= 0.5" }}

[tool.mlfunnel.deployment.prompt]
metrics = {{ url = "{live_server.url}/slow?ms=0", options = {{ timeout = "300 ms" }} }}
expect = {{ score = ">= 0.5" }}
""")
    result = pytester.runpytest("--funnel", "-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*[[]tool.mlfunnel.deployment.stalled] score*",
        f"{live_server.url}/slow?ms=***: no answer within 300 ms",
        "PASSED pyproject.toml::deployment::prompt::score"])
    result.stdout.no_fnmatch_line("*see deployment::stalled::score*")


def test_two_queries_on_one_database_fail_apart(pytester: pytest.Pytester) -> None:
    with sqlite3.connect(pytester.path / "shop.db") as connection:
        connection.execute("create table orders (amount real)")
        connection.executemany("insert into orders values (?)", [(1.0,), (2.5,)])
    pytester.makepyprojecttoml("""
[tool.mlfunnel]
funnel = ["data"]

[tool.mlfunnel.data.typo]
dataset = { url = "sqlite:///shop.db", query = "select amount from order_lines" }
rows = ">= 1"

[tool.mlfunnel.data.orders]
dataset = { url = "sqlite:///shop.db", query = "select amount from orders" }
rows = ">= 2"
""")
    result = pytester.runpytest("--funnel", "-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*[[]tool.mlfunnel.data.typo] rows*",
        "sqlite:///shop.db: SQL error: no such table: order_lines",
        "PASSED pyproject.toml::data::orders::rows"])

"""pytest entry point of pytest-mlfunnel: options, the marker, and the switch.

PYTEST_DONT_REWRITE

Nothing heavy is imported here: pydantic, DuckDB and narwhals load only with ``--funnel``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mlfunnel.session import FunnelSession

funnel_session_key: pytest.StashKey[FunnelSession] = pytest.StashKey()

_ACTIVATING_OPTIONS = ("funnel_only", "funnel_require", "funnel_config", "funnel_json",
                       "funnel_html", "funnel_record", "funnel_no_regress")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_mlfunnel import hookspec

    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlfunnel", "ML funnel (pytest-mlfunnel)")
    group.addoption("--funnel", action="store_true", default=False,
                    help="Run the [tool.mlfunnel] criteria with the tests and print the funnel.")
    group.addoption("--funnel-only", action="store_true", default=False,
                    help="Run only funnel criteria and funnel-marked tests (implies --funnel).")
    group.addoption("--funnel-require", metavar="GATE", default=None,
                    help="Override 'require': the gate the project must reach, or 'none' to "
                         "only report.")
    group.addoption("--funnel-config", metavar="PATH", default=None,
                    help="Read [tool.mlfunnel] from this TOML file instead of pyproject.toml.")
    group.addoption("--funnel-json", metavar="PATH", default=None,
                    help="Write the JSON report (schema mlfunnel-report/1).")
    group.addoption("--funnel-html", metavar="PATH", default=None,
                    help="Write a self-contained HTML report.")
    group.addoption("--funnel-record", metavar="RELEASE", nargs="?", const="", default=None,
                    help="Append this run to the history; release defaults to the git tag at "
                         "HEAD, else the short commit.")
    group.addoption("--funnel-no-regress", action="store_true", default=False,
                    help="Fail when the stage reached is below the last recorded release's.")


def funnel_enabled(config: pytest.Config) -> bool:
    if config.getoption("funnel", False):
        return True
    return any(config.getoption(name, None) not in (None, False) for name in _ACTIVATING_OPTIONS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "funnel(gate, severity='block'): make this test a criterion of a funnel gate "
        "(pytest-mlfunnel).",
    )
    if not funnel_enabled(config):
        return
    from pytest_mlfunnel.session import FunnelSession

    session = FunnelSession.from_config(config)
    config.stash[funnel_session_key] = session
    config.pluginmanager.register(session, "mlfunnel-session")
    config.pluginmanager.register(session.services, "mlfunnel-services")
    config.pluginmanager.register(session.same_run_coverage, "mlfunnel-same-run-coverage")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(funnel_session_key, None)
    if session is not None:
        session.services.stop_all()
        config.pluginmanager.unregister(session.services)
        config.pluginmanager.unregister(session.same_run_coverage)
        config.pluginmanager.unregister(session)
        del config.stash[funnel_session_key]
        from pytest_mlfunnel import secrets

        secrets.clear()  # a later run in this process reads its own config
    metrics = sys.modules.get("pytest_mlfunnel.sources.metrics")
    if metrics is not None:  # a later run in this process registers its own readers
        metrics.READERS.forget_added()
    connections = sys.modules.get("pytest_mlfunnel.engines.connections")
    if connections is not None:  # loaded only if a database was read: close its connections
        connections.dispose_engines()


@pytest.fixture(scope="session")
def mlfunnel_service(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``mlfunnel_service("model")``: the URL of a ``[tool.mlfunnel.services]`` service."""
    session = request.config.stash.get(funnel_session_key, None)
    if session is None:
        pytest.fail("mlfunnel_service: the services of [tool.mlfunnel.services] run with "
                    "--funnel (or --funnel-only)", pytrace=False)
    return session.services.url_of


@pytest.fixture(scope="session")
def mlfunnel_spark_session() -> Any:
    """The SparkSession a ``{ spark = "catalog.schema.table" }`` source reads: the active one
    of this process, or None. A conftest.py fixture of this name overrides it (start the
    session there). pyspark is not imported here: a session exists only if it was."""
    if "pyspark.sql" not in sys.modules:
        return None
    return sys.modules["pyspark.sql"].SparkSession.getActiveSession()


def pytest_report_header(config: pytest.Config) -> Any:
    session = config.stash.get(funnel_session_key, None)
    return session.header() if session is not None else None

"""``coverage`` criteria that judge the run pytest-cov measures (``pytest --funnel --cov=pkg``).

pytest-cov erases its data file when the session starts and writes the run's combined data
only after the last test (on the xdist controller, after every worker has sent its part).
So a ``coverage`` criterion whose ``data_file`` is pytest-cov's data file is held back:

* serial: it is taken out of the run at collection (after ``-k``/``-m``) and run as an
  ordinary item once pytest-cov has combined its data -- our ``pytest_runtestloop`` wrapper
  is outside pytest-cov's;
* pytest-xdist: each worker takes the same criteria out and names them to the controller
  (``workeroutput``); the controller builds those items from the config file itself and runs
  them, the same way, after pytest-cov has combined the workers' data.

Their reports pass through the usual hooks, so the terminal, junit XML, the funnel verdict,
the JSON report and the exit code all come from the same evaluation. A check that names
another data file (or a Cobertura XML) is read where it is collected, as without pytest-cov.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.items import ConfigFile, CriterionItem
from pytest_mlfunnel.kinds.coverage import SAME_RUN_KEY

_OUTPUT_KEY = "mlfunnel_coverage_held"


def pytest_cov_data_file(config: pytest.Config) -> Path | None:
    """The data file pytest-cov writes in this run, or None when it does not measure it."""
    plugin = config.pluginmanager.get_plugin("_cov")
    if plugin is None or getattr(plugin, "_disabled", False):
        return None
    options = getattr(plugin, "options", None)
    if options is None or getattr(options, "no_cov", False):
        return None
    controller = getattr(plugin, "cov_controller", None)
    measuring = getattr(controller, "combining_cov", None) or getattr(controller, "cov", None)
    data_file = getattr(getattr(measuring, "config", None), "data_file", None)
    if data_file is None:
        # a worker starts measuring at session start; the config names the same file
        import coverage

        data_file = coverage.Coverage(config_file=getattr(options, "cov_config", True)
                                      ).config.data_file
    topdir = getattr(controller, "topdir", None) or config.invocation_params.dir
    return (Path(topdir) / data_file).resolve()


class SameRunCoverage:
    """Holds back the coverage criteria pytest-cov's data of this run decides."""

    def __init__(self, funnel: Any) -> None:
        self.funnel = funnel  # the FunnelSession (not imported: it imports this module)
        self.config = funnel.pytest_config
        self.is_worker = hasattr(self.config, "workerinput")
        self.held: list[pytest.Item] = []
        self.held_ids: list[str] = []
        self.data_file: Path | None = None

    def _judges_this_run(self, item: pytest.Item) -> bool:
        if not isinstance(item, CriterionItem) or item.entry.kind != "coverage":
            return False
        data_file = getattr(item.entry.config, "data_file", None)
        if not isinstance(data_file, str) or self.data_file is None:
            return False
        path = Path(data_file).expanduser()
        path = path if path.is_absolute() else self.funnel.rootdir / path
        return path.resolve() == self.data_file

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.data_file = pytest_cov_data_file(self.config)
        if self.data_file is not None:
            self.funnel.shared[SAME_RUN_KEY] = str(self.data_file)

    @pytest.hookimpl(trylast=True)  # after -k / -m deselection
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        if self.data_file is None or config.option.collectonly:
            return
        held = [item for item in items if self._judges_this_run(item)]
        if not held:
            return
        items[:] = [item for item in items if item not in held]
        if self.is_worker:
            config.workeroutput[_OUTPUT_KEY] = [item.nodeid for item in held]  # type: ignore[attr-defined]
        else:
            self.held = held

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        for nodeid in getattr(node, "workeroutput", {}).get(_OUTPUT_KEY, []):
            if nodeid not in self.held_ids:
                self.held_ids.append(nodeid)

    # No tryfirst: wrappers nest by registration. pytest-cov registers before pytest
    # configures (so its wrapper is inside ours: its data is combined when ours resumes), the
    # terminal reporter after us (so its final progress is written after our items).
    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        # held items still count as collected: progress, and no "no tests ran" exit
        session.testscollected += len(self.held)
        result = yield
        if self.is_worker or session.shouldfail or session.shouldstop:
            return result
        items = self.held
        if not items:
            items = self._build(session, self.held_ids)
            session.testscollected += len(items)  # xdist counted only what workers ran
        for index, item in enumerate(items):
            nextitem = items[index + 1] if index + 1 < len(items) else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail or session.shouldstop:
                break
        return result

    def _build(self, session: pytest.Session, nodeids: list[str]) -> list[pytest.Item]:
        """The xdist controller collects nothing: make the held criteria's items here."""
        if not nodeids:
            return []
        node = ConfigFile.from_parent(session, path=self.funnel.config.path)
        node.funnel = self.funnel
        wanted = set(nodeids)
        return [item for item in _items_of(node) if item.nodeid in wanted]


def _items_of(node: pytest.Collector) -> Iterator[pytest.Item]:
    for child in node.collect():
        if isinstance(child, pytest.Item):
            yield child
        elif isinstance(child, pytest.Collector):
            yield from _items_of(child)

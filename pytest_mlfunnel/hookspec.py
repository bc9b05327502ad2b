"""Hooks pytest-mlfunnel offers to other plugins and conftest.py files (always registered)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mlfunnel.report import Report


@pytest.hookspec
def pytest_mlfunnel_check_kinds() -> list[Any]:
    """Return extra check kinds: ``CheckKind`` subclasses (or instances).

    Each kind has a ``key`` (the config key only it has), a ``config_model`` (a pydantic
    model subclassing ``CheckConfig``) and a ``plan`` method returning criteria. A key that
    clashes with a registered kind is a usage error. Import only from
    ``pytest_mlfunnel.api``. The config is read before collection: implement this hook in
    the rootdir's ``conftest.py`` or in a plugin, not in a conftest.py of a subfolder.

    Example (in the rootdir's ``conftest.py`` or a plugin)::

        from pytest_mlfunnel.api import CheckConfig, CheckKind, Criterion, Outcome

        class GpuBudgetConfig(CheckConfig):
            gpu_hours: float

        class GpuBudgetKind(CheckKind[GpuBudgetConfig]):
            key = "gpu_hours"
            config_model = GpuBudgetConfig

            def plan(self, check, ctx):
                def evaluate(ev):
                    used = read_cluster_bill()
                    if used <= check.gpu_hours:
                        return Outcome.passed(used, f"<= {check.gpu_hours}")
                    return Outcome.failed(f"{used} GPU hours, budget {check.gpu_hours}", used)
                return [Criterion("gpu-hours", evaluate)]

        def pytest_mlfunnel_check_kinds():
            return [GpuBudgetKind]
    """
    return []


@pytest.hookspec
def pytest_mlfunnel_metric_readers() -> Mapping[str, Any]:
    """Return extra metrics readers: ``{key: reader}``.

    A key is a file suffix (``".csv"``) or a URL scheme (``"s3://"``); a reader takes the
    ``SourceSpec`` and the rootdir and returns a ``MetricSet`` (raise ``CriterionError`` with
    one line when it cannot). A key that is already registered is a usage error. Like a kind,
    a reader must be known before the config is read: implement this hook in the rootdir's
    ``conftest.py`` or in a plugin.

    Example (in the rootdir's ``conftest.py`` or a plugin)::

        from pytest_mlfunnel.api import MetricSet

        def read_metrics_csv(spec, rootdir):
            with spec.resolve_path(rootdir).open() as handle:
                rows = [line.split(",") for line in handle if line.strip()]
            return MetricSet({name: float(value) for name, value in rows}, spec.display())

        def pytest_mlfunnel_metric_readers():
            return {".csv": read_metrics_csv}
    """
    return {}


@pytest.hookspec
def pytest_mlfunnel_report(report: Report) -> None:
    """Receive the final report once per run, on the controller (notify, upload).

    ``report.to_dict()`` is the ``mlfunnel-report/1`` JSON document; ``report.verdict``
    has ``stage``, ``reached``, ``ok`` and ``line()``.

    Example::

        def pytest_mlfunnel_report(report):
            if not report.verdict.ok:
                post_to_chat(f"{report.project}: {report.verdict.line()}")
    """


@pytest.hookspec(firstresult=True)
def pytest_mlfunnel_release(config: pytest.Config) -> str | None:
    """Name the release this run belongs to; the first non-None answer wins.

    Without an answer the release is ``--funnel-record=RELEASE``, else the git tag at
    HEAD, else the short commit, else today's date.

    Example::

        def pytest_mlfunnel_release(config):
            return os.environ.get("CI_COMMIT_TAG")
    """

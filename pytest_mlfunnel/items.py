"""Collection tree: the config file -> one collector per gate -> per check -> criterion items.

An item evaluates its criterion and raises when it did not pass; the session decides the
final status (``funnel.final_status``) and the renderers describe the failure.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_mlfunnel import secrets
from pytest_mlfunnel.kinds.base import Criterion, EvalContext
from pytest_mlfunnel.outcome import (
    STATUSES,
    CriterionError,
    Outcome,
    SourceUnavailable,
    raised_at,
    source_failure_outcome,
    to_builtin,
)
from pytest_mlfunnel.render.failure import describe_failure
from pytest_mlfunnel.sources.failures import RUNNING

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from pytest_mlfunnel.config import CheckEntry, FunnelConfig


class FunnelPlan(Protocol):
    """What the collection tree needs from the run: the config and each check's criteria."""

    config: FunnelConfig
    rootdir: Path
    shared: dict[Any, Any]

    def plan(self, entry: CheckEntry) -> list[Criterion]: ...

    def evidence_of(self, kind: str) -> str: ...


class CriterionFailed(Exception):
    """Raised by a criterion item that did not pass; carries its outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class ConfigFile(pytest.File):
    """The TOML file holding ``[tool.mlfunnel]``: its children are the gates."""

    funnel: FunnelPlan

    def collect(self) -> Iterator[GateCollector]:
        for gate in self.funnel.config.funnel:
            if any(entry.gate == gate for entry in self.funnel.config.checks):
                yield GateCollector.from_parent(self, name=gate)

    def fixture_info(self, node: pytest.Collector, fixtures: tuple[str, ...]) -> Any:
        """The fixture closure of criteria asking for these fixtures: the same for every
        criterion under this file, so worked out once and shared, as pytest shares it between
        the cases of one parametrized test (thousands of criteria collect in linear time)."""
        found: dict[tuple[str, ...], Any] = self.__dict__.setdefault("_fixture_infos", {})
        if fixtures not in found:
            found[fixtures] = self.session._fixturemanager.getfixtureinfo(
                node, _callobj_for(fixtures), None)  # type: ignore[arg-type]
        return found[fixtures]


class GateCollector(pytest.Collector):
    def collect(self) -> Iterator[CheckCollector]:
        funnel = self.parent.funnel  # type: ignore[union-attr]
        for entry in funnel.config.checks:
            if entry.gate == self.name:
                node = CheckCollector.from_parent(self, name=entry.slug)
                node.entry = entry
                yield node


class CheckCollector(pytest.Collector):
    entry: CheckEntry

    def collect(self) -> Iterator[CriterionItem]:
        config_file: ConfigFile = self.parent.parent  # type: ignore[union-attr,assignment]
        funnel = config_file.funnel
        for criterion in funnel.plan(self.entry):
            yield CriterionItem.from_parent(
                self, name=criterion.name, entry=self.entry, criterion=criterion, funnel=funnel,
                fixtureinfo=config_file.fixture_info(self, criterion.fixtures))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, self.entry.line - 1 if self.entry.line else None, self.entry.key_path


@functools.lru_cache(maxsize=256)
def _callobj_for(fixtures: tuple[str, ...]) -> Any:
    """A function whose parameters are the fixture names, so pytest resolves them (one per
    set of names, shared by the items that ask for it: thousands of criteria collect fast)."""

    def criterion(**kwargs: Any) -> None:  # pragma: no cover - never called directly
        pass

    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in fixtures]
    criterion.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return criterion


class CriterionItem(pytest.Function):
    """One criterion. A ``pytest.Function`` so it can receive fixtures."""

    def __init__(self, *, entry: CheckEntry, criterion: Criterion, funnel: FunnelPlan,
                 **kwargs: Any) -> None:
        super().__init__(callobj=_callobj_for(criterion.fixtures), **kwargs)
        self.entry = entry
        self.criterion = criterion
        self.funnel = funnel
        self.outcome: Outcome | None = None
        self.add_marker(pytest.mark.funnel(entry.gate))
        self.user_properties.extend([
            ("gate", entry.gate), ("check", entry.name), ("kind", entry.kind),
        ])

    @property
    def evidence(self) -> str:
        return self.criterion.evidence or self.funnel.evidence_of(self.entry.kind)

    def runtest(self) -> None:
        fixtures = {name: self.funcargs[name] for name in self.criterion.fixtures}
        context = EvalContext(rootdir=self.funnel.rootdir, fixtures=fixtures,
                              shared=self.funnel.shared, key_path=self.entry.key_path)
        self.funnel.shared[RUNNING] = True  # sources that fail from now on fail once
        started = time.perf_counter()
        try:
            outcome = self.criterion.evaluate(context)
            if not isinstance(outcome, Outcome):
                raise CriterionError(f"TypeError: check kind {self.entry.kind!r} returned "
                                     f"{outcome!r}, not an Outcome")
            if outcome.status not in STATUSES:
                raise CriterionError(f"TypeError: check kind {self.entry.kind!r} returned an "
                                     f"Outcome with status {outcome.status!r} (one of "
                                     f"{', '.join(STATUSES)})")
        except SourceUnavailable as exc:
            outcome = source_failure_outcome(exc, self.funnel.shared, self._short_id(),
                                             self.criterion.expected)
        except CriterionError as exc:
            outcome = Outcome.error(str(exc), self.criterion.expected)
        except Exception as exc:  # a crash in a check must not lose the rest of the run
            where = raised_at(exc, self.funnel.rootdir)
            outcome = Outcome.error(f"{type(exc).__name__}: {exc}{where}",
                                    self.criterion.expected)
        if outcome.expected is None:
            outcome.expected = self.criterion.expected
        # the one place a criterion's words enter the run: every output reads them from here
        outcome.message = secrets.redact(str(outcome.message))
        outcome.details = [secrets.redact(str(line)) for line in outcome.details]
        outcome.observed = secrets.redact_data(to_builtin(outcome.observed))
        outcome.expected = secrets.redact_data(to_builtin(outcome.expected))
        outcome.extra = secrets.redact_data(to_builtin(outcome.extra))
        self.duration_s = time.perf_counter() - started
        self.outcome = outcome
        self.user_properties.extend([
            ("observed", "" if outcome.observed is None
             else secrets.redact(str(outcome.observed))),
            ("expected", outcome.expected or ""),
        ])
        if outcome.status != "passed":
            raise CriterionFailed(outcome)

    def _short_id(self) -> str:
        """``data::train::rows``: the node id without the config file."""
        return "::".join(self.nodeid.split("::")[1:]) or self.nodeid

    def repr_failure(self, excinfo: ExceptionInfo[BaseException],  # type: ignore[override]
                     style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, CriterionFailed):
            entry = self.entry
            label = self.funnel.config.file_label
            where = f"{label}:{entry.line}" if entry.line else label
            return describe_failure(excinfo.value.outcome, where,
                                    f"[{entry.key_path}] {self.name}")
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        line = self.entry.line - 1 if self.entry.line else None
        # not a suffix of the node id: pytest would turn the dots of "slices.north.r2" into "::"
        return self.path, line, f"[{self.entry.key_path}] {self.name}"

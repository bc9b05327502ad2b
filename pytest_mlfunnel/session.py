"""The funnel session: one object per pytest run, registered as a plugin when ``--funnel`` is on.

Hooks here stay thin; the funnel logic is in ``funnel.py``, rendering in ``render/``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest
from _pytest.fixtures import FixtureLookupError

from pytest_mlfunnel import secrets
from pytest_mlfunnel.atomic import overwrite_problem
from pytest_mlfunnel.collection_errors import unknown_fixture_lines
from pytest_mlfunnel.config import (
    CheckEntry,
    ConfigError,
    FunnelConfig,
    load_config,
    not_a_file,
)
from pytest_mlfunnel.coverage_run import SameRunCoverage
from pytest_mlfunnel.funnel import (
    REPORT_ONLY,
    CriterionResult,
    FinalStatus,
    Required,
    Verdict,
    build_gates,
    decide,
    final_status,
    first_line,
    fold_regression,
)
from pytest_mlfunnel.history import History, read_history, record_run
from pytest_mlfunnel.items import ConfigFile, CriterionItem
from pytest_mlfunnel.kinds import KindRegistry
from pytest_mlfunnel.kinds.base import SEVERITIES, Criterion, PlanContext, slug
from pytest_mlfunnel.outcome import CriterionError, Outcome, raised_at
from pytest_mlfunnel.render.escape import controls, one_line
from pytest_mlfunnel.report import (
    Report,
    output_problem,
    utc_now,
    write_atomic,
)
from pytest_mlfunnel.service_runs import ServiceRuns
from pytest_mlfunnel.sources.file_types import special_file
from pytest_mlfunnel.sources.metrics import READERS, add_readers
from pytest_mlfunnel.sources.tabular import plan_aggregates
from pytest_mlfunnel.suggest import did_you_mean

_FINAL_FIELDS = ("id", "gate", "check", "kind", "status", "evidence", "observed", "expected",
                 "message", "duration_s", "details", "extra")


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class FunnelSession:
    def __init__(self, pytest_config: pytest.Config, config: FunnelConfig,
                 registry: KindRegistry, require: Required) -> None:
        self.pytest_config = pytest_config
        self.config = config
        self.registry = registry
        self.require = require
        self.rootdir = Path(pytest_config.rootpath)
        self.shared: dict[Any, Any] = {}
        self.today = dt.date.today()
        self._plans: dict[str, list[Criterion]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.failed_tests: set[str] = set()
        self.usage_errors: list[str] = []  # found by xdist workers at collection
        self.report: Report | None = None
        self.history: History | None = None
        self.history_error: str | None = None
        self.output_errors: list[str] = []  # requested outputs that could not be written
        self.release_error: str | None = None  # the release hook failed: nothing is recorded
        self.file_nodeid = self._nodeid_of(config.path)
        self._config_path = config.path.resolve()
        # a plugin of its own (registered by plugin.py): starts and stops [tool.mlfunnel.services]
        self.services = ServiceRuns(pytest_config, config, registry, self.rootdir,
                                    self.file_nodeid)
        # likewise: coverage criteria judged on pytest-cov's data of this very run
        self.same_run_coverage = SameRunCoverage(self)

    # ------------------------------------------------------------------ setup
    @classmethod
    def from_config(cls, pytest_config: pytest.Config) -> FunnelSession:
        registry = KindRegistry()
        READERS.forget_added()  # this run's plugins decide which readers it has
        try:
            for kinds in pytest_config.hook.pytest_mlfunnel_check_kinds():
                registry.extend(kinds or [], origin="pytest_mlfunnel_check_kinds")
            for readers in pytest_config.hook.pytest_mlfunnel_metric_readers():
                add_readers(readers or {}, origin="pytest_mlfunnel_metric_readers")
        except (ValueError, TypeError) as exc:
            raise pytest.UsageError(f"mlfunnel: {exc}") from None
        rootdir = Path(pytest_config.rootpath)
        option = pytest_config.getoption("funnel_config")
        if option:
            path = Path(option)
            path = path if path.is_absolute() else Path(pytest_config.invocation_params.dir) / path
            if not path.is_file():
                raise pytest.UsageError(f"--funnel-config: {option}: {not_a_file(path)}")
        else:
            path = rootdir / "pyproject.toml"
        secrets.clear()  # this run's config decides what is secret
        try:
            funnel_config = load_config(path, rootdir, registry)
        except ConfigError as exc:
            raise pytest.UsageError(*exc.lines()) from None
        require = funnel_config.require
        override = pytest_config.getoption("funnel_require")
        if override is not None:
            if override != REPORT_ONLY and override not in funnel_config.funnel:
                raise pytest.UsageError(
                    f"--funnel-require: unknown gate {override!r} (gates: "
                    f"{', '.join(funnel_config.funnel)}, or '{REPORT_ONLY}')"
                    f"{did_you_mean(override, [*funnel_config.funnel, REPORT_ONLY])}")
            require = Required.parse(override)
        if not is_worker(pytest_config):
            _check_outputs(pytest_config, funnel_config, rootdir)
        return cls(pytest_config, funnel_config, registry, require)

    def _nodeid_of(self, path: Path) -> str:
        # the path as configured first: a symbolic link is named, not the file it points to
        try:
            return Path(os.path.abspath(path)).relative_to(os.path.abspath(self.rootdir)
                                                           ).as_posix()
        except ValueError:
            pass
        try:
            return path.resolve().relative_to(self.rootdir.resolve()).as_posix()
        except (ValueError, OSError, RuntimeError):  # RuntimeError: a symbolic link loop
            return path.as_posix()

    def header(self) -> str:
        required = self.require.text or "none set"
        return (f"mlfunnel: {self.config.file_label} · {len(self.config.funnel)} gates · "
                f"{len(self.config.checks)} checks · required: {required}")

    def evidence_of(self, kind: str) -> str:
        return self.registry.get(kind).evidence

    # ------------------------------------------------------------------ planning
    def plan(self, entry: CheckEntry) -> list[Criterion]:
        """The criteria of one check, planned once per process (cheap, deterministic)."""
        if entry.key_path in self._plans:
            return self._plans[entry.key_path]
        context = PlanContext(rootdir=self.rootdir, config_path=self.config.path,
                              gate=entry.gate, check=entry.name, key_path=entry.key_path,
                              shared=self.shared)
        try:
            criteria = list(self.registry.get(entry.kind).plan(entry.config, context))
        except Exception as exc:
            message = str(exc) if isinstance(exc, CriterionError) else (
                f"{type(exc).__name__}: {exc}")

            def failing(_: Any, message: str = message) -> Outcome:
                return Outcome.error(message)

            criteria = [Criterion("check", failing)]
        seen: dict[str, int] = {}
        for criterion in criteria:
            name = slug(criterion.name)
            if name in seen:
                seen[name] += 1
                name = f"{name}-{seen[name]}"
            else:
                seen[name] = 1
            criterion.name = name
        criteria = self.services.wrap(entry, criteria)
        self._plans[entry.key_path] = criteria
        return criteria

    def planned_ids(self) -> dict[str, str]:
        """Every criterion the config yields: node id -> gate."""
        ids: dict[str, str] = {}
        for entry in self.config.checks:
            for criterion in self.plan(entry):
                ids[f"{self.file_nodeid}::{entry.gate}::{entry.slug}::{criterion.name}"] = (
                    entry.gate)
        return ids

    # ------------------------------------------------------------------ collection
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """Under xdist the controller collects nothing: check the criteria's fixture names
        here, against the fixtures of plugins and of the conftest.py files pytest loaded at
        start (those a criterion under the config file can see), before any test runs."""
        if is_worker(self.pytest_config) or not self.pytest_config.pluginmanager.has_plugin(
                "dsession"):
            return
        wanted = [(entry, name, session) for entry in self.config.checks
                  for criterion in self.plan(entry) for name in criterion.fixtures]
        lines = unknown_fixture_lines(self.config.file_label, session, wanted)
        if lines:
            raise pytest.UsageError(*lines)

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector
                            ) -> ConfigFile | None:
        if file_path.name == self.config.path.name and file_path.resolve() == self._config_path:
            node: ConfigFile = ConfigFile.from_parent(parent, path=file_path)
            node.funnel = self
            return node
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        if not any(isinstance(item, CriterionItem) for item in items):
            # pytest was pointed at tests/ or a file: the criteria still belong to the run.
            node = ConfigFile.from_parent(session, path=self.config.path)
            node.funnel = self
            items[:0] = list(session.genitems(node))
        problems: list[str] = []
        wrong_gate: list[pytest.Item] = []
        wanted = []
        for item in items:
            if isinstance(item, CriterionItem):
                wanted += [(item.entry, name, item) for name in item.criterion.fixtures]
                continue
            marker = item.get_closest_marker("funnel")
            if marker is None:
                continue
            read = read_marker(marker, self.config.funnel)
            if isinstance(read, str):
                problems.append(f"{item.nodeid}: {read}")
                wrong_gate.append(item)
                continue
            item.user_properties.append(("gate", read[0]))
        if is_worker(config):
            # Raising here would crash the worker: report a collection error that the
            # controller turns into exit 4, and do not run the test.
            for item, message in zip(wrong_gate, problems, strict=True):
                report = pytest.CollectReport(item.nodeid, "failed", message, [])
                report.mlfunnel_usage_error = message  # type: ignore[attr-defined]
                config.hook.pytest_collectreport(report=report)
            items[:] = [i for i in items if i not in wrong_gate]
        else:
            problems += unknown_fixture_lines(self.config.file_label, session, wanted)
            if problems:
                raise pytest.UsageError(*problems)
        if config.getoption("funnel_only"):
            keep = [i for i in items if isinstance(i, CriterionItem)
                    or i.get_closest_marker("funnel") is not None]
            dropped = [i for i in items if i not in keep]
            if dropped:
                items[:] = keep
                config.hook.pytest_deselected(items=dropped)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Plan the aggregates of the criteria that will run, now that ``-k``, ``-m`` and
        every other deselection is done: a source's one pass computes nothing a deselected
        criterion alone would ask."""
        for item in session.items:
            if isinstance(item, CriterionItem):
                for spec, aggs in item.criterion.needs:
                    plan_aggregates(self.shared, spec, list(aggs))

    # ------------------------------------------------------------------ running
    def _gate_of(self, item: pytest.Item) -> tuple[str, str] | None:
        """(gate, severity) for funnel items, None for ordinary tests."""
        if isinstance(item, CriterionItem):
            # a kind may ask to warn rather than fail (a slice with too few rows to judge)
            warn = item.outcome is not None and item.outcome.extra.get("warn")
            return item.entry.gate, "warn" if warn else item.entry.config.severity
        marker = item.get_closest_marker("funnel")
        if marker is None:
            return None
        read = read_marker(marker, self.config.funnel)
        return None if isinstance(read, str) else read

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        where = self._gate_of(item)
        decided: FinalStatus | None = None
        outcome = item.outcome if isinstance(item, CriterionItem) else None
        if where is not None and outcome is not None and call.when == "call":
            decided = self._final(item, outcome.status, outcome.message, *where)
            outcome.message = decided.message  # before pytest renders the failure
        report: pytest.TestReport = yield
        if where is None:
            return report
        gate, severity = where
        record = self._record(item, call, report, gate)
        if record is None:
            return report
        if decided is None:
            decided = self._final(item, record["status"], record["message"], gate, severity)
        record["status"], record["message"] = decided.status, decided.message
        if decided.waiver is not None:
            record["extra"]["waiver"] = decided.waiver
        if decided.xfail_reason is not None and report.failed:
            report.outcome = "skipped"
            report.wasxfail = controls(  # type: ignore[attr-defined]
                secrets.redact(decided.xfail_reason))
        report.mlfunnel = secrets.redact_data(record)  # type: ignore[attr-defined]
        return report

    def _final(self, item: pytest.Item, status: Any, message: str, gate: str,
               severity: str) -> FinalStatus:
        waiver = item.entry.config.waive if isinstance(item, CriterionItem) else None
        return final_status(status, message, gate=gate, severity=severity, waiver=waiver,
                            funnel=self.config.funnel, required=self.require, today=self.today)

    def _record(self, item: pytest.Item, call: pytest.CallInfo[None],
                report: pytest.TestReport, gate: str) -> dict[str, Any] | None:
        """The plain-builtin record of this phase, or None when the phase says nothing."""
        if report.when != "call" and report.passed:
            return None
        if isinstance(item, CriterionItem):
            check, kind, evidence = item.entry.name, item.entry.kind, item.evidence
        else:
            check, kind, evidence = item.name, "test", "measured"
        record: dict[str, Any] = {
            "id": item.nodeid, "gate": gate, "check": check, "kind": kind, "phase": report.when,
            "evidence": evidence, "observed": None, "expected": None, "message": "",
            "duration_s": float(report.duration), "details": [], "extra": {},
        }
        if report.skipped and not hasattr(report, "wasxfail"):
            record["status"] = "skipped"
            record["message"] = _skip_reason(report)
            return record
        if hasattr(report, "wasxfail"):  # the test's own xfail mark
            record["status"] = "skipped"
            record["message"] = f"xfail: {report.wasxfail}"
            return record
        outcome = getattr(item, "outcome", None) if report.when == "call" else None
        if isinstance(item, CriterionItem) and isinstance(outcome, Outcome):
            record.update(status=outcome.status, observed=outcome.observed,
                          expected=outcome.expected, message=outcome.message,
                          details=list(outcome.details), extra=dict(outcome.extra),
                          duration_s=float(getattr(item, "duration_s", report.duration)))
            return record
        if isinstance(item, CriterionItem):
            record["expected"] = item.criterion.expected
        if report.passed:
            record["status"] = "passed"
        elif report.when == "call" and not isinstance(item, CriterionItem):
            record["status"] = "failed"
            # a strict xfail that passed fails with no exception: its report says why
            record["message"] = _first_line(call) or first_line(str(report.longrepr or ""))
        else:
            record["status"] = "error"
            record["message"] = f"{report.when} failed: {_first_line(call)}"
        return record

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "mlfunnel", None)
        if record is None:
            if report.failed and not hasattr(report, "wasxfail"):
                self.failed_tests.add(report.nodeid)
            return
        previous = self.results.get(record["id"])
        if record["phase"] == "teardown" and previous is not None:
            if previous["status"] in ("passed", "warned", "waived"):
                self.results[record["id"]] = record
            return
        if record["phase"] == "call" or previous is None:
            self.results[record["id"]] = record

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        usage_error = getattr(report, "mlfunnel_usage_error", None)
        if isinstance(usage_error, str):
            if usage_error not in self.usage_errors:
                self.usage_errors.append(usage_error)
        elif report.failed:
            self.failed_tests.add(report.nodeid or "<collection>")

    # ------------------------------------------------------------------ verdict
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if is_worker(self.pytest_config):
            return
        if self.usage_errors:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR,
                          pytest.ExitCode.USAGE_ERROR):
            return
        self.report = self.build_report()
        verdict = self.report.verdict
        if verdict.fails_run and session.exitstatus in (
                pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        json_path = self.pytest_config.getoption("funnel_json")
        if json_path:
            target = Path(self.pytest_config.invocation_params.dir) / json_path
            try:
                write_atomic(target, self.report.to_json() + "\n")
            except OSError as exc:
                self.output_errors.append(f"could not write {json_path}: "
                                          f"{exc.strerror or exc}")
        self._write_outputs(self.report)
        try:  # after the outputs, so a hook that fails loses none of them
            self.pytest_config.hook.pytest_mlfunnel_report(report=self.report)
        except Exception as exc:
            self.output_errors.append(self._hook_failed("pytest_mlfunnel_report", exc))
        # CI relies on the artifacts and hooks it asked for: a missing one fails the run
        if self.output_errors and session.exitstatus in (
                pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def build_report(self) -> Report:
        planned = self.planned_ids()
        configured: dict[str, int] = {}
        for gate in planned.values():
            configured[gate] = configured.get(gate, 0) + 1
        order = {nodeid: i for i, nodeid in enumerate(planned)}
        records = sorted(self.results.values(),
                         key=lambda r: (order.get(r["id"], len(order)), r["id"]))
        results = [CriterionResult(**{k: r[k] for k in _FINAL_FIELDS}) for r in records
                   if r["gate"] in self.config.funnel]
        partial = any(nodeid not in self.results for nodeid in planned)
        gates = build_gates(self.config.funnel, results, configured)
        verdict: Verdict = decide(self.config.funnel, self.require, gates, partial,
                                  tests_failed=len(self.failed_tests))
        release, commit = self._release()
        history = self._read_history()
        notes = history.notes(self._nodeid_of(history.path))
        if self.history_error:
            notes.append(self.history_error)
        previous = history.previous_to(release)
        if self.pytest_config.getoption("funnel_no_regress"):
            if self.history_error:  # a regression cannot be ruled out: not a pass
                self.output_errors.append(f"--funnel-no-regress: {self.history_error}")
            elif previous is None:
                notes.append(f"--funnel-no-regress: no earlier release recorded in "
                             f"{self._nodeid_of(history.path)} to compare with")
            else:
                verdict = fold_regression(verdict, str(previous["release"]),
                                          int(previous["stage"]), previous.get("reached"),
                                          len(previous.get("funnel") or verdict.funnel))
        return Report(project=self.config.project, release=release, commit=commit,
                      created=utc_now(), verdict=verdict, gates=gates,
                      config_file=self.config.file_label, previous=previous, notes=notes)

    def _hook_failed(self, hook: str, exc: Exception) -> str:
        """``the <hook> hook failed: RuntimeError: ... (raised at conftest.py:12, in ...)``"""
        return secrets.redact(f"the {hook} hook failed: {type(exc).__name__}: {exc}"
                              f"{raised_at(exc, self.rootdir)}")

    def _release(self) -> tuple[str | None, str | None]:
        """(release, commit); a release hook that fails is an error of the run, which then
        names no release and records nothing."""
        from pytest_mlfunnel.release import ReleaseNameError, detect_release

        try:
            return detect_release(self.pytest_config, self.rootdir)
        except ReleaseNameError as exc:
            self.release_error = secrets.redact(str(exc))
        except Exception as exc:
            self.release_error = self._hook_failed("pytest_mlfunnel_release", exc)
        self.output_errors.append(self.release_error)
        return None, None

    def _read_history(self) -> History:
        try:
            self.history = read_history(self.config.history)
        except OSError as exc:
            self.history = History(self.config.history)
            self.history_error = (f"cannot read {self._nodeid_of(self.config.history)}: "
                                  f"{exc.strerror or exc}")
        return self.history

    def _write_outputs(self, report: Report) -> None:
        """--funnel-record, --funnel-html, the GitHub step summary. What was asked for and
        could not be written is an error of the run; the step summary only a note."""
        from pytest_mlfunnel.render.html import write_html
        from pytest_mlfunnel.render.markdown import append_step_summary

        option = self.pytest_config.getoption
        invocation = Path(self.pytest_config.invocation_params.dir)
        history = self.history if self.history is not None else self._read_history()
        if option("funnel_record") is not None and self.release_error is not None:
            report.notes.append(f"not recorded in {self._nodeid_of(self.config.history)}: "
                                "the release has no name")
        elif option("funnel_record") is not None:
            notes, error = record_run(self.config.history, report.to_dict(),
                                      self._nodeid_of(self.config.history), history)
            report.notes.extend(notes)
            if error is not None:
                self.output_errors.append(error)
        if option("funnel_html"):
            try:
                write_html(invocation / option("funnel_html"), report, history.entries)
            except OSError as exc:
                self.output_errors.append(f"could not write {option('funnel_html')}: "
                                          f"{exc.strerror or exc}")
        report.notes.extend(append_step_summary(report))

    # ------------------------------------------------------------------ output
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None or is_worker(self.pytest_config):
            return
        from pytest_mlfunnel.render.terminal import render_terminal

        terminalreporter.write_sep("=", "ml funnel")
        encoding = getattr(getattr(terminalreporter, "_tw", None), "_file", None)
        encoding = getattr(encoding, "encoding", None) or "utf-8"
        quiet = self.pytest_config.get_verbosity() < 0
        for text, markup in render_terminal(self.report, terminalreporter._tw.fullwidth,
                                            encoding, quiet):
            terminalreporter.write_line(text, **markup)
        for error in self.output_errors:
            terminalreporter.write_line(one_line(f"error: {error}"), red=True, bold=True)


def _check_outputs(pytest_config: pytest.Config, config: FunnelConfig, rootdir: Path) -> None:
    """A requested output that cannot be written is a usage error before anything runs."""
    invocation = Path(pytest_config.invocation_params.dir)
    outputs = {flag: pytest_config.getoption(name)
               for name, flag in (("funnel_json", "--funnel-json"),
                                  ("funnel_html", "--funnel-html"))}
    for flag, value in outputs.items():
        if value:
            problem = output_problem(invocation / value, invocation)
            if problem is not None:
                raise pytest.UsageError(f"{flag}: {value}: {problem}")
    # a report written over the config or the history would destroy what the run read
    clash = overwrite_problem({flag: str(invocation / value) for flag, value in outputs.items()
                               if value},
                              [("config file", config.path), ("history file", config.history)],
                              reader="run")
    if clash is not None:
        flag = next(flag for flag, value in outputs.items()
                    if value and str(invocation / value) == clash[0])
        raise pytest.UsageError(f"{flag}: {outputs[flag]}: {clash[1]}")
    unreadable = "a directory" if config.history.is_dir() else special_file(config.history)
    if pytest_config.getoption("funnel_no_regress") and unreadable:
        raise pytest.UsageError(f"--funnel-no-regress: {_shown(config.history, rootdir)}: is "
                                f"{unreadable}, not a history file to compare with (the history "
                                "file, tool.mlfunnel.history)")
    if pytest_config.getoption("funnel_record") is not None:
        problem = output_problem(config.history, rootdir)
        if problem is not None:
            raise pytest.UsageError(f"--funnel-record: {_shown(config.history, rootdir)}: "
                                    f"{problem} (the history file, tool.mlfunnel.history)")


def _shown(path: Path, rootdir: Path) -> str:
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return str(path)


def read_marker(marker: pytest.Mark, funnel: Sequence[str]) -> tuple[str, str] | str:
    """(gate, severity) of ``@pytest.mark.funnel(gate, severity=...)``, or what is wrong
    with it, as the usage error says it."""
    written = ", ".join([repr(a) for a in marker.args]
                        + [f"{k}={v!r}" for k, v in marker.kwargs.items()])
    where = f"@pytest.mark.funnel({written})"
    unknown = sorted(set(marker.kwargs) - {"gate", "severity"})
    if unknown:
        return (f"{where}: unknown argument {', '.join(unknown)} (it takes a gate and "
                "severity)")
    gates = [*marker.args, *([marker.kwargs["gate"]] if "gate" in marker.kwargs else [])]
    if not gates:
        return (f"{where}: needs a gate, e.g. @pytest.mark.funnel({funnel[0]!r}) "
                f"(gates: {', '.join(funnel)})")
    if len(gates) > 1:
        return f"{where}: names more than one gate; a test joins one (gates: {', '.join(funnel)})"
    gate = gates[0]
    if gate not in funnel:
        hint = did_you_mean(gate, funnel) if isinstance(gate, str) else ""
        return f"{where}: unknown gate (gates: {', '.join(funnel)}){hint}"
    severity = marker.kwargs.get("severity", "block")
    if severity not in SEVERITIES:
        return f"{where}: severity must be one of {', '.join(map(repr, SEVERITIES))}"
    return str(gate), str(severity)


def _skip_reason(report: pytest.TestReport) -> str:
    """``skipped: <reason>`` from a skipped test's report (pytest keeps the reason as the
    third item of its ``longrepr`` tuple, prefixed ``Skipped: ``)."""
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
    reason = first_line(reason.removeprefix("Skipped: ").removeprefix("Skipped"))
    return f"skipped: {reason}" if reason else "skipped"


def _first_line(call: pytest.CallInfo[None]) -> str:
    if call.excinfo is None:
        return ""
    if isinstance(call.excinfo.value, FixtureLookupError):
        error = call.excinfo.value
        return error.msg or f"fixture {error.argname!r} not found"
    text = call.excinfo.exconly().strip()
    return first_line(text) or call.excinfo.typename

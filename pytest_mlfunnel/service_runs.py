"""When and where the managed services of ``[tool.mlfunnel.services]`` run in a pytest run.

A service starts once per run, and only when a selected criterion refers to it:

* serial: after collection (``-k``/``-m`` already applied), for the selected items;
* under pytest-xdist the controller collects nothing. Every worker sends the node ids it
  selected (``pytest_xdist_node_collection_finished``) before any item is scheduled; the
  controller starts the services the first of these selections uses and writes each
  service's state -- its URL, why it is not usable, or "not started" -- to
  ``.mlfunnel/services/<name>.json`` under a token it gave the workers. Workers read that
  file (a bounded wait) when a criterion or the ``mlfunnel_service`` fixture needs the
  service: they get the URL, never a second server.
* a test that asks ``mlfunnel_service`` for a service no selected criterion uses: serially
  it starts there and then; a worker leaves a request file beside the state file, which a
  thread of the controller answers by starting the service and rewriting the state (the
  worker's wait is bounded by the service's timeout).

The controller (or the serial process) stops every service at the end of the session, also
after a failure or Ctrl-C: SIGTERM to the process group, SIGKILL after a grace period.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlfunnel.config import ConfigError, resolve_services
from pytest_mlfunnel.kinds.base import Criterion, EvalContext, PlanContext
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.services import LOG_TAIL_LINES, ServiceProcess, settled_log_tail

if TYPE_CHECKING:
    from pytest_mlfunnel.config import CheckEntry, FunnelConfig
    from pytest_mlfunnel.kinds import KindRegistry

STATE_DIR = Path(".mlfunnel") / "services"
_TOKEN_KEY = "mlfunnel_services_token"
#: How much longer than a service's own timeout a worker waits for the controller's word.
_WORKER_MARGIN_S = 30.0


@dataclass
class ServiceState:
    """What a criterion needs to know of a service; plain data (it travels in a file)."""

    name: str
    url: str | None
    failure: str | None  # one line: why it cannot be used
    log: str  # the log file, relative to the rootdir


class ServiceRuns:
    """Starts, shares and stops the services of one run; registered as a pytest plugin."""

    def __init__(self, pytest_config: pytest.Config, config: FunnelConfig,
                 registry: KindRegistry, rootdir: Path, file_nodeid: str) -> None:
        self.pytest_config = pytest_config
        self.config = config
        self.registry = registry
        self.file_nodeid = file_nodeid
        self.specs = config.services
        self.rootdir = rootdir
        workerinput = getattr(pytest_config, "workerinput", None)
        self.is_worker = workerinput is not None
        self.token = str(workerinput.get(_TOKEN_KEY, "")) if workerinput else uuid.uuid4().hex
        self.processes: dict[str, ServiceProcess] = {}
        self.states: dict[str, ServiceState] = {}
        self._announced = False
        self._resolved: dict[str, list[Criterion] | str] = {}
        self._plan_shared: dict[Any, Any] = {}
        self._exit_hook = False
        self._sigterm_handler: Any = None
        self._lock = threading.RLock()  # the controller's request thread starts services too
        self._stop_requests = threading.Event()
        self._request_thread: threading.Thread | None = None
        self._folder: Path | None = None

    # ------------------------------------------------------------------ which, and when
    def used_by(self, nodeids: Iterable[str]) -> list[str]:
        """The services the criteria with these node ids refer to, in config order."""
        prefixes = {f"{self.file_nodeid}::{entry.gate}::{entry.slug}::": entry.key_path
                    for entry in self.config.checks}
        used: set[str] = set()
        for nodeid in nodeids:
            for prefix, key_path in prefixes.items():
                if nodeid.startswith(prefix):
                    used.update(self.config.service_uses.get(key_path, ()))
        return [name for name in self.specs if name in used]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # serial runs only: an xdist controller does not collect, workers ask the controller
        if self.is_worker or session.config.option.collectonly:
            return
        for name in self.used_by(item.nodeid for item in session.items):
            self.ensure(name)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_TOKEN_KEY] = self.token

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self._announced or self.pytest_config.option.collectonly:  # all select alike
            return
        self._announced = True
        used = self.used_by(ids)
        for name in self.specs:
            if name in used:
                self.ensure(name)
            else:  # not started: a worker's test may still ask for it
                self.states[name] = ServiceState(name, None, None, self._log_label(name))
            self._write_state(self.states[name])
        if any(name not in used for name in self.specs):
            self._request_thread = threading.Thread(target=self._answer_requests,
                                                    name="mlfunnel-services", daemon=True)
            self._request_thread.start()

    def state_folder(self) -> Path:
        """Where the state and request files go: ``.mlfunnel/services``, or -- when that cannot
        be written (a read-only checkout, a file named ``.mlfunnel``) -- a folder of the temp
        dir named by the run's token, which the workers choose the same way."""
        if self._folder is None:
            folder = self.rootdir / STATE_DIR
            try:
                folder.mkdir(parents=True, exist_ok=True)
                usable = os.access(folder, os.W_OK | os.X_OK)
            except OSError:
                usable = False
            if not usable:
                folder = Path(tempfile.gettempdir()) / f"mlfunnel-services-{self.token}"
                with contextlib.suppress(OSError):
                    folder.mkdir(mode=0o700, exist_ok=True)
            self._folder = folder
        return self._folder

    def _answer_requests(self) -> None:
        """Controller: start the services workers' tests ask for (request files)."""
        folder = self.state_folder()
        while not self._stop_requests.wait(0.1):
            for request in folder.glob(f"*.request.{self.token}.*"):
                name = request.name.split(".request.", 1)[0]
                with contextlib.suppress(OSError):
                    request.unlink()
                if name in self.specs and not self._stop_requests.is_set():
                    self._write_state(self.ensure(name))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.is_worker:
            self.stop_all()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if not self.is_worker:
            self.stop_all()
        if (self._sigterm_handler is not None
                and signal.getsignal(signal.SIGTERM) is self._sigterm_handler):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the next run in this process
            self._sigterm_handler = None

    # ------------------------------------------------------------------ starting, stopping
    def ensure(self, name: str) -> ServiceState:
        """The service's state; started here (once) unless this is an xdist worker."""
        with self._lock:
            known = self.states.get(name)
            if known is not None and (known.url is not None or known.failure is not None):
                return known
            if self.is_worker:
                return self._ask_controller(name)
            return self._start(name)

    def _ask_controller(self, name: str) -> ServiceState:
        state = self._read_state(name, settled=False)
        if state.url is None and state.failure is None:  # not started: ask for it
            folder = self.state_folder()
            request = folder / f"{name}.request.{self.token}.{os.getpid()}"
            try:
                request.write_text("", encoding="utf-8")
            except OSError as exc:
                return ServiceState(name, None, f"cannot ask the pytest-xdist controller to "
                                                f"start it: {exc.strerror or exc}",
                                    state.log)
            state = self._read_state(name, settled=True)
        self.states[name] = state
        return state

    def _start(self, name: str) -> ServiceState:
        spec = self.specs[name]
        process = ServiceProcess(spec, self.rootdir, self.rootdir / STATE_DIR / f"{name}.log")
        self.processes[name] = process
        if not self._exit_hook:  # last resort when pytest dies without unconfiguring
            atexit.register(self.stop_all)
            self._stop_on_sigterm()
            self._exit_hook = True
        process.start()
        state = ServiceState(name, process.url, process.failure, self._log_label(name))
        if process.failure is not None:
            process.stop()
        self.states[name] = state
        return state

    def _stop_on_sigterm(self) -> None:
        """SIGTERM (a cancelled CI job, ``timeout``) ends pytest without unconfiguring or
        atexit, and the services run in process groups of their own: stop them first, then
        end as the signal asks. Only where no one else handles SIGTERM."""
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)):
            return

        def stop_then_end(signum: int, frame: Any) -> None:
            with contextlib.suppress(Exception):
                self.stop_all()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop_then_end)
        self._sigterm_handler = stop_then_end

    def stop_all(self) -> None:
        self._stop_requests.set()
        thread, self._request_thread = self._request_thread, None
        if thread is not None:  # it may be starting a service: bounded by that one's timeout
            thread.join(timeout=max(s.timeout_s for s in self.specs.values()) + 10)
        with self._lock:
            for name, process in list(self.processes.items()):
                process.stop()
                del self.processes[name]
        if not self.is_worker and self._announced:
            folder = self.state_folder()
            leftovers = [folder / f"{name}.json" for name in self.specs]
            leftovers += folder.glob(f"*.request.{self.token}.*")
            for path in leftovers:
                with contextlib.suppress(OSError):
                    path.unlink()
            if folder.name.endswith(self.token):  # the temp dir's, this run's only
                with contextlib.suppress(OSError):
                    folder.rmdir()

    def _log_label(self, name: str) -> str:
        return (STATE_DIR / f"{name}.log").as_posix()

    def _write_state(self, state: ServiceState) -> None:
        target = self.state_folder() / f"{state.name}.json"
        scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            scratch.write_text(json.dumps({"token": self.token, **asdict(state)}),
                               encoding="utf-8")
            os.replace(scratch, target)
        except OSError:  # the workers wait their bounded time and say they had no word
            pass

    def _read_state(self, name: str, settled: bool) -> ServiceState:
        """The controller's word on a service; ``settled``: wait for a URL or a failure."""
        target = self.state_folder() / f"{name}.json"
        waited = self.specs[name].timeout_s + _WORKER_MARGIN_S
        deadline = time.monotonic() + waited
        while True:
            try:
                found = json.loads(target.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                found = None
            if isinstance(found, dict) and found.get("token") == self.token and (
                    not settled or found.get("url") or found.get("failure")):
                return ServiceState(str(found["name"]), found.get("url"), found.get("failure"),
                                    str(found.get("log") or self._log_label(name)))
            if time.monotonic() >= deadline:
                return ServiceState(name, None, f"no word from the pytest-xdist controller "
                                                f"within {waited:g} s (is pytest-xdist >= 3?)",
                                    self._log_label(name))
            time.sleep(0.1)

    # ------------------------------------------------------------------ using
    def describe(self, state: ServiceState) -> tuple[str, list[str]]:
        """One line naming the service and its problem, and the log's last lines."""
        message = f"service {state.name}: {state.failure}" if state.failure else (
            f"service {state.name}")
        return message, self.tail(state)

    def tail(self, state: ServiceState) -> list[str]:
        lines = settled_log_tail(self.rootdir / state.log, LOG_TAIL_LINES)
        if not lines:
            return [f"({state.log} is empty)"] if (self.rootdir / state.log).exists() else []
        return [f"last lines of {state.log}:"] + [f"| {line}" for line in lines]

    def url_of(self, name: str) -> str:
        """The ``mlfunnel_service`` fixture's function."""
        if name not in self.specs:
            listed = ", ".join(self.specs) or "none"
            pytest.fail(f"mlfunnel_service({name!r}): no [tool.mlfunnel.services.{name}] in "
                        f"{self.config.file_label} (services: {listed})", pytrace=False)
        state = self.ensure(name)
        if state.failure is not None or state.url is None:
            message, tail = self.describe(state)
            pytest.fail("\n".join([message, *tail]), pytrace=False)
        return state.url

    def wrap(self, entry: CheckEntry, criteria: list[Criterion]) -> list[Criterion]:
        """Criteria of a check that refers to services evaluate against the real URLs."""
        names = self.config.service_uses.get(entry.key_path)
        if not names:
            return criteria
        for index, criterion in enumerate(criteria):
            criterion.evaluate = self._against_services(entry, names, index)
        return criteria

    def _against_services(self, entry: CheckEntry, names: tuple[str, ...], index: int) -> Any:
        def evaluate(ctx: EvalContext) -> Outcome:
            states = [self.ensure(name) for name in names]
            for state in states:
                if state.failure is not None or state.url is None:
                    message, tail = self.describe(state)
                    return Outcome("error", None, None,
                                   f"{message} (log: {state.log})", details=tail)
            criteria = self._resolved_criteria(entry, {s.name: str(s.url) for s in states})
            if isinstance(criteria, str):
                return Outcome.error(criteria)
            if index >= len(criteria):
                return Outcome.error("the check plans other criteria once its services' URLs "
                                     "are known")
            try:
                outcome = criteria[index].evaluate(ctx)
            except CriterionError as exc:
                outcome = Outcome.error(str(exc))
            except Exception as exc:  # as items.py does, but keeping the log's last lines
                outcome = Outcome.error(f"{type(exc).__name__}: {exc}")
            if isinstance(outcome, Outcome) and outcome.status != "passed":
                for state in states:
                    process = self.processes.get(state.name)
                    code = process.poll() if process is not None else None
                    if code is not None:
                        outcome.message += f" (service {state.name} exited with code {code})"
                    outcome.details = [*outcome.details, *self.tail(state)]
            return outcome
        return evaluate

    def _resolved_criteria(self, entry: CheckEntry, urls: dict[str, str]
                           ) -> list[Criterion] | str:
        if entry.key_path not in self._resolved:
            try:
                resolved = resolve_services(self.config, entry, urls, self.registry)
                context = PlanContext(rootdir=self.rootdir, config_path=self.config.path,
                                      gate=entry.gate, check=entry.name,
                                      key_path=entry.key_path, shared=self._plan_shared)
                planned: list[Criterion] | str = list(
                    self.registry.get(entry.kind).plan(resolved.config, context))
            except ConfigError as exc:
                planned = "with the services' URLs: " + "; ".join(exc.lines())
            except CriterionError as exc:
                planned = str(exc)
            except Exception as exc:
                planned = f"{type(exc).__name__}: {exc}"
            self._resolved[entry.key_path] = planned
        return self._resolved[entry.key_path]

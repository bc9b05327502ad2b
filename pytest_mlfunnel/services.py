"""Managed services: processes the funnel starts for its criteria, such as a model server.

    [tool.mlfunnel.services.model]
    command = ["python", "serve.py", "--port", "{port}"]   # {port}: a free port
    ready = "http://127.0.0.1:{port}/health"               # or ready = { log = "Listening" }
    timeout = "30 s"
    env = { MODEL_PATH = "models/churn.json" }

    [tool.mlfunnel.deployment.health]
    http = "${services.model.url}/health"

This module holds the parsing of that table, the ``${services.<name>.url}`` references and
the process itself (its own process group, a log file with the run's secrets masked,
readiness, a bounded stop). When and
where a service starts is decided by ``service_runs``.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from pytest_mlfunnel.expectations import duration_seconds, format_duration
from pytest_mlfunnel.secrets import basic_auth, mask_url, redact

SERVICE_KEYS = ("command", "ready", "timeout", "env", "url", "external_url")
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_URL = "http://127.0.0.1:{port}"
#: SIGTERM first; what is still running this long after is killed.
STOP_GRACE_S = 5.0
LOG_TAIL_LINES = 20
#: A service's log is cut back to its command and its last ``KEPT_LOG_BYTES`` once it holds
#: more than this: a server that prints without end must not fill the CI runner's disk.
MAX_LOG_BYTES = 8 * 2**20
KEPT_LOG_BYTES = 2**20
LOG_CUT_NOTE = (f"[earlier output left out: a service log keeps its command and its last "
                f"{KEPT_LOG_BYTES // 2**20} MiB]\n")
_REFERENCE_RE = re.compile(r"\$\{services\.([^.}]*)(?:\.([^}]*))?\}")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
_POLL_S = 0.1
_PARTIAL_LINE_S = 0.2  # how long an unfinished output line waits before it is logged


@dataclass(frozen=True)
class ServiceSpec:
    """One ``[tool.mlfunnel.services.<name>]`` table, validated."""

    name: str
    command: tuple[str, ...]
    ready_url: str | None = None  # may hold {port}
    ready_log: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    env: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    url: str = DEFAULT_URL  # may hold {port}
    external_url: str | None = None  # set: nothing starts, this is the URL


# --------------------------------------------------------------------------- config
def parse_services(raw: Any, key_path: str) -> tuple[dict[str, ServiceSpec],
                                                     list[tuple[str, str]]]:
    """Parse ``[tool.mlfunnel.services]``; returns the services and (key path, message)."""
    problems: list[tuple[str, str]] = []
    services: dict[str, ServiceSpec] = {}
    if not isinstance(raw, dict):
        return {}, [(key_path, "expected a table of named services, e.g. "
                               f"[{key_path}.model]")]
    for name, table in raw.items():
        where = f"{key_path}.{name}"
        if not _NAME_RE.match(name):
            problems.append((where, "a service name may use letters, digits, _ and - only"))
            continue
        if not isinstance(table, dict):
            problems.append((where, "expected a table with command = [...]"))
            continue
        spec = _parse_service(name, table, where, problems)
        if spec is not None:
            services[name] = spec
    return services, problems


def _parse_service(name: str, table: dict[str, Any], where: str,
                   problems: list[tuple[str, str]]) -> ServiceSpec | None:
    before = len(problems)
    for key in table:
        if key not in SERVICE_KEYS:
            problems.append((f"{where}.{key}",
                             f"unknown key (allowed: {', '.join(SERVICE_KEYS)})"))
    for key, value in table.items():
        if key in SERVICE_KEYS and find_references(value, f"{where}.{key}"):
            problems.append((f"{where}.{key}", "a service cannot refer to ${services...}"))
    external = table.get("external_url")
    if external is not None and not isinstance(external, str):
        problems.append((f"{where}.external_url", "expected a URL string ('' or left out: "
                                                  "the service is started)"))
        external = None
    command = table.get("command")
    if command is None:
        if not external:
            problems.append((f"{where}.command", "missing required key: the command that "
                                                 "starts the service, as a list"))
        command = []
    elif (not isinstance(command, list) or not command
          or not all(isinstance(part, str) for part in command)):
        problems.append((f"{where}.command", 'expected a non-empty list of strings, e.g. '
                                             '["python", "serve.py", "--port", "{port}"]'))
        command = []
    ready_url = ready_log = None
    ready = table.get("ready")
    if isinstance(ready, str):
        ready_url = ready.strip()
        if not ready_url.lower().startswith(("http://", "https://")):
            problems.append((f"{where}.ready", f"expected an http:// URL polled until it answers "
                                               f"2xx, or {{ log = \"text\" }}, got {ready!r}"))
    elif isinstance(ready, dict):
        unknown = [k for k in ready if k != "log"]
        if unknown or not isinstance(ready.get("log"), str) or not ready["log"]:
            problems.append((f"{where}.ready", 'expected { log = "text" }: the service is '
                                               'ready when its output contains the text'))
        else:
            ready_log = ready["log"]
    elif ready is not None:
        problems.append((f"{where}.ready", f"expected a URL or {{ log = \"text\" }}, got "
                                           f"{ready!r}"))
    timeout_s = DEFAULT_TIMEOUT_S
    timeout = table.get("timeout")
    if timeout is not None:
        try:
            timeout_s = _seconds(timeout)
        except ValueError as exc:
            problems.append((f"{where}.timeout", str(exc)))
    env = table.get("env", {})
    if not isinstance(env, dict):
        problems.append((f"{where}.env", "expected a table of NAME = \"value\""))
        env = {}
    for key, value in env.items():
        if not isinstance(value, str):
            problems.append((f"{where}.env.{key}", f"expected a string, got {value!r} "
                                                   "(environment values are text: quote it)"))
    url = table.get("url", DEFAULT_URL)
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        problems.append((f"{where}.url", f"expected an http:// URL, got {url!r}"))
        url = DEFAULT_URL
    if len(problems) > before:
        return None
    return ServiceSpec(name=name, command=tuple(command), ready_url=ready_url,
                       ready_log=ready_log, timeout_s=timeout_s,
                       env={k: str(v) for k, v in env.items()}, url=url.rstrip("/"),
                       external_url=external.rstrip("/") if external else None)


def _seconds(value: Any) -> float:
    number = duration_seconds(value, "30 s")
    if not 0 < number < 86_400:
        raise ValueError(f"expected more than 0 seconds and less than a day, got {value!r}")
    return number


# --------------------------------------------------------------------------- references
def find_references(value: Any, key_path: str) -> list[tuple[str, str, str | None]]:
    """Every ``${services.<name>.<attr>}`` in the strings of ``value``: (key path, name, attr)."""
    found: list[tuple[str, str, str | None]] = []
    if isinstance(value, str):
        found.extend((key_path, m.group(1), m.group(2)) for m in _REFERENCE_RE.finditer(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(find_references(item, f"{key_path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(find_references(item, f"{key_path}[{i}]"))
    return found


def substitute(value: Any, urls: dict[str, str]) -> Any:
    """``value`` with every ``${services.<name>.url}`` replaced by ``urls[name]``."""
    if isinstance(value, str):
        return _REFERENCE_RE.sub(
            lambda m: urls.get(m.group(1), m.group(0)) if m.group(2) == "url" else m.group(0),
            value)
    if isinstance(value, dict):
        return {k: substitute(v, urls) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, urls) for v in value]
    return value


def placeholder(name: str) -> str:
    """What stands for a service's URL while the config is validated (nothing runs yet)."""
    return f"http://{name.lower().replace('_', '-')}.service.mlfunnel.invalid"


def reference(name: str) -> str:
    return f"${{services.{name}.url}}"


# --------------------------------------------------------------------------- the process
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settled_log_tail(path: Path, lines: int = LOG_TAIL_LINES, quiet_s: float = 0.1,
                     limit_s: float = 1.0) -> list[str]:
    """``log_tail`` once the log has not grown for ``quiet_s`` (waiting at most ``limit_s``).
    A service prints a request's line while it answers, and the thread copying its output
    into the log (in this process, or in the pytest-xdist controller) can trail the answer a
    criterion has just judged: without the wait, the tail under a failure could miss the
    very request that failed."""
    deadline = time.monotonic() + limit_s
    size = _size(path)
    while True:
        time.sleep(max(0.0, min(quiet_s, deadline - time.monotonic())))
        now = _size(path)
        if now == size or time.monotonic() >= deadline:
            return log_tail(path, lines)
        size = now


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a service's log (bounded read: the last 64 KiB)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip("\r") for line in text.splitlines()[-lines:]]


class ServiceProcess:
    """One started service: its own process group, output to ``log_path``."""

    def __init__(self, spec: ServiceSpec, rootdir: Path, log_path: Path) -> None:
        self.spec = spec
        self.rootdir = rootdir
        self.log_path = log_path
        self.port: int | None = None
        self.url: str | None = None
        self.failure: str | None = None  # why it is not usable: one line
        self.exit_code: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: ServiceLog | None = None
        self._copier: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _fill(self, text: str) -> str:
        return text.replace("{port}", str(self.port))

    def start(self) -> None:
        """Start the command and wait until it is ready, exits, or the timeout passes."""
        spec = self.spec
        if spec.external_url:
            self.url = spec.external_url
            return
        self.port = free_port()
        self.url = self._fill(spec.url)
        command = [self._fill(part) for part in spec.command]
        if command[0] == "python":  # the interpreter running pytest, as in a venv
            command[0] = sys.executable
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")  # so the log (and ready = { log }) sees output
        env.update({key: self._fill(value) for key, value in spec.env.items()})
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = ServiceLog(self.log_path, redact(f"$ {' '.join(command)}\n"))
        except OSError as exc:
            self.failure = f"cannot write its log {self.log_path}: {exc.strerror or exc}"
            return
        self._log = log
        try:
            self._process = subprocess.Popen(
                command, cwd=self.rootdir, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            self.failure = f"cannot start {command[0]!r}: {exc.strerror or exc}"
            return
        assert self._process.stdout is not None
        self._copier = threading.Thread(target=_copy_redacted, args=(self._process.stdout, log),
                                        name=f"mlfunnel-service-log-{spec.name}", daemon=True)
        self._copier.start()
        self._wait_ready()

    def _wait_ready(self) -> None:
        spec = self.spec
        deadline = time.monotonic() + spec.timeout_s
        last = ""
        ready_url = self._fill(spec.ready_url) if spec.ready_url else None
        while True:
            code = self.poll()
            if code is not None:
                self.failure = f"exited with code {code} before it was ready"
                return
            if ready_url is not None:
                ok, last = _answers_2xx(ready_url, deadline)
            elif spec.ready_log is not None:
                ok = any(spec.ready_log in line for line in log_tail(self.log_path, 10_000))
                last = f"no line with {spec.ready_log!r} in its output"
            else:
                ok, last = _accepts_connections(self.url or "", deadline)
            if ok:
                return
            if time.monotonic() >= deadline:
                self.failure = (f"not ready within {format_duration(spec.timeout_s)} "
                                f"({last}{self._untold_port()})")
                return
            time.sleep(_POLL_S)

    def _untold_port(self) -> str:
        """Why a service waited on at ``{port}`` may never answer there: nothing told it."""
        spec = self.spec
        waits_on_port = (spec.ready_url is not None and "{port}" in spec.ready_url) or (
            spec.ready_url is None and spec.ready_log is None and "{port}" in spec.url)
        told = any("{port}" in part for part in (*spec.command, *spec.env.values()))
        if not waits_on_port or told:
            return ""
        return ("; neither its command nor its env holds {port}, the free port the funnel "
                "chose and waits on")

    def poll(self) -> int | None:
        """The exit code once the main process has ended, else None."""
        if self._process is not None and self.exit_code is None:
            self.exit_code = self._process.poll()
        return self.exit_code

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace_s``; reap the main process."""
        process = self._process
        if process is None:
            return
        group = process.pid  # start_new_session: the group id is the pid
        # a child that left the group (setsid, start_new_session) gets no group signal
        strays = {pid: started for pid, started in _descendants(group).items()
                  if _group_of(pid) != group}
        _signal_group(group, signal.SIGTERM)
        _signal_strays(strays, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (_group_alive(group, process)
                                               or _strays_alive(strays)):
            time.sleep(_POLL_S)
        if _group_alive(group, process):
            _signal_group(group, signal.SIGKILL)
        _signal_strays(strays, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
        self.poll()
        if self._copier is not None:  # the output ends once the group is gone
            self._copier.join(timeout=grace_s)
            self._copier = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._process = None


class ServiceLog:
    """A service's log file: its command line, then its output, at most ``MAX_LOG_BYTES``.

    Past that the file is rewritten as the command, a note, and the last ``KEPT_LOG_BYTES``
    from a line start: the tail shown under a failure and ``ready = { log }`` read the end."""

    def __init__(self, path: Path, first_line: str) -> None:
        self.path = path
        self.first_line = first_line
        self._handle: TextIO = path.open("w", encoding="utf-8")
        self._size = 0
        self.write(first_line)

    def write(self, text: str) -> None:
        self._handle.write(text)
        self._handle.flush()
        self._size += len(text.encode("utf-8", errors="replace"))
        if self._size > MAX_LOG_BYTES:
            self._cut()

    def _cut(self) -> None:
        with self.path.open("rb") as written:
            written.seek(max(0, self._size - KEPT_LOG_BYTES))
            tail = written.read()
        tail = tail[tail.find(b"\n") + 1:]  # from the start of a line
        kept = self.first_line + LOG_CUT_NOTE + tail.decode("utf-8", errors="replace")
        # a new file moved into place: whoever reads the log meanwhile sees one whole version
        scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        scratch.write_text(kept, encoding="utf-8")
        os.replace(scratch, self.path)
        self._handle.close()
        self._handle = self.path.open("a", encoding="utf-8")
        self._size = len(kept.encode("utf-8", errors="replace"))

    def close(self) -> None:
        self._handle.close()


def _copy_redacted(output: IO[bytes], log: ServiceLog) -> None:
    """A service's output into its log with the run's secrets masked, so the file never holds
    one. Whole lines are masked at once; a line the service leaves unfinished is written after
    a short pause (``ready = { log }`` may be waiting for it), so only a secret the service
    pauses in the middle of printing could be split."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = b""
    fd = output.fileno()

    def write(data: bytes, final: bool = False) -> None:
        text = decoder.decode(data, final)
        if text:
            with contextlib.suppress(ValueError, OSError):  # the log was closed at a stop
                log.write(redact(text))

    with output:
        while True:
            readable, _, _ = select.select([fd], [], [], _PARTIAL_LINE_S)
            if not readable:
                if pending:
                    write(pending)
                    pending = b""
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            if cut or len(pending) > 65536:
                cut = cut or len(pending)
                write(pending[:cut])
                pending = pending[cut:]
        write(pending, final=True)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_alive(group: int, process: subprocess.Popen[bytes]) -> bool:
    """Whether any process of the group still runs (zombies left to init do not count)."""
    if process.poll() is None:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
            return True
    return False


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0]), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(root: int) -> dict[int, str]:
    """Every living process below ``root`` by parent pid, whatever its group or session, with
    its start time (so that a pid reused later is never signalled). Empty without /proc."""
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields is not None and len(fields) > 19 and fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for pid, started in children.get(todo.pop(), ()):
            if pid not in found:
                found[pid] = started
                todo.append(pid)
    return found


def _group_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[2]) if fields is not None and len(fields) > 2 else None


def _strays_alive(strays: dict[int, str]) -> bool:
    return any(_same_process(pid, started) for pid, started in strays.items())


def _same_process(pid: int, started: str) -> bool:
    fields = _stat(pid)
    return fields is not None and len(fields) > 19 and fields[19] == started and (
        fields[0] != "Z")


def _signal_strays(strays: dict[int, str], signum: int) -> None:
    for pid, started in strays.items():
        if _same_process(pid, started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)


def _answers_2xx(url: str, deadline: float) -> tuple[bool, str]:
    """Whether ``url`` answers 2xx, asked on a thread that is waited for at most the poll's
    timeout: a socket timeout bounds each read, not an answer that comes a byte at a time."""
    timeout = max(0.2, min(2.0, deadline - time.monotonic()))
    found: list[tuple[bool, str]] = []
    asker = threading.Thread(target=lambda: found.append(_ask_2xx(url, timeout)), daemon=True,
                             name="mlfunnel-service-ready")
    asker.start()
    asker.join(timeout + 0.25)
    if not found:
        return False, f"{mask_url(url)}: no answer within {format_duration(timeout)}"
    return found[0]


#: The service runs here: a CI runner's HTTP(S)_PROXY is not the way to it.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _ask_2xx(url: str, timeout: float) -> tuple[bool, str]:
    shown = mask_url(url)
    try:
        with _DIRECT.open(_ready_request(url), timeout=timeout) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        return False, f"{shown} answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{shown}: {getattr(reason, 'strerror', None) or reason}"
    except Exception as exc:  # http.client's own errors: a garbled or cut-off answer
        return False, f"{shown}: not an HTTP answer ({type(exc).__name__}: {exc})"
    if 200 <= status < 300:
        return True, ""
    return False, f"{shown} answered {status}"


def _ready_request(url: str) -> urllib.request.Request:
    """The ready poll; a user and password in the URL go in an ``Authorization`` header
    (urllib would take them for part of the host name), which a redirect does not carry on."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None:
        return urllib.request.Request(url)
    host = parts.netloc.rpartition("@")[2]
    request = urllib.request.Request(urlunsplit(parts._replace(netloc=host)))
    request.add_unredirected_header("Authorization",
                                    basic_auth(parts.username, parts.password))
    return request


def _accepts_connections(url: str, deadline: float) -> tuple[bool, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = max(0.2, min(1.0, deadline - time.monotonic()))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as exc:
        return False, f"{host}:{port}: {exc.strerror or exc}"


def check_references(value: Any, key_path: str, known: Collection[str]
                     ) -> tuple[set[str], list[tuple[str, str]]]:
    """The services ``value`` refers to, and a problem for each reference that cannot work."""
    used: set[str] = set()
    problems: list[tuple[str, str]] = []
    for where, name, attr in find_references(value, key_path):
        written = "${{services.{}{}}}".format(name, f".{attr}" if attr is not None else "")
        if name not in known:
            listed = ", ".join(known) or "none declared: add [tool.mlfunnel.services.<name>]"
            problems.append((where, f"unknown service {name!r} in {written} (services: "
                                    f"{listed})"))
        elif attr != "url":
            problems.append((where, f"{written}: write {reference(name)} (a service "
                                    "offers its url)"))
        else:
            used.add(name)
    return used, problems


def unplaceholder(text: str, services: Collection[str]) -> str:
    """Config messages show what the user wrote, not the stand-in URL."""
    for name in services:
        text = text.replace(placeholder(name), reference(name))
    return text

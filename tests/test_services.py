"""``[tool.mlfunnel.services]``: real server processes the funnel starts, shares and stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from live_server import closed_port

from pytest_mlfunnel import services

__all__ = ["closed_port"]

#: A small model server. --mode: ok (serves), child (a child process serves), exit (dies at
#: once), never (never listens), drip (answers one byte every half second, never finishing),
#: flood (serves, printing without end), detached (as child, the child in a session of its own). Every process appends "pid port" to started.txt.
SERVER = '''
import argparse, http.server, json, os, subprocess, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--mode", default="ok")
parser.add_argument("--token", default="")
args = parser.parse_args()
with open("started.txt", "a") as out:
    out.write(f"{os.getpid()} {args.port}\\n")
print("model env:", os.environ.get("MODEL_PATH"))
if args.mode == "exit":
    print("boom: models/churn.json is missing")
    sys.exit(3)
if args.mode == "never":
    print("loading the model ...")
    time.sleep(600)
if args.mode == "drip":
    import socket
    listener = socket.create_server(("127.0.0.1", args.port))
    print(f"Listening on {args.port}", flush=True)
    while True:
        client, _ = listener.accept()
        client.recv(4096)
        for byte in b"HTTP/1.1 200 OK\\r\\nX-Pad: " + b"a" * 2000:
            client.sendall(bytes([byte]))
            time.sleep(0.5)
if args.mode in ("child", "detached"):  # detached: the child leaves the process group
    child = subprocess.Popen([sys.executable, __file__, "--port", str(args.port)],
                             start_new_session=args.mode == "detached")
    child.wait()
    sys.exit(0)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok", "port": args.port}).encode()
        if os.environ.get("MODEL_AUTH") and self.headers.get("Authorization") != os.environ[
                "MODEL_AUTH"]:
            self.send_response(401)
        else:
            self.send_response(200 if self.path.split("?")[0] == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *a):
        print("request", self.path, flush=True)


server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
print(f"Listening on {args.port}", flush=True)
if args.mode == "flood":
    import threading
    threading.Thread(target=server.serve_forever, daemon=True).start()
    line = "x" * 1000 + "\\n"
    while True:
        sys.stdout.write(line)
server.serve_forever()
'''


def project(pytester: pytest.Pytester, mode: str = "ok", service: str = "",
            checks: str = "") -> None:
    pytester.makefile(".py", server=SERVER)
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
funnel = ["data", "deployment"]
require = "deployment"

[tool.mlfunnel.services.model]
command = ["python", "server.py", "--port", "{{port}}", "--mode", "{mode}"]
ready = "http://127.0.0.1:{{port}}/health"
timeout = "20 s"
env = {{ MODEL_PATH = "models/churn-{{port}}.json" }}
{service}

[tool.mlfunnel.data.readme]
files = ["server.py"]

[tool.mlfunnel.deployment.health]
http = "${{services.model.url}}/health"
requests = 3
response = ["status"]
expect = {{ p95_ms = "<= 5000", errors = "== 0" }}
{checks}
""")


def started(pytester: pytest.Pytester) -> list[tuple[int, int]]:
    path = pytester.path / "started.txt"
    if not path.exists():
        return []
    return [(int(pid), int(port)) for pid, port in
            (line.split() for line in path.read_text().splitlines())]


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def assert_all_stopped(pytester: pytest.Pytester) -> None:
    processes = started(pytester)
    assert processes, "the service never started"
    for pid, port in processes:
        assert not running(pid), f"process {pid} still runs"
        assert not listening(port), f"port {port} still answers"


@pytest.mark.xdist_matters(without_xdist=True)  # one server for every worker; none without xdist
def test_a_service_starts_once_for_its_criteria_and_is_stopped_at_the_end(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    project(pytester)
    pytester.makepyfile(test_client="""
import json, urllib.request

def test_the_fixture_gives_the_same_server(mlfunnel_service):
    url = mlfunnel_service("model")
    with urllib.request.urlopen(url + "/health", timeout=5) as answer:
        assert json.load(answer)["status"] == "ok"
    with open("started.txt") as seen:
        assert seen.read().split()[1] == url.rsplit(":", 1)[1]
""")
    result = pytester.runpytest_subprocess("--funnel", "--funnel-json=report.json", *xdist_args,
                                           timeout=300)
    result.assert_outcomes(passed=5)
    assert result.ret == 0
    assert len(started(pytester)) == 1  # one server, also with two workers
    assert_all_stopped(pytester)
    log = (pytester.path / ".mlfunnel/services/model.log").read_text()
    port = started(pytester)[0][1]
    assert f"Listening on {port}" in log
    assert f"model env: models/churn-{port}.json" in log  # env, with {port} filled in
    assert log.count("request /health") >= 4  # readiness probe + 3 requests of the check
    report = json.loads((pytester.path / "report.json").read_text())
    health = [c for g in report["gates"] for c in g["criteria"] if c["check"] == "health"]
    assert f"http://127.0.0.1:{port}/health" in health[0]["message"]
    assert not list((pytester.path / ".mlfunnel/services").glob("*.json"))


@pytest.mark.xdist_matters(without_xdist=True)  # under xdist the workers deselect, not the controller
def test_a_service_no_selected_criterion_uses_is_not_started(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    project(pytester)
    result = pytester.runpytest_subprocess("--funnel", "-k", "not deployment", *xdist_args,
                                           timeout=300)
    result.assert_outcomes(passed=1, deselected=None if xdist_args == ["-n", "2"] else 3)
    assert started(pytester) == []
    assert not (pytester.path / ".mlfunnel/services/model.log").exists()


def test_a_service_that_exits_at_once_errors_every_criterion_using_it(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    project(pytester, mode="exit")
    result = pytester.runpytest_subprocess("--funnel", "--funnel-json=report.json", *xdist_args,
                                           timeout=300)
    result.assert_outcomes(passed=1, failed=3)  # the data gate still ran: the run went on
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "service model: exited with code 3 before it was ready "
        "(log: .mlfunnel/services/model.log)",
        "*last lines of .mlfunnel/services/model.log:",
        "*| boom: models/churn.json is missing",
    ])
    report = json.loads((pytester.path / "report.json").read_text())
    statuses = {c["id"].rsplit("::", 1)[1]: c["status"] for g in report["gates"]
                for c in g["criteria"]}
    assert statuses == {"server.py": "passed", "status": "error", "p95_ms": "error",
                        "errors": "error"}
    assert_all_stopped(pytester)


def test_a_service_that_is_never_ready_errors_after_its_timeout_and_is_killed(
        pytester: pytest.Pytester) -> None:
    project(pytester, mode="never")
    toml = pytester.path / "pyproject.toml"
    toml.write_text(toml.read_text().replace('timeout = "20 s"', 'timeout = "1 s"'))
    began = time.monotonic()
    result = pytester.runpytest_subprocess("--funnel", timeout=300)
    assert time.monotonic() - began < 240
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "service model: not ready within 1 s (http://127.0.0.1:*/health: *refused*",
        "*| loading the model ...",
    ])
    assert_all_stopped(pytester)


def test_a_ready_url_that_answers_one_byte_at_a_time_is_cut_off_at_the_timeout(
        pytester: pytest.Pytester) -> None:
    """Each read of the answer comes within the poll's socket timeout, so only a bound on the
    whole poll ends the wait: a service's timeout holds whatever its ready URL does."""
    project(pytester, mode="drip")
    toml = pytester.path / "pyproject.toml"
    toml.write_text(toml.read_text().replace('timeout = "20 s"', 'timeout = "2 s"'))
    began = time.monotonic()
    result = pytester.runpytest_subprocess("--funnel", timeout=120)
    assert time.monotonic() - began < 60
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "service model: not ready within 2 s (http://127.0.0.1:*/health: no answer within *) "
        "(log: .mlfunnel/services/model.log)"])
    assert_all_stopped(pytester)


def test_the_ready_url_is_asked_directly_not_through_the_environment_proxy(
        pytester: pytest.Pytester, closed_port: int) -> None:
    """A CI runner's HTTP_PROXY is for the outside world: the service listens right here (the
    http kind asks it directly too)."""
    project(pytester)
    proxy = f"http://127.0.0.1:{closed_port}"
    env = {"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        result = pytester.runpytest_subprocess("--funnel", timeout=300)
    result.assert_outcomes(passed=4)
    assert_all_stopped(pytester)


def test_a_service_that_floods_its_output_keeps_a_bounded_log_with_its_last_lines(
        pytester: pytest.Pytester) -> None:
    project(pytester, mode="flood", checks="""
[tool.mlfunnel.deployment.predict]
http = "${services.model.url}/predict"
""")
    pytester.makepyfile(test_wait="""
import time

def test_the_service_keeps_printing(mlfunnel_service):
    mlfunnel_service("model")
    time.sleep(4)
""")
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:randomly", timeout=300)
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines([
        "http://127.0.0.1:*/predict: *404*",
        "*last lines of .mlfunnel/services/model.log:",
        "*| xxxxxxxxxx*"])
    log = pytester.path / ".mlfunnel/services/model.log"
    assert log.stat().st_size <= services.MAX_LOG_BYTES + 65536
    head = log.read_text(encoding="utf-8").splitlines()[:2]
    assert head[0].startswith("$ ") and head[0].endswith(" --mode flood")  # the command stays
    assert head[1] == ("[earlier output left out: a service log keeps its command and its "
                       "last 1 MiB]")
    assert_all_stopped(pytester)


def test_a_service_whose_child_serves_is_stopped_with_its_child(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    project(pytester, mode="child")
    result = pytester.runpytest_subprocess("--funnel", *xdist_args, timeout=300)
    result.assert_outcomes(passed=4)
    processes = started(pytester)
    assert len(processes) == 2  # the service and the child that listens
    assert_all_stopped(pytester)


def test_a_service_whose_child_leaves_its_process_group_is_stopped_with_that_child(
        pytester: pytest.Pytester) -> None:
    """A child started in a session of its own (setsid, start_new_session) gets no signal sent
    to the service's process group; it is found as a descendant instead."""
    project(pytester, mode="detached")
    result = pytester.runpytest_subprocess("--funnel", timeout=300)
    result.assert_outcomes(passed=4)
    assert len(started(pytester)) == 2
    assert_all_stopped(pytester)


def test_a_ready_url_with_a_user_and_password_asks_with_them_and_never_shows_them(
        pytester: pytest.Pytester) -> None:
    import base64
    project(pytester, service='url = "http://probe:hunter2-pw@127.0.0.1:{port}"')
    toml = pytester.path / "pyproject.toml"
    auth = "Basic " + base64.b64encode(b"probe:hunter2-pw").decode()
    toml.write_text(toml.read_text().replace(
        'ready = "http://127.0.0.1:{port}/health"',
        'ready = "http://probe:hunter2-pw@127.0.0.1:{port}/health"').replace(
        'env = { MODEL_PATH = "models/churn-{port}.json" }',
        f'env = {{ MODEL_PATH = "models/churn-{{port}}.json", MODEL_AUTH = "{auth}" }}'))
    result = pytester.runpytest_subprocess("--funnel", timeout=300)
    result.assert_outcomes(passed=4)
    assert_all_stopped(pytester)


def test_a_ready_url_that_is_never_ready_is_shown_with_its_secrets_masked(
        pytester: pytest.Pytester) -> None:
    project(pytester, mode="never")
    toml = pytester.path / "pyproject.toml"
    toml.write_text(toml.read_text().replace('timeout = "20 s"', 'timeout = "1 s"').replace(
        'ready = "http://127.0.0.1:{port}/health"',
        'ready = "http://probe:hunter2-pw@127.0.0.1:{port}/health?key=k3y"'))
    result = pytester.runpytest_subprocess("--funnel", "--funnel-json=report.json",
                                           "--junitxml=junit.xml", timeout=300)
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "service model: not ready within 1 s (http://***:***@127.0.0.1:*/health?key=***: "
        "*refused*"])
    for written in (result.stdout.str(), (pytester.path / "report.json").read_text(),
                    (pytester.path / "junit.xml").read_text()):
        assert "hunter2-pw" not in written and "k3y" not in written
    assert_all_stopped(pytester)


@pytest.mark.xdist_matters(without_xdist=True)  # the controller tells the workers by a file
def test_a_project_folder_that_cannot_hold_the_service_files_errors_the_criteria(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    """A file named .mlfunnel (or a read-only checkout): the service's log cannot be written,
    which its criteria say; under pytest-xdist the controller's word still reaches the
    workers, through a folder of the temp dir."""
    project(pytester)
    (pytester.path / ".mlfunnel").write_text("not a folder\n")
    began = time.monotonic()
    result = pytester.runpytest_subprocess("--funnel", *xdist_args, timeout=300)
    assert time.monotonic() - began < 60
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "service model: cannot write its log */.mlfunnel/services/model.log: Not a directory "
        "(log: .mlfunnel/services/model.log)"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert started(pytester) == []


def test_a_service_never_told_its_port_says_so_when_it_is_not_ready(
        pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
[tool.mlfunnel]
funnel = ["deployment"]

[tool.mlfunnel.services.model]
command = ["python", "-c", "import time; print('serving on 8000', flush=True); time.sleep(60)"]
timeout = "1 s"

[tool.mlfunnel.deployment.health]
http = "${services.model.url}/health"
""")
    result = pytester.runpytest_subprocess("--funnel", timeout=300)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "service model: not ready within 1 s (127.0.0.1:*: Connection refused; neither its "
        "command nor its env holds {port}, the free port the funnel chose and waits on) "
        "(log: .mlfunnel/services/model.log)"])


def test_ready_can_be_a_line_of_the_service_output(pytester: pytest.Pytester) -> None:
    project(pytester)
    toml = pytester.path / "pyproject.toml"
    toml.write_text(toml.read_text().replace('ready = "http://127.0.0.1:{port}/health"',
                                             'ready = { log = "Listening on" }'))
    result = pytester.runpytest_subprocess("--funnel", timeout=300)
    result.assert_outcomes(passed=4)
    assert_all_stopped(pytester)


def test_a_criterion_that_fails_against_a_service_shows_the_log_tail(
        pytester: pytest.Pytester) -> None:
    project(pytester, checks="""
[tool.mlfunnel.deployment.predict]
http = "${services.model.url}/predict"
""")
    result = pytester.runpytest_subprocess("--funnel", timeout=300)
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([
        "http://127.0.0.1:*/predict: *404*",
        "*last lines of .mlfunnel/services/model.log:",
        "*| request /predict",
    ])
    assert_all_stopped(pytester)


def test_the_tail_under_a_failure_waits_for_the_log_to_stop_growing(tmp_path: Path) -> None:
    """The line of the request that failed can reach the log a moment after the answer: the
    tail read for the failure waits until the log has been still for a moment (bounded)."""
    import threading

    from pytest_mlfunnel.services import log_tail, settled_log_tail

    log = tmp_path / "model.log"
    log.write_text("Listening on 8000\n")

    def late_line() -> None:
        time.sleep(0.05)
        with log.open("a") as handle:
            handle.write("request /predict\n")

    writer = threading.Thread(target=late_line)
    writer.start()
    assert log_tail(log) == ["Listening on 8000"]  # read at once: the line is not there yet
    assert settled_log_tail(log) == ["Listening on 8000", "request /predict"]
    writer.join(timeout=5)
    log.write_text("".join(f"line {i}\n" for i in range(3)))

    def growing() -> None:  # a log that does not stop growing while the tail is read
        for i in range(200):
            with log.open("a") as handle:
                handle.write(f"more {i}\n")
            time.sleep(0.05)

    busy = threading.Thread(target=growing)
    busy.start()
    tail = settled_log_tail(log, lines=3, quiet_s=0.1, limit_s=0.5)
    still_writing = busy.is_alive()  # the wait gave up at its bound, not when the log stopped
    busy.join(timeout=30)
    assert len(tail) == 3 and tail[-1].startswith("more ")
    assert still_writing


def test_a_secret_the_service_prints_never_reaches_its_log_file(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "tok-7f3a9c1e5d"
    monkeypatch.setenv("MLFUNNEL_TEST_MODEL_TOKEN", token)
    project(pytester, service='env = { MODEL_PATH = "models/churn.json", '
                              'MODEL_TOKEN = "${MLFUNNEL_TEST_MODEL_TOKEN}" }')
    toml = pytester.path / "pyproject.toml"
    toml.write_text(toml.read_text().replace(
        'env = { MODEL_PATH = "models/churn-{port}.json" }\n', ""))
    server = pytester.path / "server.py"
    server.write_text(server.read_text().replace(
        'print("model env:", os.environ.get("MODEL_PATH"))',
        'print("model env:", os.environ.get("MODEL_PATH"), flush=True)\n'
        'print("token", os.environ["MODEL_TOKEN"], "in a line", flush=True)\n'
        'print("unfinished", os.environ["MODEL_TOKEN"], end="", flush=True)\n'
        'time.sleep(0.5)\n'
        'print(flush=True)'))
    result = pytester.runpytest_subprocess("--funnel", timeout=300)
    result.assert_outcomes(passed=4)
    log = (pytester.path / ".mlfunnel/services/model.log").read_text()
    assert token not in log
    assert "token *** in a line\n" in log
    assert "unfinished ***\n" in log
    assert "model env: models/churn.json\n" in log  # the rest of the output is kept
    assert_all_stopped(pytester)


@pytest.mark.parametrize("written", ["${MLFUNNEL_TEST_MODEL_TOKEN}", "tok-51d0c8e2aa"],
                         ids=["substituted", "written-in-the-config"])
def test_a_secret_on_the_service_command_line_is_masked_in_its_log_and_output(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, written: str) -> None:
    token = "tok-51d0c8e2aa"
    monkeypatch.setenv("MLFUNNEL_TEST_MODEL_TOKEN", token)
    project(pytester, mode="exit")
    toml = pytester.path / "pyproject.toml"
    toml.write_text(toml.read_text().replace(
        '"--mode", "exit"]', f'"--mode", "exit", "--token", "{written}"]'))
    result = pytester.runpytest_subprocess("--funnel", "--funnel-json=report.json", timeout=300)
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "*last lines of .mlfunnel/services/model.log:",
        "*| $ * server.py --port * --mode exit --token [*][*][*]"])
    log = (pytester.path / ".mlfunnel/services/model.log").read_text()
    assert log.startswith("$ ") and log.splitlines()[0].endswith(" --token ***")
    for written in (result.stdout.str(), log, (pytester.path / "report.json").read_text()):
        assert token not in written


def interrupt_a_run_holding_a_service(pytester: pytest.Pytester, xdist_args: list[str],
                                      send: Callable[[int], None]) -> tuple[int, str]:
    """Start ``pytest --funnel`` whose test holds a service, ``send`` it a signal once the
    service answers; (return code, output)."""
    project(pytester)
    pytester.makepyfile(test_slow="""
import time
from pathlib import Path

def test_waits(mlfunnel_service):
    Path("running.txt").write_text(mlfunnel_service("model"))
    time.sleep(120)
""")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen([sys.executable, "-m", "pytest", "--funnel", "-p", "no:cacheprovider",
                            *xdist_args], cwd=pytester.path, env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not (pytester.path / "running.txt").exists():
            assert time.monotonic() < deadline, "the test never started"
            assert run.poll() is None, run.communicate()[0].decode()
            time.sleep(0.1)
        assert listening(started(pytester)[0][1])
        send(run.pid)
        output = run.communicate(timeout=180)[0].decode()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
    return run.returncode, output


@pytest.mark.xdist_matters  # under xdist the controller, not a worker, owns the service
def test_sigterm_to_pytest_stops_the_service_before_pytest_ends(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    """A CI job cancelled, or 'timeout 10m pytest', sends SIGTERM to pytest alone: the service
    runs in a process group of its own, so nothing else would stop it."""
    code, _ = interrupt_a_run_holding_a_service(
        pytester, xdist_args, lambda pid: os.kill(pid, signal.SIGTERM))  # pytest only
    assert code == -signal.SIGTERM  # still ended by the signal, as asked
    assert_all_stopped(pytester)


@pytest.mark.xdist_matters  # under xdist the controller, not a worker, owns the service
def test_ctrl_c_stops_the_service(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    code, output = interrupt_a_run_holding_a_service(
        pytester, xdist_args, lambda pid: os.killpg(pid, signal.SIGINT))  # a terminal's Ctrl-C
    assert "KeyboardInterrupt" in output
    assert code == 2
    assert_all_stopped(pytester)


@pytest.mark.parametrize(("service", "check", "lines"), [
    ('command = "python server.py"', "", [
        "ERROR: pyproject.toml: tool.mlfunnel.services.model.command: expected a non-empty list of "
        'strings, e.g. ["python", "serve.py", "--port", "{port}"]']),
    ('command = ["x"]\nreadiness = "http://127.0.0.1:{port}/"', "", [
        "ERROR: pyproject.toml: tool.mlfunnel.services.model.readiness: unknown key (allowed: "
        "command, ready, timeout, env, url, external_url)"]),
    ('command = ["x"]\nready = "/health"\ntimeout = "soon"\nenv = { N = 3 }', "", [
        "ERROR: pyproject.toml: tool.mlfunnel.services.model.ready: expected an http:// URL polled "
        "until it answers 2xx, or { log = \"text\" }, got '/health'",
        "ERROR: pyproject.toml: tool.mlfunnel.services.model.timeout: not a duration: 'soon'*",
        "ERROR: pyproject.toml: tool.mlfunnel.services.model.env.N: expected a string, got 3*"]),
    ('command = ["x"]\ntimeout = 30', "", [
        "ERROR: pyproject.toml: tool.mlfunnel.services.model.timeout: a duration needs a unit: "
        "'30 s'?"]),
    ('command = ["x"]', 'http = "${services.modle.url}/health"', [
        "ERROR: pyproject.toml: tool.mlfunnel.deployment.health.http: unknown service 'modle' in "
        "${services.modle.url} (services: model)"]),
    ('command = ["x"]', 'http = "${services.model.port}/health"', [
        "ERROR: pyproject.toml: tool.mlfunnel.deployment.health.http: ${services.model.port}: "
        "write ${services.model.url} (a service offers its url)"]),
    ('command = ["x"]', 'http = "${services.model.url}/health"\nstatus = 999', [
        "ERROR: pyproject.toml: tool.mlfunnel.deployment.health.status: expected an HTTP status "
        "code*"]),
])
def test_a_broken_services_table_is_a_usage_error_naming_the_key(
        pytester: pytest.Pytester, service: str, check: str, lines: list[str]) -> None:
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
funnel = ["deployment"]

[tool.mlfunnel.services.model]
{service}

[tool.mlfunnel.deployment.health]
{check or 'http = "${services.model.url}/health"'}
""")
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(lines)
    assert "Traceback" not in result.stderr.str()
    assert "mlfunnel.invalid" not in result.stderr.str()


def test_the_fixture_names_the_services_there_are(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_client="""
def test_asks_for_a_typo(mlfunnel_service):
    mlfunnel_service("modle")
""")
    result = pytester.runpytest("--funnel", "-k", "typo")
    result.assert_outcomes(failed=1, deselected=4)
    assert ("\nmlfunnel_service('modle'): no [tool.mlfunnel.services.modle] in pyproject.toml "
            "(services: model)\n") in result.stdout.str()
    assert started(pytester) == []


def test_the_fixture_without_funnel_says_services_need_it(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_client="""
def test_asks(mlfunnel_service):
    mlfunnel_service("model")
""")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert ("\nmlfunnel_service: the services of [tool.mlfunnel.services] run with --funnel "
            "(or --funnel-only)\n") in result.stdout.str()
    assert started(pytester) == []


def test_an_external_url_starts_nothing(pytester: pytest.Pytester) -> None:
    project(pytester, mode="exit", service='external_url = "http://127.0.0.1:1"')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["http://127.0.0.1:1/health: *refused*"])
    assert started(pytester) == []


@pytest.mark.xdist_matters
def test_tests_alone_get_one_service_from_the_controller(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    project(pytester)
    client = """
import urllib.request

def test_client_{0}(mlfunnel_service):
    with urllib.request.urlopen(mlfunnel_service("model") + "/health", timeout=5) as answer:
        assert answer.status == 200
"""
    pytester.makepyfile(test_one=client.format("one"), test_two=client.format("two"))
    result = pytester.runpytest_subprocess("--funnel", "-k", "client", *xdist_args, timeout=300)
    result.assert_outcomes(passed=2)
    assert len(started(pytester)) == 1  # asked for by two tests, maybe on two workers
    assert_all_stopped(pytester)
    assert list((pytester.path / ".mlfunnel/services").glob("model.*")) == [
        pytester.path / ".mlfunnel/services/model.log"]


def test_every_service_key_is_in_the_reference() -> None:
    from pytest_mlfunnel.services import SERVICE_KEYS

    reference = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    assert [key for key in SERVICE_KEYS if f"| `{key}` |" not in reference] == []


@pytest.mark.xdist_matters
def test_collect_only_starts_nothing(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    project(pytester)
    result = pytester.runpytest_subprocess("--funnel", "--collect-only", "-q", *xdist_args,
                                           timeout=300)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["pyproject.toml::deployment::health::status"])
    assert started(pytester) == []


def test_a_service_whose_command_does_not_exist_errors_its_criteria(
        pytester: pytest.Pytester) -> None:
    project(pytester)
    toml = pytester.path / "pyproject.toml"
    toml.write_text(toml.read_text().replace('command = ["python", "server.py"',
                                             'command = ["no-such-server", "server.py"'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "service model: cannot start 'no-such-server': No such file or directory "
        "(log: .mlfunnel/services/model.log)"])

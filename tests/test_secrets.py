"""Secrets never reach an output: masking by value, against a real HTTP server and PostgreSQL.

Every output is read back as a file (JSON, HTML, junit XML, the step summary, the history,
what the ``mlfunnel`` command writes) or as the terminal text, and searched for each secret
as written and in every encoded form it could take.
"""

from __future__ import annotations

import base64
import html
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

import pytest

from pytest_mlfunnel import secrets
from pytest_mlfunnel.config import expand_env

#: A password holding every character that means something in a URL.
PASSWORD = "p#s@w/r?d&x%y:z +q=1"
USER_TOKEN = "tok-user-5f3a9c"
QUERY_TOKEN = "qtok-7d2e81b4"
HEADER_TOKEN = "htok-c0ffee42"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), USER_TOKEN, QUERY_TOKEN, HEADER_TOKEN)


def forms(secret: str) -> set[str]:
    """Every way a secret could be written in a file or on the terminal."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret),
            json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            html.escape(secret), html.escape(secret, quote=False), repr(secret)[1:-1],
            unquote(secret)}


def assert_no_secret(where: str, text: str, values: tuple[str, ...] = SECRETS) -> None:
    for secret in values:
        for form in forms(secret):
            assert form not in text, f"{where} shows the secret {secret!r} as {form!r}"


class EchoServer:
    """A hostile server on 127.0.0.1: it answers 401 and echoes the credentials it got in
    the reason phrase, the way error pages and proxies do."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/metrics.json":
                    body = json.dumps({"requests": 5}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    auth = self.headers.get("Authorization", "")
                    if auth.startswith("Basic "):
                        auth = base64.b64decode(auth[6:]).decode()
                    body = b"{}"
                    self.send_response(401, f"denied {auth} {unquote(auth)} "
                                            f"{unquote(parts.query)}")
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.stop()


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    monkeypatch.setenv("PW_ENC", quote(PASSWORD, safe=""))
    monkeypatch.setenv("USER_TOKEN", USER_TOKEN)
    monkeypatch.setenv("QUERY_TOKEN", QUERY_TOKEN)
    monkeypatch.setenv("HEADER_TOKEN", HEADER_TOKEN)


def cli(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_mlfunnel.cli", *args],
                          cwd=pytester.path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ), check=False)


def every_output(pytester: pytest.Pytester, result: pytest.RunResult) -> dict[str, str]:
    """The terminal text and every file the run and the ``mlfunnel`` command wrote."""
    outputs = {"terminal": result.stdout.str() + result.stderr.str()}
    out = pytester.path / "out"
    for path in sorted(out.iterdir()):
        outputs[path.name] = path.read_text(encoding="utf-8")
    outputs["history"] = (pytester.path / ".mlfunnel" / "history.jsonl").read_text("utf-8")
    for args in (["report", "out/report.json", "--html", "out/cli.html", "--markdown",
                  "out/cli.md"], ["history"], ["history", "--html", "out/history.html"],
                 ["badge", "-o", "out/badge.svg"], ["badge", "--report", "out/report.json",
                                                    "-o", "-"]):
        run = cli(pytester, *args)
        assert run.returncode == 0, run.stderr
        outputs[f"mlfunnel {' '.join(args)}"] = run.stdout + run.stderr
    for name in ("cli.html", "cli.md", "history.html", "badge.svg"):
        outputs[name] = (out / name).read_text(encoding="utf-8")
    return outputs


@pytest.mark.xdist_matters
def test_no_secret_reaches_any_output_of_http_checks_and_metric_urls(
        pytester: pytest.Pytester, echo_server: EchoServer, secret_env: None,
        monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]) -> None:
    port = echo_server.port
    pytester.makepyprojecttoml(f"""
        [tool.mlfunnel]
        funnel = ["usage", "deployment"]
        require = "deployment"

        [tool.mlfunnel.sources]
        raw = {{ url = "http://ops:${{PW}}@127.0.0.1:{port}/metrics.json" }}
        encoded = {{ url = "http://ops:${{PW_ENC}}@127.0.0.1:{port}/metrics.json?key=${{QUERY_TOKEN}}" }}

        [tool.mlfunnel.usage.raw-password]
        metrics = "raw"
        expect = {{ requests = ">= 700" }}

        [tool.mlfunnel.usage.encoded-password]
        metrics = "encoded"
        expect = {{ requests = ">= 700" }}

        [tool.mlfunnel.deployment.user-token]
        http = "http://${{USER_TOKEN}}@127.0.0.1:{port}/echo"

        [tool.mlfunnel.deployment.query-token]
        http = "http://127.0.0.1:{port}/echo?token=${{QUERY_TOKEN}}"

        [tool.mlfunnel.deployment.header-token]
        http = "http://127.0.0.1:{port}/echo"
        headers = {{ Authorization = "Bearer ${{HEADER_TOKEN}}" }}

        [tool.mlfunnel.deployment.password]
        http = "http://ops:${{PW_ENC}}@127.0.0.1:{port}/echo"
    """)
    (pytester.path / "out").mkdir()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "out" / "summary.md"))
    result = pytester.runpytest("--funnel", "-v", "-rA", "--funnel-json=out/report.json",
                                "--funnel-html=out/report.html", "--junitxml=out/junit.xml",
                                "--funnel-record=v1", *xdist_args)
    assert result.ret == 1
    result.assert_outcomes(failed=6)
    # the server answered, and what it echoed is there with the secrets masked
    for line in [
        f"raw (http://***:***@127.0.0.1:{port}/metrics.json): the URL cannot be read with "
        "certainty (percent-encode *",
        "requests 5, expected >= 700",
        f"http://***@127.0.0.1:{port}/echo: status 401 denied ***: ***: (expected 200)",
        f"http://127.0.0.1:{port}/echo?token=***: status 401 denied   token=*** (expected 200)",
        f"http://127.0.0.1:{port}/echo: status 401 denied Bearer *** Bearer *** (expected 200)",
        f"http://***:***@127.0.0.1:{port}/echo: status 401 denied ops:*** ops:*** "
        "(expected 200)",
    ]:
        result.stdout.fnmatch_lines([line])  # each on its own: xdist changes the order
    outputs = every_output(pytester, result)
    assert {"report.json", "report.html", "junit.xml", "summary.md", "history",
            "cli.html", "cli.md", "history.html", "badge.svg"} <= set(outputs)
    for where, text in outputs.items():
        assert_no_secret(where, text)
    junit = outputs["junit.xml"]
    assert "status 401 denied Bearer ***" in junit


def test_a_password_with_url_characters_is_masked_against_postgresql(
        pytester: pytest.Pytester, postgres_url: str, secret_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    psycopg = pytest.importorskip("psycopg")
    admin = urlsplit(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = 'mlfunnel_secret'"
                              ).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(f"{verb} role mlfunnel_secret login password "
                     f"'{PASSWORD.replace(chr(39), chr(39) * 2)}'")
    where = f"127.0.0.1:{admin.port}{admin.path}"
    pytester.makepyprojecttoml(f"""
        [tool.mlfunnel]
        funnel = ["usage"]
        [tool.mlfunnel.sources]
        warehouse = {{ url = "postgresql://mlfunnel_secret:${{PW_ENC}}@{where}", query = "select count(*) as requests from no_such_table_here" }}
        raw = {{ url = "postgresql://mlfunnel_secret:${{PW}}@{where}", query = "select 1 as requests" }}
        [tool.mlfunnel.usage.encoded]
        metrics = "warehouse"
        expect = {{ requests = ">= 1" }}
        [tool.mlfunnel.usage.raw]
        metrics = "raw"
        expect = {{ requests = ">= 1" }}
    """)
    (pytester.path / "out").mkdir()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "out" / "summary.md"))
    result = pytester.runpytest("--funnel", "-v", "-rA", "--funnel-json=out/report.json",
                                "--funnel-html=out/report.html", "--junitxml=out/junit.xml",
                                "--funnel-record=v1")
    result.assert_outcomes(failed=2)
    # the password was right: the database answered about the missing table
    result.stdout.fnmatch_lines([
        f"warehouse (postgresql://***:***@{where}): *no_such_table_here*",
        "raw (***): the URL cannot be read with certainty*"])
    for name, text in every_output(pytester, result).items():
        assert_no_secret(name, text, (PASSWORD, quote(PASSWORD, safe="")))


@pytest.mark.parametrize(("check", "key"), [
    ('http = "http://127.0.0.1:1/h"\nheaders = "Bearer ${API_TOKEN}"', "headers"),
    ('http = "htps://127.0.0.1/h?token=${API_TOKEN}"', "http"),
    ('http = "http://127.0.0.1:1/h?token=${API_TOKEN}"\nheaders = ["${API_TOKEN}"]',
     "headers"),
    ('http = "http://ops:${PW}@127.0.0.1:1/h"', "http"),
])
def test_a_config_error_never_echoes_a_secret(pytester: pytest.Pytester, secret_env: None,
                                              monkeypatch: pytest.MonkeyPatch, check: str,
                                              key: str) -> None:
    monkeypatch.setenv("API_TOKEN", "tok-abcdef123456")
    pytester.makepyprojecttoml(f'[tool.mlfunnel]\nfunnel = ["deployment"]\n'
                               f"[tool.mlfunnel.deployment.live]\n{check}\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pyproject.toml: tool.mlfunnel.deployment.live.{key}: *"])
    assert_no_secret("config error", result.stdout.str() + result.stderr.str(),
                     ("tok-abcdef123456", PASSWORD))


LITERAL_TOKEN = "lit-9b7e2d4a1c"


@pytest.mark.parametrize("headers", [
    f'{{ Authorization = ["Bearer {LITERAL_TOKEN}"] }}',
    f'{{ X-Api-Key = {{ value = "{LITERAL_TOKEN}" }} }}',
])
def test_a_config_error_never_echoes_a_credential_header_written_in_the_config(
        pytester: pytest.Pytester, headers: str) -> None:
    pytester.makepyprojecttoml('[tool.mlfunnel]\nfunnel = ["deployment"]\n'
                               "[tool.mlfunnel.deployment.live]\n"
                               f'http = "http://127.0.0.1:1/h"\nheaders = {headers}\n')
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pyproject.toml: tool.mlfunnel.deployment.live.headers.*: "
                                 "Input should be a valid string (got *[*][*][*]*)"])
    assert_no_secret("config error", result.stdout.str() + result.stderr.str(),
                     (LITERAL_TOKEN,))


def test_a_credential_header_written_in_the_config_that_a_server_echoes_is_masked(
        pytester: pytest.Pytester, echo_server: EchoServer) -> None:
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
funnel = ["deployment"]

[tool.mlfunnel.deployment.live]
http = "http://127.0.0.1:{echo_server.port}/health"
headers = {{ Authorization = "Bearer {LITERAL_TOKEN}", Accept = "application/json" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-rA",
                                "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "http://127.0.0.1:*/health: status 401 denied Bearer [*][*][*] Bearer [*][*][*] "
        "(expected 200)"])
    for name in ("report.json", "junit.xml"):
        assert_no_secret(name, (pytester.path / name).read_text(), (LITERAL_TOKEN,))
    assert_no_secret("terminal", result.stdout.str() + result.stderr.str(), (LITERAL_TOKEN,))


def test_which_literal_values_are_credentials(fresh: None) -> None:
    expand_env({"deployment": {"live": {"headers": {
        "Authorization": "Bearer lit-bearer-123456", "X-API-Key": "lit-apikey-123456",
        "Cookie": "session=lit-cookie-123456", "Accept": "application/json",
        "X-Request-Id": "lit-request-id-123456"}}},
        "services": {"model": {"env": {"MODEL_TOKEN": "lit-envtoken-123456",
                                       "MODEL_PATH": "models/churn.json",
                                       "MODEL_AUTHOR": "the-data-team",
                                       "KEYCLOAK_REALM": "churn-realm"}}},
        "sources": {"db": {"options": {"password": "lit-password-123456",
                                       "timeout": "30 seconds"}}}},
        "tool.mlfunnel", [], {})
    assert secrets.registered() == {
        "lit-bearer-123456", "lit-apikey-123456", "lit-cookie-123456", "lit-envtoken-123456",
        "lit-password-123456"}


def test_which_literal_arguments_of_a_service_command_are_credentials(fresh: None) -> None:
    expand_env({"services": {"model": {"command": [
        "python", "serve.py", "--port", "{port}", "--token", "lit-cmdtoken-123456",
        "--api-key=lit-cmdkey-123456", "--author", "the-data-team-x", "--key-file",
        "-password", "lit-cmdpass-123456", "--model", "models/churn.json"]},
        "shell": {"command": ["sh", "-c", "serve --secret 'lit-shell-123456' --port {port}"]},
        "other": {"command": ["sh", "-c", "echo 'unclosed --token lit-nope-123456"]}}},
        "tool.mlfunnel", [], {})
    assert secrets.registered() == {
        "lit-cmdtoken-123456", "lit-cmdkey-123456", "lit-cmdpass-123456", "lit-shell-123456"}


def test_a_raw_password_in_an_http_url_says_how_to_write_it(pytester: pytest.Pytester,
                                                            secret_env: None) -> None:
    pytester.makepyprojecttoml('[tool.mlfunnel]\nfunnel = ["deployment"]\n'
                               '[tool.mlfunnel.deployment.live]\n'
                               'http = "http://ops:${PW}@127.0.0.1:1/h"\n')
    result = pytester.runpytest("--funnel")
    result.stderr.fnmatch_lines([
        "*pyproject.toml: tool.mlfunnel.deployment.live.http: the URL cannot be read with "
        "certainty (percent-encode a user or password: # as %23, @ as %40, / as %2F, "
        "? as %3F, a space as %20)"])


def test_an_unset_variable_is_one_problem_on_one_line(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFUNNEL_UNSET_MODEL_URL", raising=False)
    pytester.makepyprojecttoml('[tool.mlfunnel]\nfunnel = ["deployment"]\n'
                               '[tool.mlfunnel.deployment.health]\n'
                               'http = "${MLFUNNEL_UNSET_MODEL_URL}/health"\n'
                               '[tool.mlfunnel.deployment.model]\n'
                               'metrics = "${MLFUNNEL_UNSET_MODEL_URL}"\n'
                               'expect = { accuracy = ">= 0.9" }\n')
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert errors == [
        "ERROR: pyproject.toml: tool.mlfunnel.deployment.health.http: environment variable "
        "MLFUNNEL_UNSET_MODEL_URL is not set (write ${MLFUNNEL_UNSET_MODEL_URL:-default} to "
        "give a default)",
        "ERROR: pyproject.toml: tool.mlfunnel.deployment.model.metrics: environment variable "
        "MLFUNNEL_UNSET_MODEL_URL is not set (write ${MLFUNNEL_UNSET_MODEL_URL:-default} to "
        "give a default)"]


# --------------------------------------------------------------------------- the rule itself
@pytest.fixture
def fresh() -> Iterator[None]:
    secrets.clear()
    yield
    secrets.clear()


def test_which_substituted_values_are_secret(fresh: None) -> None:
    environ = {"DATA_DIR": "/srv/data-dir", "TOKEN": "tok-1234567890", "HOST": "db.internal",
               "OPT": "opt-value-42", "BODY": "body-value-99"}
    problems: list[tuple[str, str]] = []
    expand_env({"a": {"path": "${DATA_DIR}/train.parquet",
                      "headers": {"Authorization": "Bearer ${TOKEN}"}},
                "sources": {"db": {"url": "postgresql://reader@${HOST}/db",
                                   "options": {"x": "${OPT}"}}},
                "b": {"http": "http://127.0.0.1:1/p", "json": {"k": ["${BODY}"]}}},
               "tool.mlfunnel", problems, environ)
    assert problems == []
    assert secrets.registered() == {"tok-1234567890", "db.internal", "opt-value-42",
                                    "body-value-99"}
    assert secrets.redact("read /srv/data-dir/train.parquet") == (
        "read /srv/data-dir/train.parquet")


@pytest.mark.parametrize("url", [
    f"postgresql://app:{PASSWORD}@db.example/analytics",
    f"http://ops:{quote(PASSWORD, safe='')}@127.0.0.1:8080/h",
    "http://tok-literal-user@127.0.0.1/health?token=qtok-literal-123&v=2",
])
def test_a_literal_url_is_masked_in_place_and_its_parts_by_value(fresh: None,
                                                                 url: str) -> None:
    secrets.register_url(url)
    shown = secrets.redact(f"cannot reach {url}: refused")
    assert_no_secret("redacted", shown, (PASSWORD, "tok-literal-user", "qtok-literal-123"))
    assert shown.startswith("cannot reach ") and shown.endswith(": refused")


def test_literal_url_parts_are_masked_wherever_they_appear(fresh: None) -> None:
    secrets.register_url("http://tok-literal-user@127.0.0.1/health?token=qtok-literal-123&v=2")
    assert secrets.redact("401 for tok-literal-user with qtok-literal-123, v=2") == (
        "401 for *** with ***, v=2")


def test_a_url_that_cannot_be_read_is_masked_whole(fresh: None) -> None:
    url = f"postgresql://app:{PASSWORD}@db.example/analytics"
    secrets.register_url(url)
    assert secrets.redact(f"[{url}]") == "[***]"
    assert secrets.mask_url(url) == "***"


def test_a_readable_url_keeps_its_host_and_path(fresh: None) -> None:
    secrets.register_url("postgresql://postgres:hunter2pw@db.example:5432/analytics?sslmode=require")
    assert secrets.redact("postgresql://postgres:hunter2pw@db.example:5432/analytics?"
                          "sslmode=require") == (
        "postgresql://***:***@db.example:5432/analytics?sslmode=***")
    # a user that is also the scheme's start is masked in place only
    assert secrets.redact("postgresql+psycopg driver, user postgres") == (
        "postgresql+psycopg driver, user postgres")
    assert secrets.redact("password hunter2pw rejected") == "password *** rejected"


def test_the_drift_reference_cache_holds_no_secret(pytester: pytest.Pytester,
                                                   secret_env: None) -> None:
    rows = "\n".join(f"{i % 7},{HEADER_TOKEN if i % 3 else 'other'}" for i in range(300))
    (pytester.path / "reference.csv").write_text("x,who\n" + rows + "\n")
    (pytester.path / "current.csv").write_text("x,who\n" + rows + "\n")
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["maintenance"]
        [tool.mlfunnel.sources]
        vault = { url = "http://127.0.0.1:1/v", options = { token = "${HEADER_TOKEN}" } }
        [tool.mlfunnel.maintenance.drift]
        drift = { reference = "reference.csv", current = "current.csv" }
        expect = { psi = "<= 0.2" }
    """)
    for _ in range(2):  # the second run would read the cache the first one wrote
        result = pytester.runpytest("--funnel", "--funnel-json=report.json")
        assert result.ret == 0
        for path in (pytester.path / ".mlfunnel").rglob("*"):
            if path.is_file():
                assert_no_secret(str(path), path.read_text("utf-8"), (HEADER_TOKEN,))
        assert_no_secret("report", (pytester.path / "report.json").read_text("utf-8"),
                         (HEADER_TOKEN,))


def test_an_xfail_reason_never_shows_a_secret(pytester: pytest.Pytester,
                                              echo_server: EchoServer,
                                              secret_env: None) -> None:
    pytester.makepyprojecttoml(f"""
        [tool.mlfunnel]
        funnel = ["data", "deployment"]
        require = "data"
        [tool.mlfunnel.data.docs]
        files = ["pyproject.toml"]
        [tool.mlfunnel.deployment.query-token]
        http = "http://127.0.0.1:{echo_server.port}/echo?token=${{QUERY_TOKEN}}"
    """)
    result = pytester.runpytest("--funnel", "-rx", "--junitxml=junit.xml")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        f"XFAIL *query-token::status - above required gate data: "
        f"http://127.0.0.1:{echo_server.port}/echo?token=***: status 401 denied *"])
    assert_no_secret("terminal", result.stdout.str())
    assert_no_secret("junit", (pytester.path / "junit.xml").read_text("utf-8"))

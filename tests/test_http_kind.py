"""The ``http`` kind against a real HTTP server on 127.0.0.1 (tests/live_server.py)."""

from __future__ import annotations

import base64
import json
import re
import time

import numpy as np
import pytest
from live_server import LiveServer, closed_port, live_server

from pytest_mlfunnel.kinds.http import percentile

__all__ = ["closed_port", "live_server"]



def project(pytester: pytest.Pytester, checks: str) -> None:
    pytester.makepyprojecttoml("[tool.mlfunnel]\nfunnel = [\"deployment\"]\n\n" + checks)


def report(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def test_a_healthy_endpoint_passes_status_response_latency_and_errors(
        pytester: pytest.Pytester, live_server: LiveServer, xdist_args: list[str]) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "{live_server.url}/fast"
requests = 10
response = ["score", "model.version"]
expect = {{ p50_ms = "<= 1000", p95_ms = "<= 1000", p99_ms = "<= 2 s", errors = "== 0" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-v", *xdist_args)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*deployment*passed*5/5*", "stage reached: deployment (1/1)*"])
    criteria = report(pytester)
    assert set(criteria) == {"status", "p50_ms", "p95_ms", "p99_ms", "errors"}
    assert criteria["errors"]["observed"] == 0
    assert criteria["status"]["observed"] == {"ok": 10, "requests": 10}
    assert 0 < criteria["p95_ms"]["observed"] < 1000  # type: ignore[operator]
    assert criteria["p95_ms"]["message"].startswith(  # type: ignore[union-attr]
        f"{live_server.url}/fast: p95 ")
    assert "over 10 requests" in criteria["p95_ms"]["message"]  # type: ignore[operator]


def test_all_criteria_of_a_check_share_one_probe_run(pytester: pytest.Pytester,
                                                     live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "{live_server.url}/fast"
requests = 7
expect = {{ p50_ms = "<= 1000", p95_ms = "<= 1000", errors = "== 0" }}
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=4)
    assert len(live_server.seen_headers) == 7


def test_a_slow_endpoint_fails_its_latency_percentile_with_the_measured_value(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.slow]
http = "{live_server.url}/slow?ms=250"
requests = 3
expect = {{ p95_ms = "<= 100", p50_ms = "<= 2 s" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/slow?ms=***: p95 * ms over 3 requests, expected <= 100",
    ])
    criteria = report(pytester)
    assert 250 <= criteria["p95_ms"]["observed"] < 2000  # type: ignore[operator]
    assert criteria["p50_ms"]["status"] == "passed"


def test_the_error_share_counts_500_answers(pytester: pytest.Pytester,
                                            live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.flaky]
http = "{live_server.url}/flaky?every=4"
requests = 8
expect = {{ errors = "<= 10%" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/flaky?every=***: errors 25% (2 of 8 requests: status 500 Internal "
        "Server Error (expected 200) x2), expected <= 10%",
    ])
    criteria = report(pytester)
    assert criteria["errors"]["observed"] == 0.25
    assert criteria["status"]["status"] == "passed"  # the share is the errors criterion's


def test_without_an_error_budget_every_probe_must_answer_as_expected(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.flaky]
http = "{live_server.url}/flaky?every=2"
requests = 4
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/flaky?every=***: status 500 Internal Server Error (expected 200) x2 "
        "(2 of 4 probes)",
    ])


def test_a_wrong_status_is_named(pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "{live_server.url}/status/503"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/status/503: status 503 Service Unavailable (expected 200)"])


def test_a_list_of_statuses_is_accepted(pytester: pytest.Pytester,
                                        live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.gone]
http = "{live_server.url}/status/404"
status = [200, 404]
""")
    pytester.runpytest("--funnel").assert_outcomes(passed=1)


def test_a_prediction_is_posted_as_json_with_headers_from_the_environment(
        pytester: pytest.Pytester, live_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFUNNEL_TEST_TOKEN", "t0ken-123")
    project(pytester, f"""
[tool.mlfunnel.deployment.predict]
http = "{live_server.url}/predict"
json = {{ age = 41, plan = "pro", signed_up = 2024-03-01, seen = 2026-11-02T08:30:00Z }}
headers = {{ Authorization = "Bearer ${{MLFUNNEL_TEST_TOKEN}}" }}
status = 200
response = ["score", "labels.1"]
""")
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=1)
    assert live_server.seen_bodies == [{"age": 41, "plan": "pro", "signed_up": "2024-03-01",
                                        "seen": "2026-11-02T08:30:00+00:00"}]
    assert live_server.seen_headers[0]["authorization"] == "Bearer t0ken-123"
    assert live_server.seen_headers[0]["content-type"] == "application/json"
    assert "t0ken-123" not in result.stdout.str()


def test_a_missing_response_key_lists_the_keys_there(pytester: pytest.Pytester,
                                                     live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.predict]
http = "{live_server.url}/predict"
method = "post"
json = {{ age = 41 }}
response = ["score", "model.name"]
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/predict: no 'model.name' in the answer (model has keys: version)"])


def test_a_non_json_answer_fails_the_response_keys(pytester: pytest.Pytester,
                                                   live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.page]
http = "{live_server.url}/text"
response = ["score"]
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"{live_server.url}/text: the answer is not JSON ('<html>hello</html>')"])


def test_a_redirect_says_where_it_leads_with_its_secrets_masked(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    """A health check behind single sign-on answers 302 to a login page: the message says so
    (redirects are not followed), and the state token in that URL stays out of the output."""
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "{live_server.url}/sso"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/sso: status 302 Found to "
        "https://sso.example.com/login?state=[*][*][*]&next=[*][*][*] (expected 200; redirects "
        "are not followed)"])
    assert "st-8c1d5e0f77a2" not in result.stdout.str()


def test_a_compressed_answer_nobody_asked_for_is_named_not_shown_as_bytes(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "{live_server.url}/gzipped"
response = ["status"]
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/gzipped: the answer is compressed (Content-Encoding: gzip) though "
        "the request accepted only uncompressed answers (Accept-Encoding: identity)"])


@pytest.mark.parametrize(("query", "shown", "message", "escaped"), [
    ("nested?depth=950", "nested?depth=***", "the answer is JSON nested too deeply to read",
     "RecursionError"),
    ("nested?depth=100000", "nested?depth=***", "the answer is JSON nested too deeply to read",
     "RecursionError"),
    ("digits?n=5000", "digits?n=***", "the answer's JSON cannot be read: an integer of 5000 "
     "digits (at most 4300 are read)", "ValueError"),
])
def test_json_python_cannot_read_fails_the_response_keys_naming_the_url(
        pytester: pytest.Pytester, live_server: LiveServer, query: str, shown: str,
        message: str, escaped: str) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.unreadable]
http = "{live_server.url}/{query}"
response = ["score"]
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"{live_server.url}/{shown}: {message}"])
    result.stdout.no_fnmatch_line(f"*{escaped}*")


def test_a_bad_request_body_is_reported_with_its_status(pytester: pytest.Pytester,
                                                        live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.predict]
http = "{live_server.url}/predict"
json = {{ plan = "pro" }}
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*: status 422 Unprocessable*(expected 200)"])


def test_a_closed_port_is_an_error_criterion_saying_connection_refused(
        pytester: pytest.Pytester, xdist_args: list[str], closed_port: int) -> None:
    port = closed_port
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "http://127.0.0.1:{port}/health"
requests = 3
expect = {{ p95_ms = "<= 200", errors = "== 0" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", *xdist_args)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [f"http://127.0.0.1:{port}/health: connection refused (3 of 3 probes)"])
    statuses = {name: c["status"] for name, c in report(pytester).items()}
    assert statuses == {"status": "error", "p95_ms": "error", "errors": "error"}


def test_a_host_that_does_not_resolve_is_an_error_within_the_timeout(
        pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.deployment.health]
http = "http://churn-model.invalid/health"
requests = 2
timeout = "1 s"
""")
    started = time.perf_counter()
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    elapsed = time.perf_counter() - started
    result.assert_outcomes(failed=1)
    # a resolver that fails fast says so; one that stalls is cut off by the deadline
    assert re.search(r"http://churn-model\.invalid/health: (cannot resolve host "
                     r"'churn-model\.invalid'|no answer within 1 s) \(2 of 2 probes\)",
                     result.stdout.str())
    criteria = report(pytester)
    assert criteria["status"]["status"] == "error"
    # the probes' own time, as the report records it (pytest's start-up is not the deadline's)
    assert sum(float(c["duration_s"]) for c in criteria.values()) < 4.0
    assert elapsed < 60


def test_an_endpoint_that_does_not_answer_in_time_ends_within_requests_x_timeout(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.stuck]
http = "{live_server.url}/slow?ms=4000"
requests = 2
timeout = "200 ms"
expect = {{ p95_ms = "<= 100" }}
""")
    started = time.perf_counter()
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    elapsed = time.perf_counter() - started
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [f"{live_server.url}/slow?ms=***: no answer within 200 ms (2 of 2 probes)"])
    criteria = report(pytester)
    assert {c["status"] for c in criteria.values()} == {"error"}
    # 2 x 200 ms plus grace, well below the server's 4 s (the probes' time, as recorded)
    assert sum(float(c["duration_s"]) for c in criteria.values()) < 3.5
    assert elapsed < 60


def test_some_timeouts_count_as_errors_and_at_the_timeout_in_latency(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.stalls]
http = "{live_server.url}/flaky?every=2&slow_ms=1500"
requests = 4
timeout = "300 ms"
expect = {{ errors = "<= 50%", p95_ms = "<= 100", p50_ms = "<= 250" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*/flaky?every=***&slow_ms=***: p95 3* ms over 4 requests (2 timed out, counted at "
        "300 ms), expected <= 100"])
    criteria = report(pytester)
    assert criteria["errors"]["observed"] == 0.5
    assert "no answer within 300 ms x2" in criteria["errors"]["message"]  # type: ignore[operator]


def test_the_url_password_is_masked_in_every_message(pytester: pytest.Pytester,
                                                     closed_port: int) -> None:
    port = closed_port
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "http://ops:hunter2@127.0.0.1:{port}/health"
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"http://***:***@127.0.0.1:{port}/health: connection refused"])
    assert "hunter2" not in result.stdout.str()
    assert "hunter2" not in (pytester.path / "report.json").read_text()


def test_a_percent_encoded_user_and_password_are_sent_decoded_and_never_shown(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    """The docs say to write @ as %40 in a password; basic auth carries the password itself,
    and its base64 form is as secret as the password (a debug page echoes it back)."""
    project(pytester, f"""
[tool.mlfunnel.deployment.debug]
http = "http://ops%40corp:p%40ss%2Fw0rd-9@127.0.0.1:{live_server.port}/echo"
response = ["status"]
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-v")
    result.assert_outcomes(failed=1)
    sent = live_server.seen_headers[0]["authorization"]
    assert sent == "Basic " + base64.b64encode(b"ops@corp:p@ss/w0rd-9").decode()
    result.stdout.fnmatch_lines([
        f"http://***:***@127.0.0.1:{live_server.port}/echo: the answer is not JSON "
        "('Authorization: Basic [*][*][*]\\n*')"])
    for shown in (result.stdout.str(), (pytester.path / "report.json").read_text()):
        assert sent.split()[1] not in shown
        assert "p@ss/w0rd-9" not in shown


def test_a_redirect_to_a_location_that_is_not_a_url_says_so(pytester: pytest.Pytester,
                                                           live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "{live_server.url}/moved"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/moved: status 301 Moved Permanently to a Location that is not a "
        "URL (expected 200; redirects are not followed)"])
    assert "tk-9a8b7c6d" not in result.stdout.str()


def test_json_that_is_not_utf8_says_so_rather_than_not_json(pytester: pytest.Pytester,
                                                          live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "{live_server.url}/latin1"
response = ["status"]
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"{live_server.url}/latin1: the answer is not UTF-8 text (byte 0xe9 at position 15), "
        "as JSON must be"])


def test_https_to_a_plain_http_port_says_what_it_may_mean(pytester: pytest.Pytester,
                                                          live_server: LiveServer) -> None:
    project(pytester, f"""
[tool.mlfunnel.deployment.health]
http = "https://127.0.0.1:{live_server.port}/fast"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"https://127.0.0.1:{live_server.port}/fast: TLS error: * (is it a plain HTTP server? "
        "its URL starts with http://)"])


def test_a_token_written_as_the_url_user_is_never_shown_in_its_basic_auth_form(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    """https://TOKEN@host is how some services take a token: the header sent is the base64 of
    'TOKEN:', which decodes to the token as easily."""
    project(pytester, f"""
[tool.mlfunnel.deployment.debug]
http = "http://tok-user-5e4d3c2b@127.0.0.1:{live_server.port}/echo"
response = ["status"]
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-v")
    result.assert_outcomes(failed=1)
    sent = live_server.seen_headers[0]["authorization"]
    assert sent == "Basic " + base64.b64encode(b"tok-user-5e4d3c2b:").decode()
    result.stdout.fnmatch_lines([
        f"http://***@127.0.0.1:{live_server.port}/echo: the answer is not JSON "
        "('Authorization: Basic [*][*][*]\\n*')"])
    for shown in (result.stdout.str(), (pytester.path / "report.json").read_text()):
        assert sent.split()[1] not in shown


@pytest.mark.parametrize(("checks", "message"), [
    ('http = "ftp://example.com/x"',
     "tool.mlfunnel.deployment.bad.http: expected an http:// or https:// URL, got "
     "'ftp://example.com/x'"),
    ('http = "http://127.0.0.1:1/x"\nexpect = { p90_ms = "<= 5" }',
     "tool.mlfunnel.deployment.bad.expect.p90_ms: unknown key; did you mean 'p99_ms'? (allowed: p50_ms, p95_ms, "
     "p99_ms, errors)"),
    ('http = "http://127.0.0.1:1/x"\nexpect = { errors = "<= 5" }',
     "tool.mlfunnel.deployment.bad.expect: errors is the share of failed probes: write e.g. "
     "'<= 1%' or '== 0', not '<= 5'"),
    ('http = "http://127.0.0.1:1/x"\nexpect = { p95_ms = "<= 5%" }',
     "tool.mlfunnel.deployment.bad.expect: p95_ms is milliseconds*"),
    ('http = "http://127.0.0.1:1/x"\ntimeout = "soon"',
     "tool.mlfunnel.deployment.bad.timeout: not a duration: 'soon'*"),
    ('http = "http://127.0.0.1:1/x"\ntimeout = "0 s"',
     "tool.mlfunnel.deployment.bad.timeout: must be more than 0 seconds, got '0 s'"),
    ('http = "http://127.0.0.1:1/x"\ntimeout = 2',
     "tool.mlfunnel.deployment.bad.timeout: a duration needs a unit: '2 s'?"),
    ('http = "http://127.0.0.1:1/x"\nrequests = 0',
     "tool.mlfunnel.deployment.bad.requests: *greater than or equal to 1*"),
    ('http = "http://127.0.0.1:1/x"\nmethod = "GET"\njson = { a = 1 }',
     "tool.mlfunnel.deployment.bad: json: a GET request carries no body*"),
    ('http = "http://127.0.0.1:1/x"\nmethod = "FETCH"',
     "tool.mlfunnel.deployment.bad.method: *"),
    ('http = "http://127.0.0.1:1/x"\nstatus = 999',
     "tool.mlfunnel.deployment.bad.status: expected an HTTP status code (100-599)*"),
    ('http = "${MLFUNNEL_UNSET_URL}/health"',
     "tool.mlfunnel.deployment.bad.http: environment variable MLFUNNEL_UNSET_URL is not set*"),
    ('http = "http://[::1/health"',
     "tool.mlfunnel.deployment.bad.http: the URL's host or port cannot be read (a port is a "
     "number such as :8000; an IPv6 address is written in brackets: http://[[]::1]:8000/)"),
    ('http = "http://127.0.0.1:-1/health"',
     "tool.mlfunnel.deployment.bad.http: the URL's host or port cannot be read*"),
])
def test_a_bad_http_config_stops_the_run_naming_the_key(
        pytester: pytest.Pytester, checks: str, message: str) -> None:
    project(pytester, f"[tool.mlfunnel.deployment.bad]\n{checks}\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pyproject.toml: {message}"])
    assert "Traceback" not in result.stderr.str()


def test_percentiles_interpolate_like_numpy() -> None:
    rng = np.random.default_rng(7)
    for size in (1, 2, 5, 20, 101):
        values = [float(v) for v in rng.gamma(2.0, 30.0, size)]
        for q in (50.0, 95.0, 99.0):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)),
                                                          rel=1e-12)

"""Metrics from Prometheus text exposition (real prometheus_client output) and JSON over HTTP."""

from __future__ import annotations

import json
import sys

import pytest
from live_server import LiveServer, closed_port, live_server
from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile

__all__ = ["closed_port", "live_server"]

RATIO = 'http_requests_total{code=~"5.."} / http_requests_total'


def project(pytester: pytest.Pytester, source: str, checks: str) -> None:
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
funnel = ["deployment"]

[tool.mlfunnel.sources]
service = {source}

{checks}
""")


def report(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def traffic(server: LiveServer, ok: int, errors: int) -> None:
    server.count(200, "/predict", ok)
    if errors:
        server.count(500, "/predict", errors)
        server.count(503, "/health", 0)


def test_the_5xx_share_is_a_ratio_of_two_selectors(pytester: pytest.Pytester,
                                                   live_server: LiveServer,
                                                   xdist_args: list[str]) -> None:
    traffic(live_server, ok=97, errors=3)
    project(pytester, f'{{ url = "{live_server.url}/metrics" }}', f"""
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = {{ '{RATIO}' = "<= 1%" }}

[tool.mlfunnel.deployment.budget]
metrics = "service"
expect = {{ '{RATIO}' = "<= 5%", 'http_requests_total{{code="200"}}' = "== 97" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", *xdist_args)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([f"{RATIO} 3%, expected <= 1%"])
    data = json.loads((pytester.path / "report.json").read_text())
    observed = {c["id"].split("::")[2]: c["observed"] for g in data["gates"]
                for c in g["criteria"] if "5.." in c["id"]}
    assert observed == {"errors": pytest.approx(0.03), "budget": pytest.approx(0.03)}


def test_selectors_use_all_four_label_matchers(pytester: pytest.Pytester,
                                               live_server: LiveServer) -> None:
    live_server.count(200, "/predict", 40)
    live_server.count(200, "/health", 10)
    live_server.count(404, "/nope", 2)
    live_server.count(500, "/predict", 1)
    project(pytester, f'{{ url = "{live_server.url}/metrics" }}', """
[tool.mlfunnel.deployment.traffic]
metrics = "service"

[tool.mlfunnel.deployment.traffic.expect]
'http_requests_total{code!="200"}' = "== 3"
'http_requests_total{path!~"/health|/nope"}' = "== 41"
'http_requests_total{code=~"2..", path="/predict"}' = "== 40"
'http_requests_total' = "== 53"
""")
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=4)


def test_no_5xx_series_yet_is_a_zero_share(pytester: pytest.Pytester,
                                           live_server: LiveServer) -> None:
    traffic(live_server, ok=20, errors=0)
    project(pytester, f'{{ url = "{live_server.url}/metrics" }}', f"""
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = {{ '{RATIO}' = "<= 1%" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    assert next(iter(report(pytester).values()))["observed"] == 0.0


def test_a_typo_in_the_metric_name_fails_listing_the_metrics_there(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    traffic(live_server, ok=5, errors=0)
    project(pytester, f'{{ url = "{live_server.url}/metrics" }}', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { 'http_request_total{code=~"5.."} / http_requests_total' = "<= 1%" }
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "http_request_total{code=~\"5..\"} / http_requests_total: no such metric in service "
        f"({live_server.url}/metrics) (metrics there: http_requests_created, "
        "http_requests_total)"])
    assert next(iter(report(pytester).values()))["status"] == "failed"


def test_a_typo_in_a_label_name_is_an_error_not_a_silent_zero(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    traffic(live_server, ok=5, errors=1)
    project(pytester, f'{{ url = "{live_server.url}/metrics" }}', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { 'http_requests_total{cod=~"5.."} / http_requests_total' = "<= 1%" }
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "http_requests_total{cod=~\"5..\"}: no http_requests_total series has a label 'cod' in "
        f"service ({live_server.url}/metrics) (labels: code, path)"])
    assert next(iter(report(pytester).values()))["status"] == "error"


def test_a_label_typo_on_a_series_with_many_labels_lists_a_few_of_them(
        pytester: pytest.Pytester) -> None:
    labels = ",".join(f'l{i:02d}="v"' for i in range(40))
    (pytester.path / "service.prom").write_text(
        f"# TYPE wide_total counter\nwide_total{{{labels}}} 1\n")
    project(pytester, '"service.prom"', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { 'wide_total{cod="5"}' = "<= 1" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "wide_total{cod=\"5\"}: no wide_total series has a label 'cod' in service "
        "(service.prom) (labels: l00, l01, l02, l03, l04, l05, l06, l07, l08, l09, l10, l11 "
        "and 28 more)"])


@pytest.mark.parametrize(("name", "message"), [
    ("http_requests_total{code=5}",
     "'http_requests_total{code=5}': cannot read the label matchers at 'code=5'*"),
    ('http_requests_total{code=~"5(("}', "*invalid regex '5(('*"),
    ("rate(http_requests_total[5m])",
     "'rate(http_requests_total[[]5m])' is not a series selector*"),
    ("a / b / c", "'a / b / c': write one selector, or a ratio of two (A / B)"),
])
def test_a_malformed_selector_is_an_error_saying_how_to_write_it(
        pytester: pytest.Pytester, live_server: LiveServer, name: str, message: str) -> None:
    traffic(live_server, ok=5, errors=0)
    project(pytester, f'{{ url = "{live_server.url}/metrics" }}', f"""
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = {{ '{name}' = "<= 1%" }}
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])


def test_a_ratio_over_nothing_counted_is_an_error(pytester: pytest.Pytester,
                                                  live_server: LiveServer) -> None:
    live_server.count(200, "/predict", 0)  # the series exists, at 0
    project(pytester, f'{{ url = "{live_server.url}/metrics" }}', f"""
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = {{ '{RATIO}' = "<= 1%" }}
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"{RATIO}: the denominator http_requests_total is 0 in service*(nothing counted yet), "
        "so the ratio is undefined"])


def test_openmetrics_answers_are_parsed_too(pytester: pytest.Pytester,
                                            live_server: LiveServer) -> None:
    traffic(live_server, ok=199, errors=1)
    project(pytester, f'{{ url = "{live_server.url}/metrics/openmetrics" }}', f"""
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = {{ '{RATIO}' = "<= 1%", 'http_requests_total' = "== 200" }}
""")
    pytester.runpytest("--funnel").assert_outcomes(passed=2)


def test_a_prom_file_written_by_prometheus_client_is_read(pytester: pytest.Pytester) -> None:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests", ["code"], registry=registry)
    requests.labels("200").inc(990)
    requests.labels("502").inc(10)
    Gauge("model_age_days", "Days since training", registry=registry).set(12)
    (pytester.path / "ops").mkdir()
    write_to_textfile(str(pytester.path / "ops" / "service.prom"), registry)
    project(pytester, '"ops/service.prom"', f"""
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = {{ '{RATIO}' = "<= 1%", model_age_days = "<= 30" }}
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=2)


def test_a_counter_exposed_without_total_is_read_by_the_name_it_is_exposed_under(
        pytester: pytest.Pytester) -> None:
    # text format 0.0.4 allows it; Prometheus stores the series as written, though
    # prometheus_client's parser would rename them http_requests_total
    (pytester.path / "service.prom").write_text(
        "# HELP http_requests Requests\n# TYPE http_requests counter\n"
        'http_requests{code="200"} 990\nhttp_requests{code="502"} 10\n'
        "# TYPE jobs_total counter\njobs_total 3\n")
    project(pytester, '"service.prom"', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { 'http_requests{code=~"5.."} / http_requests' = "< 1%", jobs_total = "== 3" }

[tool.mlfunnel.deployment.renamed]
metrics = "service"
expect = { http_requests_total = ">= 1" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        'http_requests{code=~"5.."} / http_requests 1%, expected < 1%',
        "http_requests_total: no such metric in service (service.prom) (metrics there: "
        "http_requests, jobs_total)*"])


def test_a_missing_prom_file_is_an_error_naming_it(pytester: pytest.Pytester) -> None:
    project(pytester, '"ops/service.prom"', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { up = "== 1" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["service (ops/service.prom): file not found*"])


def test_without_prometheus_client_the_error_names_the_extra(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    (pytester.path / "service.prom").write_text("up 1\n")
    project(pytester, '"service.prom"', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { up = "== 1" }
""")
    for module in [m for m in sys.modules if m.startswith("prometheus_client")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "service (service.prom): reading Prometheus metrics needs prometheus_client: "
        "pip install 'pytest-mlfunnel[prometheus]'"])


def test_text_that_is_not_the_exposition_format_is_an_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "service.prom").write_text("this is { not metrics\n")
    project(pytester, '"service.prom"', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { up = "== 1" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["service (service.prom): not valid Prometheus text exposition*"])


def test_json_metrics_over_http_become_dotted_names(pytester: pytest.Pytester,
                                                    live_server: LiveServer) -> None:
    project(pytester, f'"{live_server.url}/metrics.json"', """
[tool.mlfunnel.deployment.dashboard]
metrics = "service"
expect = { requests = ">= 700", users = ">= 10", "latency.p95_ms" = "<= 80" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["latency.p95_ms 84.5, expected <= 80"])


def test_compressed_metrics_nobody_asked_for_are_an_error_naming_the_encoding(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f'"{live_server.url}/gzipped"', """
[tool.mlfunnel.deployment.dashboard]
metrics = "service"
expect = { requests = ">= 1" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"service ({live_server.url}/gzipped): the answer is compressed (Content-Encoding: "
        "gzip) though the request accepted only uncompressed answers (Accept-Encoding: "
        "identity)"])


@pytest.mark.parametrize(("query", "shown", "message", "escaped"), [
    ("nested?depth=950", "nested?depth=***", "the JSON is nested too deeply to read",
     "RecursionError"),
    ("nested?depth=100000", "nested?depth=***", "the JSON is nested too deeply to read",
     "RecursionError"),
    ("digits?n=5000", "digits?n=***", "the answer's JSON cannot be read: an integer of 5000 "
     "digits (at most 4300 are read)", "ValueError"),
])
def test_json_metrics_python_cannot_read_are_an_error_naming_the_url(
        pytester: pytest.Pytester, live_server: LiveServer, query: str, shown: str,
        message: str, escaped: str) -> None:
    project(pytester, f'"{live_server.url}/{query}"', """
[tool.mlfunnel.deployment.dashboard]
metrics = "service"
expect = { requests = ">= 700" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"service ({live_server.url}/{shown}): {message}"])
    result.stdout.no_fnmatch_line(f"*{escaped}*")


def test_an_answer_that_is_neither_prometheus_nor_json_is_an_error(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f'"{live_server.url}/text"', """
[tool.mlfunnel.deployment.dashboard]
metrics = "service"
expect = { requests = ">= 700" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"service ({live_server.url}/text): answered text/html; charset=utf-8; expected "
        "Prometheus text exposition (text/plain; version=0.0.4), OpenMetrics or JSON"])


def test_an_unreachable_metrics_endpoint_is_an_error(pytester: pytest.Pytester,
                                                     closed_port: int) -> None:
    port = closed_port
    project(pytester, f'{{ url = "http://scraper:s3cret@127.0.0.1:{port}/metrics" }}', f"""
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = {{ '{RATIO}' = "<= 1%" }}
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"service (http://***:***@127.0.0.1:{port}/metrics): connection refused"])
    assert "s3cret" not in result.stdout.str()


def test_a_metrics_endpoint_answering_an_error_status_is_an_error(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    project(pytester, f'"{live_server.url}/status/503"', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { up = "== 1" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["service (*/status/503): HTTP 503 Service Unavailable"])


def test_a_metrics_endpoint_that_redirects_says_where_to(pytester: pytest.Pytester,
                                                        live_server: LiveServer) -> None:
    project(pytester, f'"{live_server.url}/sso"', """
[tool.mlfunnel.deployment.sso]
metrics = "service"
expect = { up = "== 1" }
""")
    (pytester.path / "pyproject.toml").write_text((pytester.path / "pyproject.toml").read_text(
    ) + f"""
[tool.mlfunnel.deployment.moved]
metrics = "{live_server.url}/moved"
expect = {{ up = "== 1" }}
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "service (*/sso): HTTP 302 Found to https://sso.example.com/login?state=[*][*][*]&"
        "next=[*][*][*] (redirects are not followed)",
        "*/moved: HTTP 301 Moved Permanently to a Location that is not a URL (redirects are "
        "not followed)"])


def test_a_slow_metrics_endpoint_is_cut_off_at_the_source_timeout(
        pytester: pytest.Pytester, live_server: LiveServer) -> None:
    slow = f"{live_server.url}/slow?ms=3000"
    project(pytester, f'{{ url = "{slow}", options = {{ timeout = "200 ms" }} }}', """
[tool.mlfunnel.deployment.dashboard]
metrics = "service"
expect = { requests = ">= 700" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["service (*/slow?ms=***): no answer within 200 ms"])


def test_regex_selectors_with_a_star_work_on_a_prom_file(pytester: pytest.Pytester) -> None:
    """A ``*`` in a regex is not the metrics kind's one-level wildcard."""
    (pytester.path / "service.prom").write_text(
        '# TYPE http_requests_total counter\n'
        'http_requests_total{code="200",path="/a\\"b"} 96\n'
        'http_requests_total{code="503",path="/a"} 4\n')
    project(pytester, '"service.prom"', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { 'http_requests_total{code=~"5.*"} / http_requests_total' = "<= 5%", 'http_requests_total{path="/a\\"b"}' = "== 96" }
""")
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=2)


def test_a_backtracking_regex_on_a_long_label_value_answers_at_once(
        pytester: pytest.Pytester) -> None:
    """``(a+)+$`` takes exponential time in a backtracking engine on 40 a's and a '!'; RE2
    (Prometheus' own syntax) answers in linear time, matching the whole value."""
    long_value = "a" * 40 + "!"
    (pytester.path / "service.prom").write_text(
        "# TYPE reqs_total counter\n"
        f'reqs_total{{path="{long_value}"}} 3\n'
        f'reqs_total{{path="{"a" * 40}"}} 5\n'
        'reqs_total{path="line\\nbreak"} 7\n')
    project(pytester, '"service.prom"', """
[tool.mlfunnel.deployment.errors]
metrics = "service"

[tool.mlfunnel.deployment.errors.expect]
'reqs_total{path=~"(a+)+$"}' = "== 5"
'reqs_total{path!~"(a+)+"}' = "== 10"
'reqs_total{path=~"line.break"}' = "== 7"
'reqs_total{path=~"a+!|line"}' = "== 3"
""")
    result = pytester.runpytest_subprocess("--funnel", "-v", timeout=120)
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(("pattern", "problem"), [
    ("5(?=0)", "invalid perl operator: (?="),
    ("(5)\\\\1", "invalid escape sequence: \\1"),
    ("5)|(0", "unexpected ): 5)|(0"),
])
def test_a_regex_re2_refuses_is_an_error_naming_the_syntax(
        pytester: pytest.Pytester, pattern: str, problem: str) -> None:
    (pytester.path / "service.prom").write_text(
        '# TYPE http_requests_total counter\nhttp_requests_total{code="500"} 4\n')
    project(pytester, '"service.prom"', f"""
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = {{ 'http_requests_total{{code=~"{pattern}"}}' = "<= 1" }}
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*invalid regex '*': {problem} (selectors use RE2 syntax, as Prometheus "
        "does: no lookarounds or backreferences)"])


def test_an_option_a_metrics_url_does_not_have_is_named(pytester: pytest.Pytester,
                                                        live_server: LiveServer) -> None:
    """Headers given as options were sent nowhere, and the check ran without them."""
    traffic(live_server, ok=5, errors=0)
    project(pytester, f'{{ url = "{live_server.url}/metrics", options = {{ headers = '
                      '{ Authorization = "Bearer abc" } } }', """
[tool.mlfunnel.deployment.errors]
metrics = "service"
expect = { http_requests_total = ">= 1" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "service (http://127.0.0.1:*/metrics): options.headers: not an option of a metrics "
        "URL (its one option is timeout = \"5 s\")"])
    assert "abc" not in result.stdout.str()

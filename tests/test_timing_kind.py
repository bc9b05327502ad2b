"""The ``timing`` kind on callables with a known sleep, through real pytest runs."""

from __future__ import annotations

import json

import pytest

CONFTEST = """
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sleepy_call():
    calls = []

    def call():
        calls.append(1)
        time.sleep(0.010)

    yield call
    with Path("calls.txt").open("a") as handle:
        handle.write(f"{len(calls)}\\n")


@pytest.fixture
def quick_call():
    return lambda: sum(range(100))


@pytest.fixture
def not_callable():
    return {"model": "churn"}


@pytest.fixture
def exiting_call():
    import sys

    return lambda: sys.exit("the model server shut down")


@pytest.fixture
def async_call():
    import asyncio

    async def predict():
        await asyncio.sleep(0.010)

    return predict


@pytest.fixture
def generator_call():
    def predict():
        time.sleep(0.010)
        yield 0.7

    return predict


@pytest.fixture
def failing_call():
    calls = []

    def call():
        calls.append(1)
        if len(calls) == 5:
            raise ValueError("the model file went away\\nsecond line")

    return call
"""


def project(pytester: pytest.Pytester, checks: str) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyprojecttoml("[tool.mlfunnel]\nfunnel = [\"model\"]\n\n" + checks)


def report(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def test_a_known_sleep_is_measured_and_judged(pytester: pytest.Pytester,
                                              xdist_args: list[str]) -> None:
    project(pytester, """
[tool.mlfunnel.model.latency]
timing = "sleepy_call"
warmup = 2
runs = 12
expect = { p50_ms = "<= 5", p95_ms = "<= 2 s", p99_ms = "<= 500", per_second = "<= 101" }
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", *xdist_args)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["sleepy_call: p50 * ms over 12 runs after 2 warm-up, expected <= 5"])
    criteria = report(pytester)
    assert criteria["p50_ms"]["observed"] >= 10.0  # type: ignore[operator]
    assert criteria["per_second"]["observed"] <= 100.0  # type: ignore[operator]
    assert criteria["p95_ms"]["status"] == "passed"
    assert criteria["p50_ms"]["extra"]["runs"] == 12  # type: ignore[index]
    calls = [int(n) for n in (pytester.path / "calls.txt").read_text().split()]
    if not xdist_args:  # one measurement per process: warm-up + runs, once for all criteria
        assert calls == [14]
    else:
        assert all(n in (0, 14) for n in calls) and 14 in calls


def test_throughput_below_the_expectation_fails_in_words(pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.model.throughput]
timing = "sleepy_call"
warmup = 0
runs = 5
expect = { per_second = ">= 1000" }
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["sleepy_call: throughput *[0-9]/s over 5 runs, expected >= 1000"])


def test_a_fast_callable_passes(pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.model.latency]
timing = "quick_call"
runs = 500
expect = { p99_ms = "<= 50", per_second = ">= 100" }
""")
    pytester.runpytest("--funnel").assert_outcomes(passed=2)


def test_a_fixture_that_is_not_callable_is_an_error(pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.model.latency]
timing = "not_callable"
expect = { p95_ms = "<= 50" }
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["fixture 'not_callable' returned dict, expected a "
                                 "zero-argument callable (e.g. lambda: model.predict(row))"])
    assert report(pytester)["p95_ms"]["status"] == "error"


def test_a_callable_that_raises_is_an_error_naming_the_call(pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.model.latency]
timing = "failing_call"
warmup = 2
runs = 10
expect = { p95_ms = "<= 50", p50_ms = "<= 50" }
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["failing_call: call 3 raised ValueError: the model file went away"])
    assert {c["status"] for c in report(pytester).values()} == {"error"}


def test_a_callable_that_calls_sys_exit_is_an_error_naming_the_call(
        pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.model.latency]
timing = "exiting_call"
expect = { p95_ms = "<= 50" }
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["exiting_call: warm-up call 1 raised SystemExit: the model server shut down"])
    result.stdout.no_fnmatch_line("*items.py*")
    assert report(pytester)["p95_ms"]["status"] == "error"


@pytest.mark.parametrize(("fixture", "message"), [
    ("async_call", "async_call: a call returned a coroutine, which runs only when awaited: "
                   "return a plain callable (e.g. lambda: asyncio.run(predict(row)))"),
    ("generator_call", "generator_call: a call returned a generator, which runs only when "
                       "iterated: return a plain callable (e.g. lambda: list(predict(rows)))"),
])
def test_a_callable_whose_call_does_not_run_its_body_is_an_error_not_a_fast_time(
        pytester: pytest.Pytester, fixture: str, message: str) -> None:
    project(pytester, f"""
[tool.mlfunnel.model.latency]
timing = "{fixture}"
runs = 5
expect = {{ p95_ms = "<= 5" }}
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-W",
                                "error::RuntimeWarning")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*never awaited*")
    assert report(pytester)["p95_ms"]["status"] == "error"


def test_an_unknown_fixture_is_a_usage_error_naming_its_key(pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.model.latency]
timing = "predict_one"
expect = { p95_ms = "<= 50" }
""")
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pyproject.toml: tool.mlfunnel.model.latency.timing: "
                                 "no fixture 'predict_one'*"])


@pytest.mark.parametrize(("checks", "message"), [
    ('timing = "sleepy_call"', "tool.mlfunnel.model.bad.expect: missing required key"),
    ('timing = "sleepy_call"\nexpect = {}',
     "tool.mlfunnel.model.bad.expect: give at least one of p50_ms, p95_ms, p99_ms, "
     "per_second*"),
    ('timing = "sleepy_call"\nexpect = { per_second = ">= 5%" }',
     "tool.mlfunnel.model.bad.expect: per_second is calls per second*"),
    ('timing = "sleepy_call"\nexpect = { p90_ms = "<= 5" }',
     "tool.mlfunnel.model.bad.expect.p90_ms: unknown key; did you mean 'p99_ms'? (allowed: p50_ms, p95_ms, p99_ms, "
     "per_second)"),
    ('timing = "model.predict"\nexpect = { p95_ms = "<= 5" }',
     "tool.mlfunnel.model.bad.timing: expected the name of a fixture*"),
    ('timing = "sleepy_call"\nruns = 0\nexpect = { p95_ms = "<= 5" }',
     "tool.mlfunnel.model.bad.runs: *greater than or equal to 1*"),
    ('timing = "sleepy_call"\nexpect = { p95_ms = "fast" }',
     "tool.mlfunnel.model.bad.expect.p95_ms: not a valid expectation: 'fast'*"),
])
def test_a_bad_timing_config_stops_the_run_naming_the_key(
        pytester: pytest.Pytester, checks: str, message: str) -> None:
    project(pytester, f"[tool.mlfunnel.model.bad]\n{checks}\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pyproject.toml: {message}"])


TRACED = """
import coverage
import pytest


@pytest.fixture
def traced_call():
    tracer = coverage.Coverage(data_file=None)
    tracer.start()  # as pytest-cov or `coverage run` would: every call is traced
    yield lambda: sum(range(100))
    tracer.stop()
"""


def test_times_measured_under_a_tracer_say_they_are_inflated(pytester: pytest.Pytester,
                                                             xdist_args: list[str]) -> None:
    pytester.makeconftest(TRACED)
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.latency]
        timing = "traced_call"
        runs = 20
        expect = { p95_ms = "<= 10000", per_second = ">= 1e12" }
    """)
    result = pytester.runpytest_subprocess("--funnel", "--funnel-json=report.json", *xdist_args)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "traced_call: throughput */s over 20 runs after 5 warm-up, expected >= 1e12 -- measured "
        "under a tracer (coverage); times are inflated",
        "      model::latency::per_second: traced_call: throughput */s over 20*",
    ])
    section = " ".join(result.stdout.str().split("= ml funnel =")[1].split())
    assert "expected >= 1e12 -- measured under a tracer (coverage); times are inflated" in (
        section)
    found = report(pytester)
    assert found["p95_ms"]["status"] == "passed"
    assert str(found["p95_ms"]["message"]).endswith(
        "-- measured under a tracer (coverage); times are inflated")
    assert found["p95_ms"]["extra"]["tracer"] == "coverage"  # type: ignore[index]


def test_untraced_times_carry_no_tracer_note(pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.model.latency]
timing = "quick_call"
runs = 20
expect = { p95_ms = "<= 10000" }
""")
    result = pytester.runpytest_subprocess("--funnel", "--funnel-json=report.json")
    assert result.ret == 0
    found = report(pytester)
    assert "tracer" not in str(found["p95_ms"]["message"])
    assert "tracer" not in found["p95_ms"].get("extra", {})  # type: ignore[operator]

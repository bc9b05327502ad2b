"""A plugin's kind, reader or hook that misbehaves gets one line saying what and where, never
an INTERNALERROR, and costs the run none of its outputs."""

from __future__ import annotations

import json

import pytest

KINDS = """
import numpy as np
from pytest_mlfunnel.api import CheckConfig, CheckKind, Criterion, Outcome


class ProbeConfig(CheckConfig):
    probe: str


class ProbeKind(CheckKind[ProbeConfig]):
    key = "probe"
    evidence = "measured"
    config_model = ProbeConfig

    def plan(self, check, ctx):
        def evaluate(ev):
            if check.probe == "crash":
                return {"a": 1}["b"]
            if check.probe == "odd status":
                return Outcome(status="great", observed=1)
            return Outcome(status="passed", observed=np.float64(0.5), expected=np.float64(1),
                           message=np.str_("fine"), extra={"n": np.int64(3)})
        return [Criterion("c", evaluate)]


def pytest_mlfunnel_check_kinds():
    return [ProbeKind]
"""

CONFIG = """
[tool.mlfunnel]
funnel = ["model"]
require = "model"
[tool.mlfunnel.model.numpy]
probe = "numpy"
{extra}
"""


def test_a_crash_in_a_kind_says_where_in_the_kind_it_happened(pytester: pytest.Pytester
                                                               ) -> None:
    pytester.makeconftest(KINDS)
    pytester.makepyprojecttoml(CONFIG.format(extra='[tool.mlfunnel.model.crash]\n'
                                                   'probe = "crash"'))
    result = pytester.runpytest("--funnel")
    assert result.ret == 1
    written = (pytester.path / "conftest.py").read_text().splitlines()
    line = next(n for n, text in enumerate(written, 1) if '["b"]' in text)
    result.stdout.fnmatch_lines([f"KeyError: 'b' (raised at conftest.py:{line}, in evaluate)"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_an_outcome_with_an_unknown_status_is_an_error_naming_the_kind(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(KINDS)
    pytester.makepyprojecttoml(CONFIG.format(extra='[tool.mlfunnel.model.odd]\n'
                                                   'probe = "odd status"'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["TypeError: check kind 'probe' returned an Outcome with "
                                 "status 'great' (one of passed, failed, error)"])
    report = json.loads((pytester.path / "report.json").read_text())
    statuses = {c["id"]: c["status"] for g in report["gates"] for c in g["criteria"]}
    assert statuses["pyproject.toml::model::odd::c"] == "error"


@pytest.mark.xdist_matters
def test_numpy_values_in_an_outcome_travel_to_the_controller(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    pytester.makeconftest(KINDS)
    pytester.makepyprojecttoml(CONFIG.format(extra=""))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", *xdist_args)
    assert result.ret == 0, result.stdout.str()
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    (criterion,) = json.loads((pytester.path / "report.json").read_text())["gates"][0]["criteria"]
    assert (criterion["observed"], criterion["expected"], criterion["message"]) == (
        0.5, 1.0, "fine")
    assert type(criterion["observed"]) is float


def test_a_failing_report_hook_fails_the_run_after_every_output_is_written(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(KINDS + """

def pytest_mlfunnel_report(report):
    raise RuntimeError("chat is down")
""")
    pytester.makepyprojecttoml(CONFIG.format(extra=""))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "--funnel-record=v1")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["stage reached: model (1/1) · required: model · OK",
                                 "error: the pytest_mlfunnel_report hook failed: RuntimeError: "
                                 "chat is down (raised at conftest.py:*, in "
                                 "pytest_mlfunnel_report)"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert json.loads((pytester.path / "report.json").read_text())["reached"] == "model"
    history = (pytester.path / ".mlfunnel" / "history.jsonl").read_text()
    assert json.loads(history)["release"] == "v1"


@pytest.mark.parametrize(("returned", "message"), [
    ('"probe"', "mlfunnel: pytest_mlfunnel_check_kinds returned 'probe': return a list of "
                "CheckKind classes"),
    ("[object]", "mlfunnel: check kind <class 'object'> from pytest_mlfunnel_check_kinds is "
                 "not a CheckKind (from pytest_mlfunnel.api)"),
    ("[Needy]", "mlfunnel: check kind <class 'conftest.Needy'> from "
                "pytest_mlfunnel_check_kinds cannot be made without arguments: TypeError: *"),
])
def test_a_kinds_hook_returning_something_else_is_a_usage_error(
        pytester: pytest.Pytester, returned: str, message: str) -> None:
    pytester.makeconftest(f"""
        from pytest_mlfunnel.api import CheckKind
        class Needy(CheckKind):
            def __init__(self, size):
                pass
        def pytest_mlfunnel_check_kinds():
            return {returned}
    """)
    pytester.makepyprojecttoml(CONFIG.format(extra=""))
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_a_metrics_reader_returning_something_else_is_an_error_of_its_criteria(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        def pytest_mlfunnel_metric_readers():
            return {".weird": lambda spec, rootdir: {"accuracy": 0.9}}
    """)
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.quality]
        metrics = "eval.weird"
        expect = { accuracy = ">= 0.8" }
    """)
    (pytester.path / "eval.weird").write_text("accuracy 0.9\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["eval.weird: its metrics reader returned {'accuracy': 0.9}, "
                                 "not a MetricSet"])


@pytest.mark.parametrize(("hook", "error"), [
    ("return object()", "error: the pytest_mlfunnel_release hook returned <object object at *>: "
                        "return the release's name as a string, or None"),
    ("return 'v\\udcff1'", "error: the pytest_mlfunnel_release hook: the release name 'v\\udcff1' "
                           "is not UTF-8 text (byte 0xff at position 1): name the release in "
                           "UTF-8"),
    ("raise OSError('VERSION file missing')",
     "error: the pytest_mlfunnel_release hook failed: OSError: VERSION file missing (raised at "
     "conftest.py:*, in pytest_mlfunnel_release)"),
])
def test_a_release_hook_that_fails_records_nothing_and_fails_the_run(
        pytester: pytest.Pytester, hook: str, error: str) -> None:
    pytester.makeconftest(KINDS + f"""

def pytest_mlfunnel_release(config):
    {hook}
""")
    pytester.makepyprojecttoml(CONFIG.format(extra=""))
    history = pytester.path / ".mlfunnel" / "history.jsonl"
    history.parent.mkdir()
    kept = '{"schema": "mlfunnel-report/1", "release": "v0", "stage": 1}\n'
    history.write_text(kept)
    result = pytester.runpytest("--funnel", "--funnel-record", "--funnel-json=report.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "stage reached: model (1/1) · required: model · OK",
        "  note: not recorded in .mlfunnel/history.jsonl: the release has no name",
        error,
    ])
    assert history.read_text() == kept
    assert json.loads((pytester.path / "report.json").read_text())["release"] is None


def test_a_release_hook_may_answer_a_number(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(KINDS + """

def pytest_mlfunnel_release(config):
    return 42
""")
    pytester.makepyprojecttoml(CONFIG.format(extra=""))
    result = pytester.runpytest("--funnel", "--funnel-record")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["  note: recorded 42 in .mlfunnel/history.jsonl"])

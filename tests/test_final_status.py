"""A criterion's final status is decided once; ``-rx`` says why a failure did not block."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from dataclasses import dataclass

import pytest

from pytest_mlfunnel.funnel import CriterionStatus, FinalStatus, Required, final_status

EVAL = {"accuracy": 0.86, "f1": 0.71}


def make_project(pytester: pytest.Pytester, config: str) -> None:
    pytester.makepyprojecttoml(textwrap.dedent(config))
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "eval.json").write_text(json.dumps(EVAL))


TWO_GATES = """
[tool.mlfunnel]
funnel = ["data", "model"]
{require}

[tool.mlfunnel.data.volume]
metrics = "reports/eval.json"
expect = {{ f1 = ">= 0.5" }}

[tool.mlfunnel.model.quality]
metrics = "reports/eval.json"
expect = {{ acuracy = ">= 0.8" }}
{extra}
"""


def test_a_failure_above_the_required_gate_names_its_own_error(
        pytester: pytest.Pytester) -> None:
    make_project(pytester, TWO_GATES.format(require='require = "data"', extra=""))
    result = pytester.runpytest("--funnel", "-rx")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines([
        "XFAIL pyproject.toml::model::quality::acuracy - above required gate data: "
        "acuracy: no such metric in reports/eval.json*",
    ])
    assert result.ret == 0


def test_report_only_names_the_criterion_s_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, TWO_GATES.format(require='require = "none"', extra=""))
    result = pytester.runpytest("--funnel", "-rx")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines([
        "XFAIL pyproject.toml::model::quality::acuracy - report only (require = none): "
        "acuracy: no such metric in reports/eval.json*",
    ])
    assert result.ret == 0


def test_a_warning_names_the_criterion_s_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, TWO_GATES.format(require='require = "model"',
                                            extra='severity = "warn"'))
    result = pytester.runpytest("--funnel", "-rx")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines([
        "XFAIL pyproject.toml::model::quality::acuracy - warn: "
        "acuracy: no such metric in reports/eval.json*",
    ])
    assert result.ret == 0


def test_a_waiver_gives_its_reason_then_the_criterion_s_error(
        pytester: pytest.Pytester) -> None:
    make_project(pytester, TWO_GATES.format(
        require='require = "model"',
        extra='waive = { reason = "renamed next sprint", until = "2999-01-31" }'))
    result = pytester.runpytest("--funnel", "-rx")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines([
        "XFAIL pyproject.toml::model::quality::acuracy - waived until 2999-01-31: "
        "renamed next sprint: acuracy: no such metric in reports/eval.json*",
    ])
    assert result.ret == 0


def test_a_blocking_failure_is_not_xfailed(pytester: pytest.Pytester) -> None:
    make_project(pytester, TWO_GATES.format(require='require = "model"', extra=""))
    result = pytester.runpytest("--funnel", "-rx")
    result.assert_outcomes(passed=1, errors=0, failed=1)
    result.stdout.no_fnmatch_line("XFAIL*")
    result.stdout.fnmatch_lines(["*acuracy: no such metric in reports/eval.json*"])
    assert result.ret == 1


@dataclass
class Waiver:
    reason: str
    until: dt.date


TODAY = dt.date(2026, 6, 1)
FUNNEL = ("data", "model", "usage")


def decide(status: CriterionStatus = "failed", message: str = "f1 0.71, expected >= 0.9",
           gate: str = "model", severity: str = "block", waiver: Waiver | None = None,
           required: str | None = "data") -> FinalStatus:
    return final_status(status, message, gate=gate, severity=severity, waiver=waiver,
                        funnel=FUNNEL, required=Required.parse(required), today=TODAY)


def test_only_the_first_line_of_a_long_message_goes_into_the_reason() -> None:
    decided = decide(message="\nquery failed: syntax error\nLINE 1: SELEC\n       ^")
    assert decided.xfail_reason == "above required gate data: query failed: syntax error"
    assert decided.message == "\nquery failed: syntax error\nLINE 1: SELEC\n       ^"


def test_a_passed_criterion_stays_passed_whatever_surrounds_it() -> None:
    decided = decide("passed", "ok", severity="warn", waiver=Waiver("x", TODAY))
    assert (decided.status, decided.xfail_reason, decided.waiver) == ("passed", None, None)


def test_an_expired_waiver_blocks_and_says_so() -> None:
    decided = decide(waiver=Waiver("old debt", dt.date(2026, 5, 31)), required="usage")
    assert decided.status == "failed"
    assert decided.xfail_reason is None
    assert decided.message == ("f1 0.71, expected >= 0.9 (the waiver expired on 2026-05-31: "
                               "old debt)")
    assert decided.waiver == {"reason": "old debt", "until": "2026-05-31", "expired": True}


def test_a_waiver_ending_today_still_waives() -> None:
    decided = decide("error", "boom", waiver=Waiver("known", TODAY), required="usage")
    assert decided.status == "waived"
    assert decided.xfail_reason == "waived until 2026-06-01: known: boom"


def test_an_error_without_a_message_keeps_a_bare_reason() -> None:
    assert decide("error", "").xfail_reason == "above required gate data"


def test_without_a_required_gate_every_failure_blocks() -> None:
    decided = decide(gate="usage", required=None)
    assert (decided.status, decided.xfail_reason) == ("failed", None)

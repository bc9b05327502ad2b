"""The funnel logic is pure Python: gate status, stage reached, verdict."""

from __future__ import annotations

from pytest_mlfunnel.funnel import (
    DEFAULT_FUNNEL,
    CriterionResult,
    Required,
    blocks,
    build_gates,
    decide,
    gate_status,
)

FUNNEL = ["data", "problem", "model", "deployment"]


def result(gate: str, status: str, name: str = "c") -> CriterionResult:
    return CriterionResult(id=f"pyproject.toml::{gate}::{name}", gate=gate, check="chk",
                           kind="metrics", status=status)  # type: ignore[arg-type]


def test_in_the_default_funnel_a_passed_usage_gate_counts_only_after_deployment() -> None:
    # Behaviour, not the constant: with data..organization passed and deployment empty, the
    # stage stops before deployment even though usage passed.
    ran = [result(g, "passed") for g in ("data", "problem", "model", "organization", "usage")]
    gates = build_gates(DEFAULT_FUNNEL, ran, {g.gate: 1 for g in ran})
    verdict = decide(DEFAULT_FUNNEL, Required.parse("usage"), gates, partial=False)
    assert (verdict.stage, verdict.reached, verdict.funnel_ok) == (4, "organization", False)
    assert verdict.reasons[0] == ("gate deployment is empty (nothing configured for it) and "
                                  "the required gate is usage")


def test_gate_status_words() -> None:
    assert gate_status([], 0) == "empty"
    assert gate_status([], 3) == "not run"
    assert gate_status([result("data", "passed")], 1) == "passed"
    assert gate_status([result("data", "passed"), result("data", "warned")], 2) == "warned"
    assert gate_status([result("data", "waived")], 1) == "warned"
    assert gate_status([result("data", "passed"), result("data", "error")], 2) == "failed"
    assert gate_status([result("data", "skipped")], 1) == "not run"


def test_stage_reached_is_the_longest_run_of_passed_gates_from_the_top() -> None:
    results = [result("data", "passed"), result("problem", "warned"), result("model", "failed"),
               result("deployment", "passed")]
    gates = build_gates(FUNNEL, results, {"data": 1, "problem": 1, "model": 1, "deployment": 1})
    verdict = decide(FUNNEL, Required.parse("problem"), gates, partial=False)
    assert verdict.stage == 2
    assert verdict.reached == "problem"
    assert verdict.funnel_ok
    assert verdict.line() == "stage reached: problem (2/4) · required: problem · OK"


def test_an_empty_gate_stops_the_funnel_and_is_named_when_required() -> None:
    results = [result("data", "passed"), result("model", "passed")]
    gates = build_gates(FUNNEL, results, {"data": 1, "model": 1})
    verdict = decide(FUNNEL, Required.parse("model"), gates, partial=False)
    assert verdict.stage == 1
    assert not verdict.funnel_ok
    assert verdict.line() == "stage reached: data (1/4) · required: model · BELOW REQUIRED GATE"
    assert verdict.reasons == [
        "gate problem is empty (nothing configured for it) and the required gate is model"]


def test_no_gate_passed_reads_none() -> None:
    gates = build_gates(FUNNEL, [result("data", "failed")], {"data": 1})
    verdict = decide(FUNNEL, Required.parse("data"), gates, partial=False)
    assert verdict.line().startswith("stage reached: none (0/4)")


def test_a_partial_run_reports_but_does_not_enforce() -> None:
    gates = build_gates(FUNNEL, [result("data", "passed")], {"data": 1, "problem": 2})
    verdict = decide(FUNNEL, Required.parse("model"), gates, partial=True)
    assert verdict.funnel_ok
    assert not verdict.enforced
    assert verdict.line().endswith("· partial run")


def test_require_none_only_reports() -> None:
    gates = build_gates(FUNNEL, [result("data", "failed")], {"data": 1})
    verdict = decide(FUNNEL, Required.parse("none"), gates, partial=False)
    assert verdict.funnel_ok
    assert verdict.line().endswith("REPORT ONLY")


def test_without_require_every_failure_blocks() -> None:
    gates = build_gates(FUNNEL, [result("data", "passed"), result("deployment", "error")],
                        {"data": 1, "deployment": 1})
    verdict = decide(FUNNEL, Required.parse(None), gates, partial=False)
    assert not verdict.funnel_ok
    assert verdict.line() == "stage reached: data (1/4) · required: none set · CRITERIA FAILED"


def test_which_gates_block() -> None:
    assert blocks("model", FUNNEL, Required.parse("model"))
    assert blocks("data", FUNNEL, Required.parse("model"))
    assert not blocks("deployment", FUNNEL, Required.parse("model"))
    assert blocks("deployment", FUNNEL, Required.parse(None))
    assert not blocks("data", FUNNEL, Required.parse("none"))


def test_ordinary_test_failures_make_the_verdict_not_ok() -> None:
    gates = build_gates(FUNNEL, [result("data", "passed")], {"data": 1})
    verdict = decide(FUNNEL, Required.parse("data"), gates, partial=False, tests_failed=2)
    assert verdict.funnel_ok and not verdict.ok
    assert verdict.line().endswith("· OK · 2 tests failed")

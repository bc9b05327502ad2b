"""Funnel semantics: gate status, stage reached, the verdict. Pure Python, no pytest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

DEFAULT_FUNNEL: tuple[str, ...] = (
    "data", "problem", "model", "organization",
    "deployment", "usage", "effectiveness", "maintenance",
)

GATE_QUESTIONS: dict[str, str] = {
    "data": "enough data, of good quality, joinable?",
    "problem": "an important, well-articulated business problem?",
    "model": "is the model well built?",
    "organization": "do politics, economics, culture permit it?",
    "deployment": "deployed well?",
    "usage": "is it used?",
    "effectiveness": "does it move the real-world KPI?",
    "maintenance": "is it maintained well?",
}

CriterionStatus = Literal["passed", "failed", "error", "warned", "waived", "skipped"]
GateStatus = Literal["passed", "warned", "failed", "empty", "not run"]
NOT_PASSED = ("failed", "error")


@dataclass
class CriterionResult:
    id: str
    gate: str
    check: str
    kind: str
    status: CriterionStatus
    evidence: str = "measured"
    observed: Any = None
    expected: str | None = None
    message: str = ""
    duration_s: float = 0.0
    details: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateResult:
    name: str
    status: GateStatus
    passed: int
    total: int
    criteria: list[CriterionResult]
    configured: int  # criteria planned for this gate (0: empty)

    @property
    def first_failure(self) -> CriterionResult | None:
        return next((c for c in self.criteria if c.status in NOT_PASSED), None)


REPORT_ONLY = "none"  # the value of ``require`` that reports without failing the run


@dataclass(frozen=True)
class Required:
    """``require``: a gate the project must reach, report only (``require = "none"``), or not
    set (``gate`` None and not ``report_only``), when every failing criterion blocks."""

    gate: str | None = None
    report_only: bool = False

    @classmethod
    def parse(cls, text: str | None) -> Required:
        """``require`` or ``--funnel-require`` as written (already checked against the funnel)."""
        if text is None:
            return cls()
        if text == REPORT_ONLY:
            return cls(report_only=True)
        return cls(gate=text)

    @property
    def text(self) -> str | None:
        """As the header and the JSON report spell it: the gate, ``"none"``, or None."""
        return REPORT_ONLY if self.report_only else self.gate


@dataclass
class Verdict:
    funnel: list[str]
    required: Required
    stage: int  # number of gates reached
    reached: str | None  # the last gate reached, None when none
    funnel_ok: bool  # the funnel alone: required gate reached / no blocking criterion failed
    partial: bool
    tests_failed: int  # ordinary (non-funnel) tests that failed
    reasons: list[str]
    regressed: bool = False  # --funnel-no-regress: the stage is below the last release's
    regressed_since: str | None = None  # that release

    @property
    def ok(self) -> bool:
        return self.funnel_ok and self.tests_failed == 0 and not self.regressed

    @property
    def fails_run(self) -> bool:
        """Must the funnel itself turn the exit code to 1 (beyond failing items)?"""
        return (self.enforced and not self.funnel_ok) or self.regressed

    @property
    def enforced(self) -> bool:
        """The required gate is enforced: a full run with a real required gate."""
        return self.required.gate is not None and not self.partial

    def line(self) -> str:
        total = len(self.funnel)
        reached = self.reached or "none"
        parts = [f"stage reached: {reached} ({self.stage}/{total})"]
        parts.append(f"required: {self.required.text or 'none set'}")
        if self.partial:
            parts.append("partial run")
        elif self.required.report_only:
            parts.append("REPORT ONLY")
        elif self.required.gate is not None and not self.funnel_ok:
            parts.append("BELOW REQUIRED GATE")
        elif not self.funnel_ok:
            parts.append("CRITERIA FAILED")
        elif not self.regressed:
            parts.append("OK")
        if self.regressed:
            parts.append(f"REGRESSED since {self.regressed_since}")
        if self.tests_failed:
            plural = "s" if self.tests_failed != 1 else ""
            parts.append(f"{self.tests_failed} test{plural} failed")
        return " · ".join(parts)


def gate_index(funnel: Sequence[str], gate: str) -> int:
    return list(funnel).index(gate)


def blocks(gate: str, funnel: Sequence[str], required: Required) -> bool:
    """Does a failure of a criterion in ``gate`` fail the run?"""
    if required.report_only:
        return False
    if required.gate is None:
        return True
    return gate_index(funnel, gate) <= gate_index(funnel, required.gate)


class WaiverTerms(Protocol):
    """A check's ``waive = { reason, until }``."""

    @property
    def reason(self) -> str: ...

    @property
    def until(self) -> dt.date: ...


@dataclass(frozen=True)
class FinalStatus:
    """A criterion's status after severity, waiver and the required gate."""

    status: CriterionStatus
    message: str
    xfail_reason: str | None  # set when pytest shows the failure as xfailed
    waiver: dict[str, Any] | None = None  # the waiver's terms for the report, when it applied


def first_line(text: str) -> str:
    """The first non-blank line of a message: what fits in a one-line reason."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _with_first_line(reason: str, message: str) -> str:
    line = first_line(message)
    return f"{reason}: {line}" if line else reason


def final_status(status: CriterionStatus, message: str, *, gate: str, severity: str,
                 waiver: WaiverTerms | None, funnel: Sequence[str], required: Required,
                 today: dt.date) -> FinalStatus:
    """The one place a criterion's evaluated status becomes its final status.

    In order: a live waiver waives, an expired one is named in the message; ``severity =
    "warn"`` warns; a failure in a gate above the required gate (or with ``require =
    "none"``) keeps its status but pytest shows it as xfailed. The xfail reason ends with
    the message's first line, so ``-rx`` says what went wrong.
    """
    if status not in NOT_PASSED:
        return FinalStatus(status, message, None)
    terms = None
    if waiver is not None:
        live = waiver.until >= today
        terms = {"reason": waiver.reason, "until": waiver.until.isoformat(), "expired": not live}
        if live:
            return FinalStatus("waived", message, _with_first_line(
                f"waived until {waiver.until}: {waiver.reason}", message), terms)
        message = f"{message} (the waiver expired on {waiver.until}: {waiver.reason})".strip()
    if severity == "warn":
        return FinalStatus("warned", message, _with_first_line("warn", message), terms)
    if not blocks(gate, funnel, required):
        reason = ("report only (require = none)" if required.report_only
                  else f"above required gate {required.gate}")
        return FinalStatus(status, message, _with_first_line(reason, message), terms)
    return FinalStatus(status, message, None, terms)


def gate_status(ran: Sequence[CriterionResult], configured: int) -> GateStatus:
    counted = [c for c in ran if c.status != "skipped"]
    if configured == 0 and not counted:
        return "empty"
    if not counted:
        return "not run"
    if any(c.status in NOT_PASSED for c in counted):
        return "failed"
    if any(c.status in ("warned", "waived") for c in counted):
        return "warned"
    return "passed"


def build_gates(funnel: Sequence[str], results: Iterable[CriterionResult],
                configured: dict[str, int]) -> list[GateResult]:
    by_gate: dict[str, list[CriterionResult]] = {g: [] for g in funnel}
    for result in results:
        by_gate.setdefault(result.gate, []).append(result)
    gates = []
    for name in funnel:
        ran = by_gate[name]
        counted = [c for c in ran if c.status != "skipped"]
        gates.append(GateResult(
            name=name,
            status=gate_status(ran, configured.get(name, 0)),
            passed=sum(c.status == "passed" for c in counted),
            total=len(counted),
            criteria=ran,
            configured=max(configured.get(name, 0), len(ran)),
        ))
    return gates


def stage_reached(gates: Sequence[GateResult]) -> int:
    stage = 0
    for gate in gates:
        if gate.status not in ("passed", "warned"):
            break
        stage += 1
    return stage


def decide(funnel: Sequence[str], required: Required, gates: Sequence[GateResult],
           partial: bool, tests_failed: int = 0) -> Verdict:
    stage = stage_reached(gates)
    reached = gates[stage - 1].name if stage else None
    reasons: list[str] = []
    blocking_failures = [
        c for g in gates for c in g.criteria
        if c.status in NOT_PASSED and blocks(g.name, funnel, required)
    ]
    if required.report_only:
        funnel_ok = True
    elif required.gate is None or partial:
        funnel_ok = not blocking_failures
        if blocking_failures:
            n = len(blocking_failures)
            reasons.append(f"{n} blocking criteri{'on' if n == 1 else 'a'} failed")
    else:
        needed = gate_index(funnel, required.gate) + 1
        funnel_ok = stage >= needed
        if not funnel_ok:
            stopper = gates[stage]
            if stopper.status == "empty":
                reasons.append(f"gate {stopper.name} is empty (nothing configured for it) "
                               f"and the required gate is {required.gate}")
            elif stopper.status == "not run":
                reasons.append(f"gate {stopper.name} was not run and the required gate is "
                               f"{required.gate}")
            else:
                reasons.append(f"gate {stopper.name} failed and the required gate is "
                               f"{required.gate}")
            for gate in gates[stage + 1:needed]:
                if gate.status == "empty":
                    reasons.append(f"gate {gate.name} is empty (nothing configured for it) "
                                   f"and the required gate is {required.gate}")
    return Verdict(funnel=list(funnel), required=required, stage=stage, reached=reached,
                   funnel_ok=funnel_ok, partial=partial, tests_failed=tests_failed,
                   reasons=reasons)


def fold_regression(verdict: Verdict, release: str, stage: int, reached: str | None,
                    total: int) -> Verdict:
    """The verdict with ``--funnel-no-regress`` applied against a recorded release.

    A partial run does not enforce it (its stage counts only what ran), as with the
    required gate.
    """
    if verdict.partial or verdict.stage >= stage:
        return verdict
    drop = stage - verdict.stage
    reason = (f"regressed: stage reached {verdict.reached or 'none'} "
              f"({verdict.stage}/{len(verdict.funnel)}) is {drop} stage{'s' if drop != 1 else ''} "
              f"below {release}'s {reached or 'none'} ({stage}/{total}) "
              "(--funnel-no-regress)")
    return replace(verdict, regressed=True, regressed_since=release,
                   reasons=[*verdict.reasons, reason])

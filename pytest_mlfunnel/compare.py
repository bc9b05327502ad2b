"""Two JSON reports side by side: what a change did to the funnel (``mlfunnel compare``).

Pure data in, a ``ReportComparison`` out; ``render/comparison.py`` words it for the terminal and
for a pull-request comment. The standard library and the funnel's rules only: the
``mlfunnel`` command imports it.

HEAD is *worse* than BASE (``--fail-on-regress`` exits 1) when

- the stage reached is lower, or
- BASE's verdict was OK and HEAD's is not, or
- a criterion that blocks HEAD's run (``failed`` or ``error``, in a gate at or below HEAD's
  required gate; every gate when no gate is required; none with ``require = "none"``) was not
  failing in BASE (it passed, was warned or waived, or did not exist).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_mlfunnel.funnel import Required, blocks
from pytest_mlfunnel.history import criterion_key

BAD = ("failed", "error")


class ReportShapeError(ValueError):
    """A report whose gates or criteria are not what ``mlfunnel-report/1`` promises."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: not an mlfunnel report ({problem})")


@dataclass(frozen=True)
class Side:
    """One report, as much as the comparison needs of it."""

    label: str  # the report's name (its path) and its release or commit
    funnel: tuple[str, ...]
    stage: int
    reached: str | None
    required: Required
    ok: bool
    partial: bool
    verdict: str

    @property
    def stage_text(self) -> str:
        return f"{self.reached or 'none'} ({self.stage}/{len(self.funnel)})"


@dataclass(frozen=True)
class GateChange:
    index: int  # 1-based position in HEAD's funnel (BASE's for a gate HEAD no longer has)
    name: str
    base: str | None  # None: the gate is not in that report
    head: str | None


@dataclass(frozen=True)
class CriterionChange:
    id: str
    gate: str
    base_status: str | None  # None: the criterion is new in HEAD (or gone from it)
    head_status: str | None
    base_observed: Any
    head_observed: Any
    expected: str | None
    message: str  # HEAD's message (BASE's for a criterion HEAD no longer has)
    blocking: bool  # does it fail HEAD's run?


@dataclass
class ReportComparison:
    base: Side
    head: Side
    gates: list[GateChange] = field(default_factory=list)
    newly_failing: list[CriterionChange] = field(default_factory=list)
    newly_passing: list[CriterionChange] = field(default_factory=list)
    other_changes: list[CriterionChange] = field(default_factory=list)
    added: int = 0  # criteria only in HEAD that did not newly fail
    removed: list[CriterionChange] = field(default_factory=list)

    @property
    def stage_delta(self) -> int:
        return self.head.stage - self.base.stage

    @property
    def regressions(self) -> list[str]:
        """Why HEAD is worse than BASE, in words; empty when it is not."""
        reasons = []
        if self.stage_delta < 0:
            reasons.append(f"the stage reached fell from {self.base.stage_text} to "
                           f"{self.head.stage_text}")
        if self.base.ok and not self.head.ok:
            reasons.append("the verdict was OK and is no longer")
        blocking = sum(1 for change in self.newly_failing if change.blocking)
        if blocking:
            reasons.append(f"{blocking} blocking criteri{'on' if blocking == 1 else 'a'} "
                           "newly fail" + ("s" if blocking == 1 else ""))
        return reasons

    @property
    def worse(self) -> bool:
        return bool(self.regressions)

    @property
    def unchanged(self) -> bool:
        return not (self.gates or self.newly_failing or self.newly_passing
                    or self.other_changes or self.removed or self.added
                    or self.stage_delta)


def compare_reports(base: Mapping[str, Any], head: Mapping[str, Any],
                    base_name: str = "base", head_name: str = "head") -> ReportComparison:
    """Compare two ``mlfunnel-report/1`` documents (already checked for their schema).

    ``base_name`` and ``head_name`` (their paths) name the reports in the output and in a
    ``ReportShapeError``.
    """
    comparison = ReportComparison(_side(base, base_name), _side(head, head_name))
    base_gates = _gates(base, base_name)
    head_gates = _gates(head, head_name)
    for side, name in ((comparison.base, base_name), (comparison.head, head_name)):
        if side.stage > len(side.funnel):  # "none (5/2)", and HEAD "better" for it
            raise ReportShapeError(name, f"stage {side.stage} is past the funnel's "
                                   f"{len(side.funnel)} gates")
    order = list(comparison.head.funnel) + [g for g in comparison.base.funnel
                                            if g not in comparison.head.funnel]
    order += [g for g in list(head_gates) + list(base_gates) if g not in order]
    for index, name in enumerate(order, start=1):
        before = _status(base_gates.get(name))
        after = _status(head_gates.get(name))
        if before != after:
            comparison.gates.append(GateChange(index, name, before, after))

    blocking_gates = _blocking_gates(comparison.head)
    base_criteria = _criteria(base_gates, base_name)
    head_criteria = _criteria(head_gates, head_name)
    for key, (gate, criterion, shown) in head_criteria.items():
        old = base_criteria.get(key)
        old_criterion = old[1] if old else None
        change = CriterionChange(
            id=shown or (old[2] if old else None) or key, gate=gate,
            base_status=_text(old_criterion.get("status")) if old_criterion else None,
            head_status=_text(criterion.get("status")),
            base_observed=old_criterion.get("observed") if old_criterion else None,
            head_observed=criterion.get("observed"),
            expected=_text(criterion.get("expected")),
            message=str(criterion.get("message") or ""),
            blocking=criterion.get("status") in BAD and gate in blocking_gates,
        )
        if change.head_status in BAD and change.base_status not in BAD:
            comparison.newly_failing.append(change)
        elif old_criterion is None:
            comparison.added += 1
        elif change.base_status in BAD and change.head_status == "passed":
            comparison.newly_passing.append(change)
        elif change.base_status != change.head_status:
            comparison.other_changes.append(change)
    for key, (gate, criterion, shown) in base_criteria.items():
        if key not in head_criteria:
            comparison.removed.append(CriterionChange(
                id=shown or key, gate=gate,
                base_status=_text(criterion.get("status")),
                head_status=None, base_observed=criterion.get("observed"), head_observed=None,
                expected=_text(criterion.get("expected")),
                message=str(criterion.get("message") or ""), blocking=False))
    return comparison


def _side(report: Mapping[str, Any], name: str) -> Side:
    funnel = report.get("funnel")
    gates = report.get("gates") or []
    if not isinstance(funnel, list) or not all(isinstance(g, str) for g in funnel):
        funnel = [g.get("name") for g in gates if isinstance(g, Mapping)]
    stage = report.get("stage")
    if not isinstance(stage, int) or isinstance(stage, bool) or stage < 0:
        raise ReportShapeError(name, "no stage (expected a whole number)")
    version = report.get("release") or report.get("commit")
    label = f"{name} ({version})" if version else name
    required = report.get("required")
    return Side(label=str(label), funnel=tuple(str(g) for g in funnel), stage=stage,
                reached=_text(report.get("reached")),
                required=Required.parse(required if isinstance(required, str) else None),
                ok=report.get("ok") is True, partial=report.get("partial") is True,
                verdict=str(report.get("verdict") or ""))


def _gates(report: Mapping[str, Any], name: str) -> dict[str, Mapping[str, Any]]:
    gates: dict[str, Mapping[str, Any]] = {}
    for index, gate in enumerate(report.get("gates") or []):
        if not isinstance(gate, Mapping) or not isinstance(gate.get("name"), str):
            raise ReportShapeError(name, f"gates[{index}] is not a gate (an object with a "
                                   "name)")
        gates[gate["name"]] = gate
    return gates


def _criteria(gates: Mapping[str, Mapping[str, Any]], name: str
              ) -> dict[str, tuple[str, Mapping[str, Any], str | None]]:
    """Criteria by key (``model::quality::f1``, the config file left out), so a report and a
    history line, which keeps only each criterion's key, status and measured number, match.
    A repeated key gets ``#2``, ``#3`` ... so none is lost. The third item is the id the
    report shows (``pyproject.toml::model::quality::f1``), None for a history line's."""
    found: dict[str, tuple[str, Mapping[str, Any], str | None]] = {}
    for gate_name, gate in gates.items():
        criteria = gate.get("criteria")
        if criteria is None and isinstance(gate.get("statuses"), Mapping):
            observed = gate.get("observed")
            numbers = observed if isinstance(observed, Mapping) else {}
            criteria = [{"id": str(key), "status": status, "observed": numbers.get(key),
                         "summary": True} for key, status in gate["statuses"].items()]
        criteria = criteria or []
        if not isinstance(criteria, list):
            raise ReportShapeError(name, f"gate {gate_name!r}: criteria is not a list")
        for index, criterion in enumerate(criteria):
            if not isinstance(criterion, Mapping) or not isinstance(criterion.get("id"), str):
                raise ReportShapeError(name, f"gate {gate_name!r}: criteria[{index}] is not "
                                       "a criterion (an object with an id)")
            first = (criterion["id"] if criterion.get("summary")
                     else criterion_key(gate_name, criterion["id"]))
            key, number = first, 2
            while key in found:
                key = f"{first}#{number}"
                number += 1
            shown = None if criterion.get("summary") else criterion["id"] + key[len(first):]
            found[key] = (gate_name, criterion, shown)
    return found


def _blocking_gates(side: Side) -> set[str]:
    """The gates whose failing criteria fail the run: the funnel's own rule, with a required
    gate the report's funnel does not name read as no required gate."""
    required = side.required
    if required.gate is not None and required.gate not in side.funnel:
        required = Required()
    return {gate for gate in side.funnel if blocks(gate, side.funnel, required)}


def _status(gate: Mapping[str, Any] | None) -> str | None:
    return None if gate is None else _text(gate.get("status"))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def shown(value: Any, limit: int = 80) -> str:
    """An observed value in a few characters: numbers rounded, structures cut short."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {shown(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, Sequence) and not isinstance(value, str):
        text = "[" + ", ".join(shown(v, limit) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

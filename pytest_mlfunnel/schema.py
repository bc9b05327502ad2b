"""The ``mlfunnel-report/1`` schema as pydantic models: what the plugin writes, and what the
``mlfunnel`` command and the history accept back.

``Report.to_dict`` checks every report it writes against ``ReportDocument``; the command
reads a report (``--funnel-json``) or a history line through the same models, so a file that
was edited by hand, cut short or written by something else gets one line naming the field
(``report.json: gates[1].criteria[0].status: ...``) instead of a traceback in a renderer.
Unknown keys are kept: a newer writer may add some.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pytest_mlfunnel.report import SCHEMA

CriterionStatus = Literal["passed", "failed", "error", "warned", "waived", "skipped"]
GateStatus = Literal["passed", "warned", "failed", "empty", "not run"]
Count = Annotated[StrictInt, Field(ge=0, le=10**9)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class CriterionDocument(_Model):
    id: StrictStr
    check: StrictStr
    kind: StrictStr
    status: CriterionStatus
    evidence: StrictStr = "measured"
    observed: Any = None
    expected: StrictStr | None = None
    message: StrictStr = ""
    duration_s: float = Field(default=0.0, ge=0)
    details: list[StrictStr] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("duration_s", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise ValueError("expected a finite number of seconds")
        return float(value)


class GateDocument(_Model):
    name: StrictStr
    status: GateStatus
    passed: Count = 0
    total: Count = 0
    criteria: list[CriterionDocument] | None = None
    statuses: dict[str, StrictStr] | None = None  # history lines: criterion key -> status
    observed: dict[str, Any] | None = None  # history lines: criterion key -> number

    @model_validator(mode="after")
    def _counts(self) -> GateDocument:
        if self.passed > self.total:
            raise ValueError(f"passed ({self.passed}) is more than total ({self.total})")
        return self


class ReportDocument(_Model):
    """A JSON report (``--funnel-json``); a history line is the same without criteria."""

    schema_: StrictStr = Field(alias="schema")
    release: StrictStr | None = None
    stage: Count
    funnel: list[StrictStr] = Field(min_length=1)
    gates: list[GateDocument]
    project: StrictStr = ""
    commit: StrictStr | None = None
    created: StrictStr = ""
    required: StrictStr | None = None
    reached: StrictStr | None = None
    ok: StrictBool = False
    partial: StrictBool = False
    verdict: StrictStr = ""
    reasons: list[StrictStr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _stage_within_funnel(self) -> ReportDocument:
        if self.stage > len(self.funnel):
            raise ValueError(f"stage {self.stage} is past the funnel's {len(self.funnel)} "
                             "gates")
        if self.reached is not None and self.reached not in self.funnel:
            raise ValueError(f"reached {self.reached!r} is not a gate of the funnel")
        names = [gate.name for gate in self.gates]
        if names != self.funnel:  # the writer gives one gate per funnel gate, in order
            raise ValueError(f"the gates ({', '.join(names) or 'none'}) are not the funnel's "
                             f"({', '.join(self.funnel)})")
        return self

    @field_validator("schema_")
    @classmethod
    def _this_schema(cls, value: str) -> str:
        if value != SCHEMA:
            raise ValueError(f"expected {SCHEMA!r}, got {value!r}")
        return value


class HistoryDocument(ReportDocument):
    """One history line: a report without criteria, for a named release."""

    release: StrictStr = Field(min_length=1)


def first_problem(error: ValidationError) -> str:
    """``gates[1].criteria[0].status: Input should be 'passed', ... (got 'x')``."""
    detail = error.errors(include_url=False)[0]
    path = ""
    for part in detail["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part) in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            path += f".{part}" if path else str(part)
    message = str(detail["msg"]).removeprefix("Value error, ")
    if detail["type"] not in ("missing", "value_error") and "input" in detail:
        shown = repr(detail["input"])
        message += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
    return f"{path}: {message}" if path else message


def check_report(data: Any) -> str | None:
    """None when ``data`` is a valid report, else the first problem, naming the field."""
    try:
        ReportDocument.model_validate(data)
    except ValidationError as exc:
        return first_problem(exc)
    return None


def check_history_line(data: Any) -> str | None:
    try:
        HistoryDocument.model_validate(data)
    except ValidationError as exc:
        return first_problem(exc)
    return None

"""The shape every check kind has: a config model, a plan of criteria, an evaluation.

A kind is one module with one ``CheckKind`` subclass, generic in its config::

    class OwnersConfig(CheckConfig):
        owners: ExpectationField
        file: str | None = None

    class OwnersKind(CheckKind[OwnersConfig]):
        key = "owners"               # the key only this kind has
        evidence = "attested"
        config_model = OwnersConfig

        def plan(self, check: OwnersConfig, ctx: PlanContext) -> list[Criterion]:
            def evaluate(ev: EvalContext) -> Outcome: ...
            return [Criterion("owners", evaluate, expected=check.owners.text)]

and one line in ``kinds/__init__.py``'s ``BUILTIN_KINDS`` (third-party kinds return their
class from the ``pytest_mlfunnel_check_kinds`` hook). ``plan`` runs at collection time, on
every xdist worker, and must give the same criteria everywhere; ``evaluate`` runs when the
item runs. The criteria of one check share work through ``ev.per_check(factory)``; checks
share work through ``ev.shared_value(key, factory)``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    ValidationInfo,
    model_validator,
)

from pytest_mlfunnel.context import EvalContext as EvalContext  # re-exported for kinds
from pytest_mlfunnel.context import PlanContext as PlanContext
from pytest_mlfunnel.engines.protocol import Agg
from pytest_mlfunnel.expectations import (
    Expectation,
    ExpectationError,
    duration_seconds,
    format_value,
)
from pytest_mlfunnel.outcome import Outcome
from pytest_mlfunnel.sources.spec import SourceError, SourceSpec, parse_source

Evidence = Literal["measured", "attested"]


# --------------------------------------------------------------------------- field types
def _expectation(value: Any) -> Expectation:
    try:
        return Expectation.parse(value)
    except ExpectationError as exc:
        raise ValueError(str(exc)) from None


def _source(value: Any, info: ValidationInfo) -> SourceSpec:
    context = info.context or {}
    declared: dict[str, SourceSpec] = context.get("sources", {})
    try:
        return parse_source(value, declared, context.get("key_path", ""))
    except SourceError as exc:
        raise ValueError(str(exc)) from None


def _iso_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected an ISO date such as 2027-03-31, got {value!r}")


def share_expectation(value: Expectation, what: str) -> Expectation:
    """An expectation on a share (0 to 1): ``">= 90%"`` or ``">= 0.9"``.

    ``">= 90"`` can never hold for a share and is almost surely meant as a percentage: it is
    refused when the config is read, with the spelling that works.
    """
    if value.unit == "duration" or value.uses_baseline:
        raise ValueError(f"{what} is a share: write e.g. '>= 90%' or '>= 0.9', not "
                         f"{value.text!r}")
    if 0 <= value.value <= 1:
        return value
    if value.unit == "number" and 1 < value.value <= 100:
        raise ValueError(f"{what} is a share: write '{value.op} {format_value(value.value)}%' "
                         f"or '{value.op} {format_value(value.value / 100)}', not "
                         f"{value.text!r}")
    raise ValueError(f"{what} is a share between 0 and 100%, got {value.text!r}")


#: ``">= 0.8"`` parsed into an :class:`Expectation`.
ExpectationField = Annotated[Expectation, PlainValidator(_expectation)]


def flatten_dotted(value: Any) -> Any:
    """TOML dotted keys (``expect.slices.north.r2 = ...``) nest tables: flatten them back."""
    if not isinstance(value, dict):
        return value
    flat: dict[str, Any] = {}
    for key, inner in value.items():
        if isinstance(inner, dict):
            for name, expectation in flatten_dotted(inner).items():
                flat[f"{key}.{name}"] = expectation
        else:
            flat[key] = inner
    return flat


#: ``expect = { accuracy = ">= 0.8", "slices.*.r2" = ">= 0.6" }``: metric name -> expectation,
#: with TOML dotted keys read back as dotted metric names.
MetricExpectations = Annotated[dict[str, ExpectationField], BeforeValidator(flatten_dotted)]
#: A source name from ``[tool.mlfunnel.sources]``, a path, a URL or an inline table.
Source = Annotated[SourceSpec, PlainValidator(_source)]
#: ``"30 days"`` in seconds.
Duration = Annotated[float, PlainValidator(duration_seconds)]
IsoDate = Annotated[dt.date, PlainValidator(_iso_date)]


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str
    until: IsoDate

    @model_validator(mode="after")
    def _reason_given(self) -> Waiver:
        if not self.reason.strip():
            raise ValueError("a waiver needs a reason")
        return self


#: what a failing criterion does: fail its gate, or only warn (checks and marked tests alike)
Severity = Literal["block", "warn"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


class CheckConfig(BaseModel):
    """Keys every check accepts. Kind models subclass it and add their own keys."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    description: str | None = None
    severity: Severity = "block"
    waive: Waiver | None = None


# --------------------------------------------------------------------------- criteria
#: What a criterion runs when its item runs.
Evaluate = Callable[[EvalContext], Outcome]
ConfigT = TypeVar("ConfigT", bound=CheckConfig)


@dataclass
class Criterion:
    """One collected item: ``name`` becomes the last part of the node id."""

    name: str
    evaluate: Evaluate
    fixtures: tuple[str, ...] = ()
    expected: str | None = None  # shown before the run (collect-only, junit properties)
    evidence: Evidence | None = None  # None: the kind's evidence
    #: the aggregates this criterion asks of each table source. The session plans them into
    #: the source's one pass only when the criterion is selected, so ``-k`` and other
    #: deselection shrink the pass (``plan_aggregates`` plans for every run).
    needs: tuple[tuple[SourceSpec, tuple[Agg, ...]], ...] = ()


class CheckKind(Generic[ConfigT]):
    """Base class of a check kind, generic in its config model: subclasses set ``key``,
    ``config_model`` and ``plan``."""

    key: ClassVar[str]
    evidence: ClassVar[Evidence] = "measured"
    config_model: type[ConfigT]

    def plan(self, check: ConfigT, ctx: PlanContext) -> list[Criterion]:
        raise NotImplementedError


#: a time this far ahead of the clock still counts as now (two machines' clocks differ a
#: little); further ahead, a wrong clock or time zone wrote it and no age can be told
CLOCK_SKEW_S = 300.0

_SLUG_RE = re.compile(r"[^A-Za-z0-9_.\-/]+")


def slug(text: str) -> str:
    """A node-id-safe name that ``-k`` can match: letters, digits, ``_ . - /``.

    ``*`` is spelled "any" (``slices.*.r2`` -> ``slices.any.r2``).
    """
    cleaned = _SLUG_RE.sub("-", text.strip().replace("*", "any")).strip("-")
    return cleaned or "item"

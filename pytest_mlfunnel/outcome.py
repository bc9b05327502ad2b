"""What evaluating one criterion produced. Plain data: it travels to the xdist controller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_mlfunnel.expectations import Expectation, Unit, format_value

Status = Literal["passed", "failed", "error"]


class CriterionError(Exception):
    """The criterion could not be evaluated (missing file, unreachable host, bad data).

    Raise it from a check kind with one clear line naming where the problem is; the
    criterion ends as ``error`` and the rest of the run goes on.
    """


@dataclass
class Outcome:
    status: Status
    observed: Any = None  # JSON builtins only (int, float, str, bool, None, list, dict)
    expected: str | None = None
    message: str = ""
    details: list[str] = field(default_factory=list)  # e.g. a capped sample of offending rows
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific numbers for the report

    @classmethod
    def passed(cls, observed: Any = None, expected: str | None = None, message: str = "",
               **extra: Any) -> Outcome:
        return cls("passed", to_builtin(observed), expected, message, extra=to_builtin(extra))

    @classmethod
    def failed(cls, message: str, observed: Any = None, expected: str | None = None,
               details: list[str] | None = None, **extra: Any) -> Outcome:
        return cls("failed", to_builtin(observed), expected, message, list(details or []),
                   to_builtin(extra))

    @classmethod
    def error(cls, message: str, expected: str | None = None) -> Outcome:
        return cls("error", None, expected, message)

    @classmethod
    def compare(cls, label: str, observed: float, expectation: Expectation,
                baseline: float | None = None, unit: Unit | None = None,
                details: list[str] | None = None, **extra: Any) -> Outcome:
        """Compare a number with an expectation and word it: ``accuracy 0.74, expected >= 0.80``."""
        shown_unit: Unit = unit or expectation.unit
        words = f"{label} {format_value(observed, shown_unit)}, expected {expectation.describe_threshold(baseline)}"  # noqa: E501
        if baseline is not None:
            extra.setdefault("baseline", baseline)
        if expectation.holds(observed, baseline):
            return cls.passed(observed, expectation.text, words, **extra)
        return cls.failed(words + scale_hint(observed, expectation), observed, expectation.text,
                          details, **extra)


def scale_hint(observed: float, expectation: Expectation) -> str:
    """`` -- did you mean 90%?`` when a share (0.98) is held to a percentage written as a
    plain number (``>= 90``): no share can ever meet it."""
    if (expectation.unit == "number" and not expectation.uses_baseline
            and isinstance(observed, float) and 0 < observed < 1
            and 1 < expectation.value <= 100):
        return f" -- did you mean {format_value(expectation.value)}%?"
    return ""


def to_builtin(value: Any) -> Any:
    """numpy scalars, Decimals, dates and tuples break xdist's serializer: make them builtins."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, dict):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_builtin(v) for v in value]
    item = getattr(value, "item", None)  # numpy / pyarrow scalars
    if callable(item):
        try:
            return to_builtin(item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)

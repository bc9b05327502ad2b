"""Expectations: ``OP VALUE`` comparisons such as ``">= 0.8"``, ``"<= 5%"``,
``">= baseline + 0.01"``.

Pure Python, no pytest import. VALUE is a number, a percentage (``5%`` is 0.05), a duration
(``30 days``, ``12 h``, ``500 ms`` -- kept in seconds), or baseline arithmetic.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Unit = Literal["number", "percent", "duration"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}

_DURATION_UNITS: dict[str, float] = {
    "ms": 0.001, "msec": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}

#: digits, an underscore only between two of them (``1_000``), as in Python and TOML
_DIGITS = r"\d+(?:_\d+)*"
_NUMBER = rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?\d+)?"
#: the longest duration any key takes: 100 years, in seconds
MAX_DURATION_S = 100 * 365.25 * 86400.0
_EXPECTATION_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")
_BASELINE_RE = re.compile(rf"^baseline(?:\s*([+\-*])\s*({_NUMBER})\s*(%)?)?$", re.IGNORECASE)
_DURATION_RE = re.compile(rf"^({_NUMBER})\s*([a-zA-Z]+)$")
_PERCENT_RE = re.compile(rf"^({_NUMBER})\s*%$")
_NUMBER_RE = re.compile(rf"^{_NUMBER}$")

EXAMPLES = "e.g. '>= 0.8', '<= 5%', '<= 30 days', '>= baseline + 0.01'"


class ExpectationError(ValueError):
    """A string that is not a valid expectation; the message says why."""


def parse_number(text: str) -> float:
    """A finite number written as the grammar above says (``float()`` alone would take
    ``1_000_``, ``nan`` and ``1e999``)."""
    cleaned = text.strip()
    if not _NUMBER_RE.match(cleaned):
        raise ExpectationError(f"not a number: {text!r} (digits with an optional sign, decimal "
                               "point and exponent; _ only between digits, as in 1_000)")
    value = float(cleaned.replace("_", ""))
    if not math.isfinite(value):
        raise ExpectationError(f"number out of range: {text!r} (a finite number, at most "
                               "about 1.8e308)")
    return value


def parse_duration(text: str) -> float:
    """``"30 days"`` -> seconds. Raises ExpectationError for anything else."""
    match = _DURATION_RE.match(text.strip())
    if not match or match.group(2).lower() not in _DURATION_UNITS:
        units = "ms, s, min, h, days, weeks"
        raise ExpectationError(f"not a duration: {text!r} (a number and a unit: {units})")
    seconds = parse_number(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
    if abs(seconds) > MAX_DURATION_S:
        raise ExpectationError(f"duration out of range: {text!r} (at most 100 years)")
    return seconds


def parse_share(value: object) -> float:
    """``"5%"`` -> 0.05, ``0.05`` -> 0.05 (used by keys such as ``min_share``)."""
    if isinstance(value, bool):
        raise ExpectationError(f"not a share: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        match = _PERCENT_RE.match(text)
        if match:
            return parse_number(match.group(1)) / 100.0
        if _NUMBER_RE.match(text):
            return parse_number(text)
    raise ExpectationError(f"not a share: {value!r} (write e.g. '5%' or 0.05)")


@dataclass(frozen=True)
class Expectation:
    """A parsed ``OP VALUE``; ``text`` is what the user wrote, shown back in messages."""

    text: str
    op: str
    value: float
    unit: Unit = "number"
    baseline_op: str | None = None  # None: plain value; "": baseline itself; "+", "-", "*"
    baseline_relative: bool = False  # "baseline + 5%" is 5% of the baseline

    @classmethod
    def parse(cls, raw: object) -> Expectation:
        if isinstance(raw, Expectation):
            return raw
        if not isinstance(raw, str):
            raise ExpectationError(
                f"expected a string such as '>= 0.8', got {type(raw).__name__} {raw!r}"
            )
        text = " ".join(raw.split())
        match = _EXPECTATION_RE.match(text)
        if not match:
            raise ExpectationError(f"not a valid expectation: {raw!r} (OP VALUE, {EXAMPLES})")
        op, rhs = match.group(1), match.group(2)
        base = _BASELINE_RE.match(rhs)
        if base:
            bop, number, percent = base.group(1), base.group(2), base.group(3)
            if bop is None:
                return cls(text, op, 0.0, baseline_op="")
            if percent and bop == "*":
                raise ExpectationError(f"not a valid expectation: {raw!r} ('baseline * N%')")
            return cls(text, op, parse_number(number), baseline_op=bop,
                       baseline_relative=bool(percent))
        if rhs.lower().startswith("baseline"):
            raise ExpectationError(
                f"not a valid expectation: {raw!r} (baseline arithmetic is 'baseline', "
                "'baseline + N', 'baseline - N', 'baseline * N' or 'baseline + N%')"
            )
        percent_match = _PERCENT_RE.match(rhs)
        if percent_match:
            return cls(text, op, parse_number(percent_match.group(1)) / 100.0, unit="percent")
        if _NUMBER_RE.match(rhs):
            return cls(text, op, parse_number(rhs))
        try:
            return cls(text, op, parse_duration(rhs), unit="duration")
        except ExpectationError as exc:
            if "out of range" in str(exc):
                raise
            hint = (" _ goes only between digits, as in 1_000;" if "_" in rhs else "")
            raise ExpectationError(
                f"not a valid expectation: {raw!r} (VALUE must be a number, a percentage, "
                f"a duration or baseline arithmetic;{hint} {EXAMPLES})"
            ) from None

    @property
    def uses_baseline(self) -> bool:
        return self.baseline_op is not None

    def threshold(self, baseline: float | None = None) -> float:
        """The number the observed value is compared with."""
        if self.baseline_op is None:
            return self.value
        if baseline is None:
            raise ExpectationError(f"{self.text!r} needs a baseline, and none was given")
        if self.baseline_op == "":
            return baseline
        if self.baseline_op == "*":
            return baseline * self.value
        delta = baseline * self.value / 100.0 if self.baseline_relative else self.value
        return baseline + delta if self.baseline_op == "+" else baseline - delta

    def holds(self, observed: float, baseline: float | None = None) -> bool:
        if isinstance(observed, float) and math.isnan(observed):
            return False
        return _OPS[self.op](observed, self.threshold(baseline))

    def describe_threshold(self, baseline: float | None = None) -> str:
        """``">= 0.81 (baseline 0.80 + 0.01)"`` -- for messages on baseline expectations."""
        if self.baseline_op is None or baseline is None:
            return self.text
        return f"{self.op} {format_value(self.threshold(baseline))} ({self.text[len(self.op):].strip()}, baseline {format_value(baseline)})"  # noqa: E501


def format_value(value: object, unit: Unit = "number") -> str:
    """Numbers as a person reads them: 0.7400 -> 0.74, 52011 -> 52011, 0.073 as percent -> 7.3%."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        if unit == "percent":
            return f"{_trim(value * 100)}%"
        if unit == "duration":
            return format_duration(float(value))
        if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
            return str(int(value))
        return _trim(float(value))
    return str(value)


def _trim(number: float) -> str:
    if math.isnan(number) or math.isinf(number):
        return str(number)
    if abs(number) >= 1e15:  # 1e308 is not shown with its 309 digits
        return f"{number:.6g}"
    if abs(number) >= 1000:
        return f"{number:.1f}".rstrip("0").rstrip(".")
    text = f"{number:.4g}"
    if "e" in text:
        return text
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_duration(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if abs(seconds) >= size:
            return f"{_trim(seconds / size)} {unit}"
    return f"{_trim(seconds * 1000)} ms"


def duration_seconds(value: Any, example: str = "30 days") -> float:
    """A duration such as ``"30 days"`` or ``"500 ms"`` in seconds. A bare number is refused:
    a unit is required, so ``5`` is never read as seconds by one key and days by another."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration such as '{example}', got {value!r}")
    if isinstance(value, int | float):
        raise ValueError(f"a duration needs a unit: '{value} {example.split()[-1]}'?")
    try:
        return parse_duration(value)
    except ExpectationError as exc:
        raise ValueError(str(exc)) from None

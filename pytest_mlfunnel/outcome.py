"""What evaluating one criterion produced. Plain data: it travels to the xdist controller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pytest_mlfunnel.expectations import Expectation, Unit, format_value

Status = Literal["passed", "failed", "error"]
STATUSES: tuple[Status, ...] = get_args(Status)


class CriterionError(Exception):
    """The criterion could not be evaluated (missing file, unreachable host, bad data).

    Raise it from a check kind with one clear line naming where the problem is; the
    criterion ends as ``error`` and the rest of the run goes on.
    """


#: how long the short reason of a failed source may be in the line every criterion shows
SHORT_REASON = 80


class SourceUnavailable(CriterionError):
    """A source shared by criteria (a file, a database, a server) could not be opened or read.

    It is remembered for the session (see ``sources/failures.py``): the first criterion that
    needs the source carries the full message, every other one a short line pointing at it,
    and nothing tries the source again. ``cause`` (``"data/x.parquet: file not found"``) goes
    to ``extra["cause"]`` of each of them, so reports can show it once with a count.
    """

    def __init__(self, source: str, reason: str, message: str | None = None) -> None:
        self.source = source
        self.reason = reason
        super().__init__(message or f"{source}: {reason}")

    @property
    def cause(self) -> str:
        return f"{self.source}: {self.reason}"

    @classmethod
    def from_error(cls, source: str, error: CriterionError) -> SourceUnavailable:
        """Wrap a reader's error (``"<source>: file not found (expected at ...)"``): its whole
        first line is the message, its head the short reason."""
        if isinstance(error, SourceUnavailable):
            return error
        message = str(error).strip()
        return cls(source, short_reason(message, source), message)


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

    @classmethod
    def of_all(cls, outcomes: Mapping[str, Outcome], expected: str | None, passed: str,
               failed: str) -> Outcome:
        """One outcome for many (columns, metrics matching a wildcard): observed maps each
        name to its value; passed (message ``passed``) when all passed, else the others'
        messages after ``failed``, formatted with ``bad`` and ``total``
        (``"{bad} of {total} failed"``); ``error`` when every one that did not pass is an
        error, else ``failed``."""
        observed = {name: o.observed for name, o in outcomes.items()}
        bad = [o for o in outcomes.values() if o.status != "passed"]
        if not bad:
            return cls.passed(observed, expected, passed)
        message = (failed.format(bad=len(bad), total=len(outcomes)) + ": "
                   + "; ".join(o.message for o in bad))
        status: Status = "error" if all(o.status == "error" for o in bad) else "failed"
        return cls(status, to_builtin(observed), expected, message)


def scale_hint(observed: float, expectation: Expectation) -> str:
    """`` -- did you mean 90%?`` when a share (0.98) is held to a percentage written as a
    plain number (``>= 90``): no share can ever meet it."""
    if (expectation.unit == "number" and not expectation.uses_baseline
            and isinstance(observed, float) and 0 < observed < 1
            and 1 < expectation.value <= 100):
        return f" -- did you mean {format_value(expectation.value)}%?"
    return ""


def to_builtin(value: Any) -> Any:
    """numpy scalars, Decimals, dates and tuples break xdist's serializer: make them builtins.
    So do subclasses of the builtins (numpy's float64 and str_, an IntEnum): each becomes its
    builtin."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    for builtin in (bool, int, float, str):  # bool first: it is an int
        if isinstance(value, builtin):
            return builtin(value)
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


def short_reason(message: str, source: str) -> str:
    """``"a.csv: cannot read as csv: Invalid Input Error: ..."`` -> ``"cannot read as csv:
    Invalid Input Error: ..."`` cut before any parenthesis or semicolon, at most
    SHORT_REASON characters."""
    text = (message.splitlines() or [""])[0].strip()
    if text.startswith(f"{source}: "):
        text = text[len(source) + 2:]
    for stop in (" (", "; "):
        if stop in text:
            text = text[:text.index(stop)]
    text = text.strip().rstrip(":;,.")
    if len(text) > SHORT_REASON:
        text = text[:SHORT_REASON - 1].rstrip() + "…"
    return text or "cannot be opened"


def source_failure_outcome(failure: SourceUnavailable, shared: dict[Any, Any],
                           criterion: str, expected: str | None = None) -> Outcome:
    """The outcome of a criterion whose source failed: the full message for the first
    criterion of this process that met the failure, ``"<cause> (see <first>)"`` for the
    others."""
    first = shared.setdefault(("source failed first", failure.cause), criterion)
    message = str(failure) if first == criterion else f"{failure.cause} (see {first})"
    outcome = Outcome.error(message, expected)
    outcome.extra["cause"] = failure.cause
    return outcome


def raised_at(exc: BaseException, rootdir: Path) -> str:
    """`` (raised at conftest.py:27, in evaluate)``: where code that is not the plugin's own
    (a kind's, a hook's) went wrong, the one line its author needs when no traceback is
    shown. A path under ``rootdir`` is shown relative to it, an installed module's from its
    package folder."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    path = Path(code.co_filename)
    try:
        shown = path.relative_to(rootdir).as_posix()
    except ValueError:
        parts = path.parts
        cut = max((i for i, part in enumerate(parts)
                   if part in ("site-packages", "dist-packages")), default=None)
        shown = "/".join(parts[cut + 1:]) if cut is not None else path.name
    return f" (raised at {shown}:{tb.tb_lineno}, in {code.co_name})"

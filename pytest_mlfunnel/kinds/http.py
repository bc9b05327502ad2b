"""``http``: a live endpoint answers -- status, JSON keys, latency percentiles, error share.

    [tool.mlfunnel.deployment.health]
    http = "${MODEL_URL}/health"
    requests = 20
    expect = { p95_ms = "<= 200", errors = "== 0" }

All criteria of one check share one run of ``requests`` probes per process. Each probe is
bounded by ``timeout`` (so the check by ``requests x timeout``); a host that never answers
ends as an ``error`` criterion, never a hang.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_mlfunnel import secrets
from pytest_mlfunnel.expectations import (
    Expectation,
    duration_seconds,
    format_duration,
    format_value,
)
from pytest_mlfunnel.jsontext import JsonTextError, parse_json
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    EvalContext,
    Evaluate,
    ExpectationField,
    PlanContext,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome, SourceUnavailable
from pytest_mlfunnel.sources.http_metrics import (
    HttpAnswer,
    header_problem,
    http_calls,
    redirect_target,
)

DEFAULT_TIMEOUT_S = 5.0
#: the longest a probe may wait for its answer
MAX_TIMEOUT_S = 3600.0
MAX_REQUESTS = 10_000
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def latency_expectation(value: Expectation, key: str) -> Expectation:
    if value.unit == "percent":
        raise ValueError(f"{key} is milliseconds: write e.g. '<= 200' or '<= 200 ms', "
                         f"not {value.text!r}")
    return value


class LatencyExpect(BaseModel):
    """Latency percentiles in milliseconds, shared by the ``http`` and ``timing`` kinds."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    p50_ms: ExpectationField | None = None
    p95_ms: ExpectationField | None = None
    p99_ms: ExpectationField | None = None

    @model_validator(mode="after")
    def _latency_units(self) -> LatencyExpect:
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            value = getattr(self, key)
            if value is not None:
                latency_expectation(value, key)
        return self


class HttpExpect(LatencyExpect):
    errors: ExpectationField | None = None

    @model_validator(mode="after")
    def _error_share(self) -> HttpExpect:
        errors = self.errors
        if errors is not None and (errors.unit == "duration" or errors.uses_baseline or (
                errors.unit == "number" and not 0 <= errors.value <= 1)):
            raise ValueError(f"errors is the share of failed probes: write e.g. '<= 1%' or "
                             f"'== 0', not {errors.text!r}")
        return self


def seconds(value: Any) -> float:
    """A probe's timeout: a duration such as ``"500 ms"``, more than 0 and at most 1 h."""
    number = duration_seconds(value, "5 s")
    if not number > 0 or math.isinf(number):
        raise ValueError(f"must be more than 0 seconds, got {value!r}")
    if number > MAX_TIMEOUT_S:
        raise ValueError(f"at most {format_duration(MAX_TIMEOUT_S)}, got {value!r} (a probe "
                         "that may wait longer is not a check CI can wait for)")
    return number


class HttpConfig(CheckConfig):
    http: str
    method: Method | None = None
    json_body: Any = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    status: int | list[int] = 200
    response: list[str] = Field(default_factory=list)
    requests: int = Field(default=1, ge=1, le=MAX_REQUESTS)
    timeout: float = DEFAULT_TIMEOUT_S
    expect: HttpExpect = HttpExpect()

    @field_validator("http")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = secrets.ambiguous_url(value)
        if problem is not None:
            raise ValueError(problem)
        parts = urlsplit(value.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL, got "
                             f"{secrets.mask_url(value)!r}")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError(f"the URL has an invalid port: {secrets.mask_url(value)!r}") from None
        return value.strip()

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("status")
    @classmethod
    def _status(cls, value: int | list[int]) -> int | list[int]:
        codes = value if isinstance(value, list) else [value]
        if not codes or any(not 100 <= code <= 599 for code in codes):
            raise ValueError(f"expected an HTTP status code (100-599) or a list of them, "
                             f"got {value!r}")
        return value

    @field_validator("headers")
    @classmethod
    def _sendable(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            problem = header_problem(name, text)
            if problem is not None:
                raise ValueError(problem)
        return value

    @field_validator("response")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        if any(not key.strip() for key in value):
            raise ValueError("response keys must not be empty (dotted paths such as "
                             "'data.score')")
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return seconds(value)

    @model_validator(mode="after")
    def _body_needs_a_method_that_sends(self) -> HttpConfig:
        if self.json_body is not None and self.method in ("GET", "HEAD"):
            raise ValueError(f"json: a {self.method} request carries no body (use method = "
                             "\"POST\", or leave method out: a json body means POST)")
        if self.response and self.method == "HEAD":
            raise ValueError("response: a HEAD answer has no body to hold keys")
        return self

    @property
    def verb(self) -> str:
        return self.method or ("POST" if self.json_body is not None else "GET")

    @property
    def statuses(self) -> list[int]:
        return self.status if isinstance(self.status, list) else [self.status]


# --------------------------------------------------------------------------- probing
@dataclass
class Probe:
    answer: HttpAnswer
    problem: str | None  # why this probe failed (wrong status, missing key, no answer)


@dataclass
class ProbeRun:
    url: str  # masked
    probes: list[Probe]
    timeout: float

    @property
    def failed(self) -> list[Probe]:
        return [p for p in self.probes if p.problem is not None]

    @property
    def answered(self) -> list[Probe]:
        return [p for p in self.probes if p.answer.answered]

    def unreachable(self) -> str | None:
        """Why no probe got any answer at all, or None when the server answered."""
        if self.answered:
            return None
        reasons = Counter(p.answer.failure for p in self.probes)
        reason, count = reasons.most_common(1)[0]
        return (f"{self.url}: {reason}" + (f" ({count} of {len(self.probes)} probes)"
                                           if len(self.probes) > 1 else ""))

    def latencies_ms(self) -> list[float]:
        """Answered probes at their time; timed-out ones at the timeout (a lower bound)."""
        return [p.answer.elapsed_s * 1000.0 for p in self.probes
                if p.answer.answered or p.answer.timed_out]

    def describe_failures(self, limit: int = 3) -> str:
        counts = Counter(p.problem for p in self.failed)
        parts = [f"{problem}" + (f" x{count}" if count > 1 else "")
                 for problem, count in counts.most_common(limit)]
        if len(counts) > limit:
            parts.append(f"{len(counts) - limit} other kinds")
        return "; ".join(parts)


def run_probes(check: HttpConfig) -> ProbeRun:
    body = None
    headers = {name: value for name, value in check.headers.items()}
    if check.json_body is not None:
        body = json.dumps(check.json_body, default=iso_text).encode("utf-8")
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    if check.response and not any(name.lower() == "accept" for name in headers):
        headers["Accept"] = "application/json"
    answers = http_calls(check.verb, check.http, count=check.requests, body=body,
                         headers=headers, timeout=check.timeout)
    probes = [Probe(answer, judge(answer, check)) for answer in answers]
    return ProbeRun(secrets.mask_url(check.http), probes, check.timeout)


def iso_text(value: Any) -> str:
    """TOML dates and times in a JSON body, as ISO 8601 text."""
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)


def judge(answer: HttpAnswer, check: HttpConfig) -> str | None:
    """Why this answer does not count as a success; None when it does."""
    if not answer.answered:
        return answer.failure
    if answer.status not in check.statuses:
        wanted = " or ".join(str(code) for code in check.statuses)
        target = redirect_target(check.http, answer)
        if target is not None:
            return (f"status {answer.status} {answer.reason}".rstrip()
                    + f" to {target} (expected {wanted}; redirects are not followed)")
        return f"status {answer.status} {answer.reason}".rstrip() + f" (expected {wanted})"
    if not check.response:
        return None
    encoding = answer.encoding_problem()
    if encoding is not None:
        return encoding
    try:
        text = answer.body.decode("utf-8")
    except UnicodeDecodeError as exc:  # '{"x": "café"}' in Latin-1 is JSON in all but that
        return (f"the answer is not UTF-8 text (byte 0x{answer.body[exc.start]:02x} at "
                f"position {exc.start}), as JSON must be")
    try:
        document = parse_json(text)
    except JsonTextError as exc:
        if exc.too_deep:
            return "the answer is JSON nested too deeply to read"
        if exc.column is None:  # a 5000-digit integer
            return f"the answer's JSON cannot be read: {exc.reason}"
        sample = answer.body[:60].decode("utf-8", errors="replace")
        return f"the answer is not JSON ({sample!r})"
    for key in check.response:
        problem = missing_key(document, key)
        if problem:
            return problem
    return None


def missing_key(document: Any, dotted: str) -> str | None:
    current = document
    walked: list[str] = []
    for part in dotted.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(
                current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            where = ".".join(walked) or "the answer"
            if isinstance(current, dict):
                keys = ", ".join(list(map(str, current))[:8]) or "none"
                return f"no {dotted!r} in the answer ({where} has keys: {keys})"
            return f"no {dotted!r} in the answer ({where} is {type(current).__name__})"
        walked.append(part)
    return None


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --------------------------------------------------------------------------- the kind
class HttpKind(CheckKind[HttpConfig]):
    key = "http"
    evidence = "measured"
    config_model = HttpConfig

    def plan(self, check: HttpConfig, ctx: PlanContext) -> list[Criterion]:
        statuses = " or ".join(str(code) for code in check.statuses)
        expected = f"status {statuses}" + (
            f" with {', '.join(check.response)}" if check.response else "")
        criteria = [Criterion("status", self._status(check, expected), expected=expected)]
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            expectation = getattr(check.expect, key)
            if expectation is not None:
                criteria.append(Criterion(key, self._latency(check, key, expectation),
                                          expected=expectation.text))
        if check.expect.errors is not None:
            criteria.append(Criterion("errors", self._errors(check, check.expect.errors),
                                      expected=check.expect.errors.text))
        return criteria

    @staticmethod
    def _run(check: HttpConfig, ctx: EvalContext) -> ProbeRun:
        run: ProbeRun = ctx.per_check(lambda: run_probes(check))
        problem = run.unreachable()
        if problem is not None:
            raise SourceUnavailable.from_error(run.url, CriterionError(problem))
        return run

    def _status(self, check: HttpConfig, expected: str) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            run = self._run(check, ctx)
            good = len(run.probes) - len(run.failed)
            observed = {"ok": good, "requests": len(run.probes)}
            first_status = next((p.answer.status for p in run.probes if p.answer.answered),
                                None)
            what = f"{run.url}: {good} of {len(run.probes)} answers {expected}"
            if not run.failed:
                if len(run.probes) == 1:
                    what = f"{run.url}: status {first_status}" + (
                        f" with {', '.join(check.response)}" if check.response else "")
                return Outcome.passed(observed, expected, what)
            # with an error budget the share is judged by the errors criterion; this one
            # asks that the endpoint can answer as expected at all
            if check.expect.errors is not None and good > 0:
                return Outcome.passed(observed, expected,
                                      f"{what} (the error share is judged by 'errors')")
            return Outcome.failed(f"{run.url}: {run.describe_failures()}"
                                  + (f" ({len(run.failed)} of {len(run.probes)} probes)"
                                     if len(run.probes) > 1 else ""),
                                  observed, expected)
        return evaluate

    def _latency(self, check: HttpConfig, key: str, expectation: Expectation) -> Evaluate:
        q = float(key[1:3])

        def evaluate(ctx: EvalContext) -> Outcome:
            run = self._run(check, ctx)
            latencies = run.latencies_ms()
            value_ms = percentile(latencies, q)
            observed = value_ms / 1000.0 if expectation.unit == "duration" else value_ms
            timed_out = sum(1 for p in run.probes if p.answer.timed_out)
            note = f" over {len(latencies)} requests"
            if timed_out:
                note += (f" ({timed_out} timed out, counted at "
                         f"{format_duration(run.timeout)})")
            label = f"{run.url}: p{int(q)}"
            shown = (format_value(observed, "duration") if expectation.unit == "duration"
                     else f"{format_value(round(value_ms, 2))} ms")
            words = f"{label} {shown}{note}, expected {expectation.text}"
            extra = {"requests": len(run.probes), "p50_ms": percentile(latencies, 50),
                     "p95_ms": percentile(latencies, 95), "p99_ms": percentile(latencies, 99)}
            if expectation.holds(observed):
                return Outcome.passed(round(value_ms, 3), expectation.text, words, **extra)
            return Outcome.failed(words, round(value_ms, 3), expectation.text, None, **extra)
        return evaluate

    def _errors(self, check: HttpConfig, expectation: Expectation) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            run = self._run(check, ctx)
            failed = run.failed
            share = len(failed) / len(run.probes)
            words = (f"{run.url}: errors {format_value(share, 'percent')} ({len(failed)} of "
                     f"{len(run.probes)} requests"
                     + (f": {run.describe_failures()}" if failed else "")
                     + f"), expected {expectation.text}")
            extra = {"requests": len(run.probes), "failed": len(failed)}
            if expectation.holds(share):
                return Outcome.passed(share, expectation.text, words, **extra)
            return Outcome.failed(words, share, expectation.text, None, **extra)
        return evaluate

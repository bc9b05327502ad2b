"""Prometheus text exposition (and OpenMetrics) as metrics.

Expectation names are series selectors, summed over the series they match, or the ratio of
two of them -- the 5xx share of requests::

    expect = { 'http_requests_total{code=~"5.."} / http_requests_total' = "<= 1%" }

Matchers are PromQL's: ``=``, ``!=``, ``=~``, ``!~`` (regexes match the whole value). A
metric name that no series has matches nothing (the criterion fails and lists the names that
exist); a known metric whose matchers keep no series sums to 0 -- no 5xx answers yet is a 0%
share, not a missing metric. The parser is prometheus_client's (the ``prometheus`` extra).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.metrics import MetricSet, register_reader
from pytest_mlfunnel.sources.spec import SourceSpec

PROMETHEUS_EXTRA_HINT = "pip install 'pytest-mlfunnel[prometheus]'"

_METRIC_RE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.DOTALL)
_MATCHER_RE = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)', re.DOTALL)
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")  # PromQL: an absent label is the empty string
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    @property
    def needs_label(self) -> bool:
        """True when only a series carrying the label can match (a typo would match nothing)."""
        if self.op == "=":
            return self.value != ""
        if self.op == "=~":
            return re.fullmatch(self.value, "") is None
        return False

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> Selector:
        match = _METRIC_RE.match(text)
        if not match:
            raise CriterionError(
                f"{text.strip()!r} is not a series selector (write e.g. "
                "http_requests_total or http_requests_total{code=~\"5..\"})")
        metric, body = match.group(1), match.group(2) or ""
        matchers: list[Matcher] = []
        position = 0
        while position < len(body.rstrip()):
            found = _MATCHER_RE.match(body, position)
            if not found:
                raise CriterionError(
                    f"{text.strip()!r}: cannot read the label matchers at "
                    f"{body[position:].strip()!r} (write label=\"value\", with = != =~ !~)")
            value = re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(0)),
                           found.group(3))
            if found.group(2) in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise CriterionError(f"{text.strip()!r}: invalid regex {value!r} "
                                         f"({exc})") from None
            matchers.append(Matcher(found.group(1), found.group(2), value))
            position = found.end()
            if found.group(4) == "":
                break
        return cls(metric, tuple(matchers), text.strip())


def split_ratio(text: str) -> list[str]:
    """``A / B`` -> [A, B]; a ``/`` inside quotes or braces belongs to a selector."""
    parts: list[str] = []
    depth, quoted, escaped, start = 0, False, False, 0
    for index, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


class PrometheusMetrics(MetricSet):
    """Samples of one scrape; names are series selectors, ``A / B`` a ratio of two sums."""

    def __init__(self, samples: list[Sample], origin: str) -> None:
        super().__init__({series_text(s): s.value for s in samples}, origin)
        self.samples = samples
        self._by_name: dict[str, list[Sample]] = {}
        for sample in samples:
            self._by_name.setdefault(sample.name, []).append(sample)

    def names(self) -> list[str]:
        """Metric names (label sets left out: a scrape has too many series to list)."""
        return sorted(self._by_name)

    def resolve(self, pattern: str) -> list[tuple[str, Any]]:
        parts = split_ratio(pattern)
        if len(parts) > 2 or any(not part for part in parts):
            raise CriterionError(f"{pattern!r}: write one selector, or a ratio of two "
                                 "(A / B)")
        sums = [self.sum(part) for part in parts]
        if any(total is None for total in sums):
            return []
        if len(parts) == 1:
            return [(pattern, sums[0])]
        numerator, denominator = sums
        assert numerator is not None and denominator is not None
        if denominator == 0:
            raise CriterionError(f"{pattern}: the denominator {parts[1]} is 0 in {self.origin}"
                                 " (nothing counted yet), so the ratio is undefined")
        return [(pattern, numerator / denominator)]

    def sum(self, text: str) -> float | None:
        """The sum over matching series; None when the metric name has no series at all."""
        selector = Selector.parse(text)
        series = self._by_name.get(selector.metric)
        if not series:
            return None
        for matcher in selector.matchers:
            if matcher.needs_label and not any(matcher.label in s.labels for s in series):
                labels = sorted({label for s in series for label in s.labels})
                raise CriterionError(
                    f"{selector.text}: no {selector.metric} series has a label "
                    f"{matcher.label!r} in {self.origin} (labels: "
                    f"{', '.join(labels) or 'none'})")
        return float(sum(s.value for s in series
                         if all(m.matches(s.labels) for m in selector.matchers)))


def series_text(sample: Sample) -> str:
    if not sample.labels:
        return sample.name
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
    return f"{sample.name}{{{labels}}}"


def parse_exposition(text: str, origin: str, openmetrics: bool = False) -> PrometheusMetrics:
    """Parse with prometheus_client's own parser (text format 0.0.4, or OpenMetrics)."""
    try:
        if openmetrics:
            from prometheus_client.openmetrics.parser import (
                text_string_to_metric_families as parse_openmetrics,
            )
            families = list(parse_openmetrics(text))  # type: ignore[no-untyped-call]
        else:
            from prometheus_client.parser import text_string_to_metric_families

            families = list(text_string_to_metric_families(text))
    except ModuleNotFoundError:
        raise CriterionError(f"{origin}: reading Prometheus metrics needs prometheus_client: "
                             f"{PROMETHEUS_EXTRA_HINT}") from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        kind = "OpenMetrics" if openmetrics else "Prometheus text exposition"
        raise CriterionError(f"{origin}: not valid {kind}: {exc}") from None
    samples = [Sample(s.name, dict(s.labels), float(s.value))
               for family in families for s in family.samples]
    return PrometheusMetrics(samples, origin)


@register_reader("prom")
def read_prom_file(spec: SourceSpec, rootdir: Path) -> PrometheusMetrics:
    path = spec.resolve_path(rootdir)
    if not path.is_file():
        raise CriterionError(f"{spec.display()}: file not found (expected at {path}; "
                             "an earlier CI step should write it)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CriterionError(f"{spec.display()}: cannot read: {exc}") from None
    openmetrics = text.rstrip().endswith("# EOF")
    return parse_exposition(text, spec.display(), openmetrics=openmetrics)

"""Prometheus text exposition (and OpenMetrics) as metrics.

Expectation names are series selectors, summed over the series they match, or the ratio of
two of them -- the 5xx share of requests::

    expect = { 'http_requests_total{code=~"5.."} / http_requests_total' = "<= 1%" }

Matchers are PromQL's: ``=``, ``!=``, ``=~``, ``!~``. Regexes are RE2, as in Prometheus: they
match the whole value, ``.`` matches a newline too, and they run in linear time (DuckDB's
RE2 matches them), so a pattern like ``(a+)+$`` cannot stall a run on a long label value. A
metric name that no series has matches nothing (the criterion fails and lists the names that
exist); a known metric whose matchers keep no series sums to 0 -- no 5xx answers yet is a 0%
share, not a missing metric. The parser is prometheus_client's (the ``prometheus`` extra).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any, NamedTuple

from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.file_types import read_whole, refuse_special_files
from pytest_mlfunnel.sources.metrics import MAX_NAMES_SHOWN, MetricSet
from pytest_mlfunnel.sources.spec import SourceSpec

PROMETHEUS_EXTRA_HINT = "pip install 'pytest-mlfunnel[prometheus]'"

_METRIC_RE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.DOTALL)
_MATCHER_RE = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)', re.DOTALL)
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}
_COUNTER_TYPE_RE = re.compile(
    r"^[ \t]*#[ \t]+TYPE[ \t]+([a-zA-Z_:][a-zA-Z0-9_:]*)[ \t]+counter[ \t]*$", re.MULTILINE)


class Sample(NamedTuple):
    """One series' value (prometheus_client's own samples have these three fields first)."""

    name: str
    labels: dict[str, str]
    value: float


@cache
def _re2() -> Any:
    """An in-memory DuckDB for RE2 matching (Python's ``re`` backtracks: exponential time on
    patterns like ``(a+)+$``, which a selector must not be able to cause)."""
    import duckdb

    return duckdb.connect(":memory:")


def re2_problem(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (lookarounds, backreferences, unbalanced groups), or None."""
    import duckdb

    try:
        _re2().execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return str(exc).removeprefix("Invalid Input Error: ")
    return None


def re2_full_matches(pattern: str, values: list[str]) -> set[str]:
    """The values that ``pattern`` matches whole, as Prometheus matches (``^(?s:p)$``)."""
    rows = _re2().execute(
        "SELECT v FROM unnest(?::VARCHAR[]) AS t(v) WHERE regexp_full_match(v, ?)",
        [values, f"(?s:{pattern})"]).fetchall()
    return {row[0] for row in rows}


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def allowed(self, values: list[str]) -> set[str]:
        """The label values this matcher keeps (PromQL reads an absent label as ``""``), in one
        RE2 pass for a regex."""
        if self.op == "=":
            return {value for value in values if value == self.value}
        if self.op == "!=":
            return {value for value in values if value != self.value}
        found = re2_full_matches(self.value, values)
        return found if self.op == "=~" else set(values) - found

    @cached_property
    def needs_label(self) -> bool:
        """True when only a series carrying the label can match (a typo would match nothing)."""
        if self.op == "=":
            return self.value != ""
        if self.op == "=~":
            return not re2_full_matches(self.value, [""])
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
            if found.group(2) in ("=~", "!~") and (problem := re2_problem(value)):
                raise CriterionError(f"{text.strip()!r}: invalid regex {value!r}: {problem} "
                                     "(selectors use RE2 syntax, as Prometheus does: no "
                                     "lookarounds or backreferences)")
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
        # names() and resolve() read the samples; no flat name -> value table is built
        super().__init__({}, origin)
        self.samples = samples
        self._by_name: dict[str, list[Sample]] = {}
        self._indexes: dict[tuple[str, str], dict[str, list[Sample]]] = {}
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
        selected: list[Sample] | None = None
        for matcher in selector.matchers:
            # each matcher is tried once per distinct label value, not once per series
            index = self._label_index(selector.metric, matcher.label)
            if matcher.needs_label and not set(index) - {""}:
                labels = sorted({label for s in series for label in s.labels})
                shown = ", ".join(labels[:MAX_NAMES_SHOWN]) + (
                    f" and {len(labels) - MAX_NAMES_SHOWN} more"
                    if len(labels) > MAX_NAMES_SHOWN else "")
                raise CriterionError(
                    f"{selector.text}: no {selector.metric} series has a label "
                    f"{matcher.label!r} in {self.origin} (labels: {shown or 'none'})")
            allowed = matcher.allowed(list(index))
            if selected is None:
                selected = [s for value in allowed for s in index[value]]
            else:
                selected = [s for s in selected if s.labels.get(matcher.label, "") in allowed]
        return float(sum(s.value for s in (series if selected is None else selected)))

    def _label_index(self, metric: str, label: str) -> dict[str, list[Sample]]:
        key = (metric, label)
        if key not in self._indexes:
            index: dict[str, list[Sample]] = {}
            for sample in self._by_name[metric]:
                index.setdefault(sample.labels.get(label, ""), []).append(sample)
            self._indexes[key] = index
        return self._indexes[key]


def parse_exposition(text: str, origin: str, openmetrics: bool = False) -> PrometheusMetrics:
    """Parse with prometheus_client's own parser (text format 0.0.4, or OpenMetrics)."""
    try:
        if openmetrics:
            from prometheus_client.openmetrics.parser import (
                text_string_to_metric_families as parse_openmetrics,
            )
            families: list[Any] = list(parse_openmetrics(text))  # type: ignore[no-untyped-call]
        else:
            from prometheus_client.parser import text_string_to_metric_families

            families = list(text_string_to_metric_families(text))
    except ModuleNotFoundError:
        raise CriterionError(f"{origin}: reading Prometheus metrics needs prometheus_client: "
                             f"{PROMETHEUS_EXTRA_HINT}") from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        kind = "OpenMetrics" if openmetrics else "Prometheus text exposition"
        raise CriterionError(f"{origin}: not valid {kind}: {exc}") from None
    renamed = set() if openmetrics else counters_named_without_total(text)
    samples = [Sample(s.name[:-6] if family.name in renamed and s.name == f"{family.name}_total"
                      else s.name, s.labels, s.value)
               for family in families for s in family.samples]
    _refuse_repeated_series(samples, origin)
    return PrometheusMetrics(samples, origin)


def _refuse_repeated_series(samples: list[Sample], origin: str) -> None:
    """Each series once: the parser keeps both of two lines of one series (two writers
    appended to one file), and a selector would sum them."""
    values: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
    for sample in samples:
        values.setdefault((sample.name, tuple(sorted(sample.labels.items()))), []).append(
            sample.value)
    for (name, labels), found in values.items():
        if len(found) > 1:
            shown = ",".join(f'{label}="{_escaped(value)}"' for label, value in labels)
            series = f"{name}{{{shown}}}" if labels else name
            listed = ", ".join(f"{v:g}" for v in found[:5]) + (" ..." if len(found) > 5 else "")
            raise CriterionError(f"{origin}: the series {series} is written {len(found)} times "
                                 f"(values {listed}); an exposition holds each series once")


def _escaped(value: str) -> str:
    """A label value as the exposition format writes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def counters_named_without_total(text: str) -> set[str]:
    """Counters the text format declares without ``_total`` (``# TYPE http_requests counter``,
    as older exporters write them). prometheus_client's parser renames their samples to
    ``http_requests_total``, the OpenMetrics form; Prometheus stores them as exposed, and so
    does this reader: the names in ``expect`` are the ones the scrape shows."""
    if "counter" not in text:
        return set()
    declared = set(_COUNTER_TYPE_RE.findall(text))
    return {name for name in declared
            if not name.endswith("_total") and f"{name}_total" not in declared}


def read_prom_file(spec: SourceSpec, rootdir: Path) -> PrometheusMetrics:
    path = spec.resolve_path(rootdir)
    refuse_special_files([path], spec.display(), rootdir)
    if not path.is_file():
        raise CriterionError(f"{spec.display()}: file not found (expected at {path}; "
                             "an earlier CI step should write it)")
    try:
        text = read_whole(path, spec.display()).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CriterionError(f"{spec.display()}: cannot read: {exc}") from None
    openmetrics = text.rstrip().endswith("# EOF")
    return parse_exposition(text, spec.display(), openmetrics=openmetrics)

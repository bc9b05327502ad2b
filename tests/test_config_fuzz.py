"""Property-based fuzzing of the config loader: whatever ``[tool.mlfunnel]`` holds, reading it
ends in a config or in ``ConfigError`` lines that name the file and the key path -- never
another exception (which pytest would show as a traceback or INTERNALERROR).

The bounded run in CI is ``FUZZ_EXAMPLES`` examples per property (200). For a longer run:

    MLFUNNEL_FUZZ_EXAMPLES=20000 python -m pytest tests/test_config_fuzz.py -p no:xdist
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pytest_mlfunnel.config import ConfigError, load_config  # noqa: E402
from pytest_mlfunnel.kinds import BUILTIN_KINDS, KindRegistry  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("MLFUNNEL_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=not os.environ.get(
    "MLFUNNEL_FUZZ_EXAMPLES"), suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.function_scoped_fixture])

GATES = ["data", "problem", "model", "organization", "deployment", "usage", "effectiveness",
         "maintenance", "modle"]
#: keys the loader and the kinds know, so random tables reach deep into the models
KEYS = sorted({*BUILTIN_KINDS, "require", "funnel", "history", "project", "sources", "services",
               "description", "severity", "waive", "reason", "until", "expect", "rows",
               "duplicates", "columns", "nulls", "unique", "min", "max", "values", "min_share",
               "dtype", "max_age", "join", "on", "match", "group_size", "by", "median", "mean",
               "path", "fixture", "url", "query", "table", "format", "options", "timeout",
               "requests", "method", "headers", "json", "status", "response", "p50_ms",
               "p95_ms", "p99_ms", "errors", "runs", "warmup", "per_second", "metric",
               "before", "after", "control", "treatment", "min_effect", "confidence", "test",
               "max_rows", "seed", "reference", "current", "psi", "ks", "ks_p", "js", "chi2_p",
               "bins", "cache", "exclude", "categorical", "numeric", "sections", "sign_off",
               "level", "data_file", "include", "omit", "lines", "branches", "baseline",
               "owners", "file", "command", "ready", "env", "log", "accuracy", "age"})
HOSTILE_TEXT = ["", " ", ">= 1_000_", ">= 1e999", ">= nan", "<= 1e300 days", "${NO_SUCH_VAR_X}",
                "h\x00.jsonl", "data/*.parquet", "http://u:p@127.0.0.1:9/x?token=t", "30 days",
                "5%", ">= baseline + 5%", "-1", "1e308", "≥ 0.8", "\u202e", "\x1b[31m", "%s",
                "{services.x.url}", "${services.x.url}", "sqlite:///a.db", "2027-02-30"]

scalars = st.one_of(
    st.text(max_size=20),
    st.sampled_from(HOSTILE_TEXT),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**31, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
)
keys = st.one_of(st.sampled_from(KEYS + GATES), st.text(min_size=1, max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=12)
checks = st.dictionaries(keys, values, max_size=6)
sections = st.dictionaries(
    st.sampled_from([*GATES, "require", "funnel", "history", "project", "sources", "services"]),
    st.one_of(values, st.dictionaries(keys, checks, max_size=3)), max_size=5)

#: a config that loads, for mutations to start from
VALID: dict[str, Any] = {
    "require": "model",
    "history": ".mlfunnel/history.jsonl",
    "sources": {"train": "data/train.parquet", "db": {"url": "sqlite:///ops.db",
                                                     "table": "events"}},
    "data": {"train": {"dataset": "train", "rows": ">= 1_000", "duplicates": "<= 1%",
                       "columns": {"age": {"nulls": "<= 5%", "min": 0, "max": 120},
                                   "plan": {"values": ["a", "b"], "min_share": "5%"}}},
             "drift": {"drift": {"reference": "train", "current": "data/live.parquet"},
                       "expect": {"psi": "<= 0.2"}, "bins": 10}},
    "model": {"quality": {"metrics": "reports/eval.json",
                          "expect": {"accuracy": ">= 0.8", "f1": ">= baseline - 0.01"},
                          "baseline": "reports/base.json",
                          "waive": {"reason": "known", "until": "2099-01-01"}}},
    "deployment": {"health": {"http": "http://127.0.0.1:9/health", "requests": 3,
                              "timeout": "2 s", "headers": {"X-Team": "ml"},
                              "expect": {"p95_ms": "<= 200", "errors": "== 0"}},
                   "speed": {"timing": "predict", "runs": 10,
                             "expect": {"p95_ms": "<= 50"}}},
    "effectiveness": {"lift": {"effect": "kpi.csv", "metric": "m", "by": "p",
                               "expect": "decrease", "seed": 3, "max_rows": 100, "test": "bootstrap",
                               "min_effect": "5%"}},
    "maintenance": {"docs": {"files": ["docs/*.md"], "max_age": "90 days"},
                    "card": {"document": "MODEL_CARD.md", "max_age": "180 days"}},
}


def toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\' or not (0x20 <= ord(char) < 0x7F):
            out.append(f"\\u{ord(char):04X}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}"
                                for k, v in value.items()) + " }"
    return value.isoformat()  # dates


def write(path: Path, section: dict[str, Any]) -> None:
    body = "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in section.items())
    path.write_text("[tool.mlfunnel]\n" + body, encoding="utf-8")


def assert_loads_or_names_the_key(path: Path) -> None:
    try:
        load_config(path, path.parent, KindRegistry())
    except ConfigError as exc:
        assert exc.problems, "a ConfigError with no problem in it"
        for line in exc.lines():
            assert line.startswith("pyproject.toml: "), line
            if not line.startswith(("pyproject.toml: not valid",
                                     "pyproject.toml: no [tool.mlfunnel] section")):
                assert line.startswith("pyproject.toml: tool.mlfunnel"), line
            assert "\x00" not in line and "Traceback" not in line, line


@FUZZ
@given(section=sections)
def test_any_table_loads_or_fails_naming_the_key(tmp_path: Path, section: dict[str, Any]
                                                 ) -> None:
    write(tmp_path / "pyproject.toml", section)
    assert_loads_or_names_the_key(tmp_path / "pyproject.toml")


def mutate(config: Any, rng: random.Random, new_value: Any) -> Any:
    """Replace, drop or add one entry somewhere in the tables."""
    if not isinstance(config, dict) or not config:
        return new_value
    copy = dict(config)
    key = rng.choice(sorted(copy))
    action = rng.random()
    if action < 0.15:
        del copy[key]
    elif action < 0.3:
        copy[rng.choice(KEYS)] = new_value
    elif isinstance(copy[key], dict) and action < 0.8:
        copy[key] = mutate(copy[key], rng, new_value)
    else:
        copy[key] = new_value
    return copy


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), new_value=values, rounds=st.integers(1, 3))
def test_a_mutated_valid_config_loads_or_fails_naming_the_key(
        tmp_path: Path, seed: int, new_value: Any, rounds: int) -> None:
    rng = random.Random(seed)
    config: Any = VALID
    for _ in range(rounds):
        config = mutate(config, rng, new_value)
    write(tmp_path / "pyproject.toml", config if isinstance(config, dict) else {"x": config})
    assert_loads_or_names_the_key(tmp_path / "pyproject.toml")


@FUZZ
@given(position=st.integers(0, 10**6), junk=st.binary(min_size=1, max_size=6))
def test_bytes_spliced_into_the_file_never_crash_the_loader(tmp_path: Path, position: int,
                                                           junk: bytes) -> None:
    write(tmp_path / "pyproject.toml", VALID)
    blob = (tmp_path / "pyproject.toml").read_bytes()
    at = position % len(blob)
    (tmp_path / "pyproject.toml").write_bytes(blob[:at] + junk + blob[at + len(junk):])
    assert_loads_or_names_the_key(tmp_path / "pyproject.toml")


def test_the_valid_config_the_mutations_start_from_loads(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", VALID)
    config = load_config(tmp_path / "pyproject.toml", tmp_path, KindRegistry())
    assert len(config.checks) == 8


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1),
       new_value=st.sampled_from([float("nan"), 10**30, "h\x00.jsonl", ">= 1_000_",
                                  "${NO_SUCH_VAR_X}", 1e300]))
def test_a_real_run_on_a_broken_config_exits_4_naming_the_key(
        pytester: pytest.Pytester, seed: int, new_value: Any) -> None:
    rng = random.Random(seed)
    config = VALID
    while True:  # a mutation that breaks the config (most do)
        candidate = mutate(config, rng, new_value)
        write(pytester.path / "pyproject.toml", candidate)
        try:
            load_config(pytester.path / "pyproject.toml", pytester.path, KindRegistry())
        except ConfigError:
            break
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 4, output
    assert "ERROR: pyproject.toml: tool.mlfunnel" in result.stderr.str()
    assert "Traceback" not in output and "INTERNALERROR" not in output

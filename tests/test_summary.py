"""The ``ml funnel`` section: every failing criterion's reason, readable at a glance."""

from __future__ import annotations

import json
import textwrap

import pytest

from pytest_mlfunnel.funnel import CriterionResult, Required, build_gates, decide
from pytest_mlfunnel.render.terminal import render_terminal
from pytest_mlfunnel.report import Report

MANY = {f"metric_{i:02d}": 0.5 for i in range(14)}


def make_project(pytester: pytest.Pytester, config: str, metrics: dict[str, float]) -> None:
    pytester.makepyprojecttoml(textwrap.dedent(config))
    (pytester.path / "reports").mkdir(exist_ok=True)
    (pytester.path / "reports" / "eval.json").write_text(json.dumps(metrics))


def listed(stdout: str) -> list[str]:
    """The lines of the ml funnel section."""
    return stdout[stdout.index("= ml funnel ="):].splitlines()[1:]


@pytest.mark.xdist_matters
def test_every_failing_criterion_is_listed_under_its_gate(pytester: pytest.Pytester,
                                                          xdist_args: list[str]) -> None:
    make_project(pytester, """
        [tool.mlfunnel]
        funnel = ["data", "model", "usage"]
        require = "data"
        [tool.mlfunnel.data.volume]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.5" }
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.9", f1 = ">= 0.8", acuracy = ">= 0.5", auc = ">= 0.5" }
        [tool.mlfunnel.usage.weekly]
        metrics = "reports/eval.json"
        expect = { requests = ">= 700" }
        severity = "warn"
    """, {"accuracy": 0.86, "f1": 0.71, "auc": 0.9})
    result = pytester.runpytest("--funnel", *xdist_args)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "* 1 * data * passed * 1/1",
        "* 2 * model * FAILED * 1/4",
        "      model::quality::accuracy: accuracy 0.86, expected >= 0.9",
        "      model::quality::f1: f1 0.71, expected >= 0.8",
        "      model::quality::acuracy: acuracy: no such metric in reports/eval.json*",
        "* 3 * usage * warned * 0/1",
        "      usage::weekly::requests: requests: no such metric*",
        "        (metrics there: accuracy, f1, auc)",
        "stage reached: data (1/3) · required: data · OK",
    ])
    result.stdout.no_fnmatch_line("*model::quality::auc*")  # passed: not listed


def test_long_messages_wrap_to_the_terminal_width_between_words(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    names = {f"a_rather_long_metric_name_number_{i}": 0.5 for i in range(12)}
    make_project(pytester, """
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { "absent.metric.with.a.long.name" = ">= 0.5" }
    """, names)
    result = pytester.runpytest("--funnel")
    assert result.ret == 1
    section = listed(result.stdout.str())
    rows = section[1:section.index(next(s for s in section if s.startswith("stage reached")))]
    assert len(rows) >= 3, rows  # wrapped, not cut
    assert all(len(row) <= 60 for row in rows), rows
    assert rows[0].startswith("      model::quality::absent.metric.with.a.long.name:")
    assert all(row.startswith("        ") for row in rows[1:]), rows
    words = " ".join(row.strip() for row in rows).split()
    message = ("model::quality::absent.metric.with.a.long.name: absent.metric.with.a.long.name: "
               "no such metric in reports/eval.json (metrics there: ")
    assert " ".join(words).startswith(message), words
    for name in names:  # every name whole, none cut at the edge
        assert any(word.strip(",()") == name for word in words), name


def test_at_most_ten_a_gate_then_how_many_more(pytester: pytest.Pytester) -> None:
    expect = ", ".join(f'metric_{i:02d} = ">= 0.9"' for i in range(14))
    make_project(pytester, f"""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = {{ {expect} }}
    """, MANY)
    result = pytester.runpytest("--funnel")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "* 1 * model * FAILED * 0/14",
        "      model::quality::metric_00: metric_00 0.5, expected >= 0.9",
        "      model::quality::metric_09: metric_09 0.5, expected >= 0.9",
        "      ... and 4 more (--funnel-html for all)",
        "stage reached: none (0/1) · required: none set · CRITERIA FAILED",
    ])
    result.stdout.no_fnmatch_line("*model::quality::metric_10:*")


def test_quiet_keeps_one_line_a_gate(pytester: pytest.Pytester) -> None:
    expect = ", ".join(f'metric_{i:02d} = ">= 0.9"' for i in range(3))
    make_project(pytester, f"""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = {{ {expect} }}
    """, MANY)
    result = pytester.runpytest("--funnel", "-q")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*= ml funnel =*",
        " 1 * model * FAILED * 0/3  metric_00 0.5, expected…",  # cut between words
        "stage reached: none (0/1) · required: none set · CRITERIA FAILED",
    ])
    result.stdout.no_fnmatch_line("      model::quality::metric_0*")


# ----------------------------------------------------------------------------- one cause
def _criterion(index: int, status: str = "error", cause: str | None = None,
               message: str = "") -> CriterionResult:
    extra = {"cause": cause} if cause else {}
    return CriterionResult(id=f"pyproject.toml::data::train::c{index}", gate="data",
                           check="train", kind="dataset", status=status,  # type: ignore[arg-type]
                           message=message or f"c{index}: failed", extra=extra)


def _report(criteria: list[CriterionResult]) -> Report:
    gates = build_gates(["data"], criteria, {"data": len(criteria)})
    verdict = decide(["data"], Required(), gates, partial=False)
    return Report(project="p", release=None, commit=None, created="2026-11-29T00:00:00Z",
                  verdict=verdict, gates=gates)


def test_criteria_of_one_failed_source_show_their_cause_once_with_the_count() -> None:
    cause = "data/trian.parquet: file not found"
    criteria = [_criterion(i, cause=cause, message=f"see c0 ({cause})") for i in range(13)]
    criteria.append(_criterion(13, "failed", message="rows 3, expected >= 5000"))
    text = [line for line, _ in render_terminal(_report(criteria), width=80)]
    assert text[1:3] == ["      data/trian.parquet: file not found -- 13 criteria",
                         "      data::train::c13: rows 3, expected >= 5000"]
    assert sum("trian" in line for line in text) == 1



@pytest.mark.xdist_matters
def test_a_source_that_cannot_be_opened_is_one_line_with_its_count(pytester: pytest.Pytester,
                                                                   xdist_args: list[str]) -> None:
    make_project(pytester, """
        [tool.mlfunnel]
        funnel = ["data", "model"]
        [tool.mlfunnel.data.train]
        dataset = "data/trian.parquet"
        rows = ">= 5000"
        duplicates = "== 0"
        columns.age = { nulls = "<= 5%", min = 0, max = 120 }
        columns.plan = { values = ["free", "pro"] }
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.9" }
    """, {"accuracy": 0.86})
    result = pytester.runpytest("--funnel", *xdist_args)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "* 1 * data * FAILED * 0/6",
        "      data/trian.parquet: file not found -- 6 criteria",
        "* 2 * model * FAILED * 0/1",
        "      model::quality::accuracy: accuracy 0.86, expected >= 0.9",
    ])
    section = result.stdout.str().split("= ml funnel =")[1].split("stage reached:")[0]
    assert section.count("trian.parquet") == 1

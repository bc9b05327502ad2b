"""Outputs for CI: the GitHub job summary and junitxml properties."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_mlfunnel.render.markdown import cell, render_markdown

CONFIG = """
[tool.mlfunnel]
funnel = ["data", "problem", "model"]
require = "model"

[tool.mlfunnel.data.volume]
metrics = "reports/eval.json"
expect = { rows = ">= 100" }

[tool.mlfunnel.problem.goal]
metrics = "reports/eval.json"
expect = { signed = "== 1" }

[tool.mlfunnel.model.quality]
metrics = "reports/eval.json"
expect = { accuracy = ">= 0.8", auc = ">= 0.85" }
"""


def make_project(pytester: pytest.Pytester, accuracy: float = 0.74) -> None:
    pytester.makepyprojecttoml(CONFIG)
    (pytester.path / "reports").mkdir(exist_ok=True)
    (pytester.path / "reports" / "eval.json").write_text(json.dumps(
        {"rows": 500, "signed": 1, "accuracy": accuracy, "auc": 0.9}))


@pytest.mark.xdist_matters
def test_the_step_summary_gets_the_funnel_table_once(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     xdist_args: list[str]) -> None:
    make_project(pytester)
    summary = pytester.path / "step_summary.md"
    summary.write_text("## earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("--funnel", *xdist_args)
    assert result.ret == 1
    text = summary.read_text()
    assert text.startswith("## earlier step\n### ml funnel · ")  # appended, not replaced
    assert text.count("### ml funnel") == 1
    assert "**stage reached: problem (2/3) · required: model · BELOW REQUIRED GATE**" in text
    assert "- gate model failed and the required gate is model" in text
    assert "| # | gate | status | passed | first failure |" in text
    assert "| 1 | data | ✅ passed | 1/1 |  |" in text
    assert "| 2 | **problem** ◀ reached | ✅ passed | 1/1 |  |" in text
    assert "| 3 | model | ❌ FAILED | 1/2 | accuracy 0.74, expected &gt;= 0.8 |" in text
    assert ("| `model::quality::accuracy` | ❌ failed | measured | 0.74 | &gt;= 0.8 | "
            "accuracy 0.74, expected &gt;= 0.8 |") in text


def test_the_step_summary_carries_the_comparison(pytester: pytest.Pytester,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester, accuracy=0.9)
    assert pytester.runpytest("--funnel", "--funnel-record=v1.3.0").ret == 0
    make_project(pytester, accuracy=0.7)
    summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.runpytest("--funnel")
    text = summary.read_text()
    assert "- since v1.3.0: model -&gt; problem, down 1 stage" in text
    assert "- passed in v1.3.0, failing now: model::quality::accuracy" in text


def test_without_the_variable_no_summary_is_written(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.runpytest("--funnel")
    written = {p.name for p in pytester.path.iterdir()} - {".pytest_cache"}
    assert written == {"pyproject.toml", "reports"}


def test_an_unwritable_step_summary_is_a_note(pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "missing" / "summary.md"))
    result = pytester.runpytest("--funnel")
    result.stdout.fnmatch_lines(["*note: could not append to GITHUB_STEP_SUMMARY (*): "
                                 "No such file or directory"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_step_summary_that_is_a_named_pipe_nothing_reads_is_a_note_not_a_hang(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # opening a FIFO to write waits for a reader: the run never ended
    make_project(pytester)
    os.mkfifo(pytester.path / "summary.pipe")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.pipe"))
    result = pytester.runpytest_subprocess("--funnel", timeout=120)
    assert result.ret == 1  # the project's model gate fails; the run ends and says so
    result.stdout.fnmatch_lines([
        "stage reached: problem (2/3) · required: model · BELOW REQUIRED GATE",
        f"  note: could not append to GITHUB_STEP_SUMMARY ({pytester.path / 'summary.pipe'}): "
        "a named pipe that nothing reads"])


def test_markdown_cells_cannot_break_the_table_or_inject_html() -> None:
    assert cell("a | b\nc <script>") == "a \\| b c &lt;script&gt;"
    report = {"project": "p", "release": "v1", "verdict": "v", "stage": 0, "gates": [
        {"name": "data", "status": "failed", "passed": 0, "total": 1, "criteria": [
            {"id": "pyproject.toml::data::x::y", "status": "failed", "evidence": "measured",
             "observed": "<b>", "expected": "| 1", "message": "x|y\n<i>z</i>"}]}]}
    text = render_markdown(report)
    row = next(line for line in text.splitlines() if line.startswith("| `data::x::y`"))
    assert row == ("| `data::x::y` | ❌ failed | measured | &lt;b&gt; | \\| 1 | "
                   "x\\|y &lt;i&gt;z&lt;/i&gt; |")


@pytest.mark.xdist_matters
def test_junitxml_carries_gate_check_observed_expected(pytester: pytest.Pytester,
                                                       xdist_args: list[str]) -> None:
    make_project(pytester)
    pytester.runpytest("--funnel", "--junitxml=junit.xml", *xdist_args)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    accuracy = cases["accuracy"]
    properties = {p.get("name"): p.get("value") for p in accuracy.iter("property")}
    assert properties == {"gate": "model", "check": "quality", "kind": "metrics",
                          "observed": "0.74", "expected": ">= 0.8"}
    assert accuracy.find("failure") is not None
    rows = {p.get("name"): p.get("value") for p in cases["rows"].iter("property")}
    assert (rows["gate"], rows["observed"], rows["expected"]) == ("data", "500.0", ">= 100")


def test_junitxml_file_location_is_the_config(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    pytester.runpytest("--funnel", "--junitxml=junit.xml")
    root = ET.parse(Path(pytester.path / "junit.xml")).getroot()
    classnames = {case.get("classname") for case in root.iter("testcase")}
    assert classnames == {"pyproject.toml.data.volume", "pyproject.toml.problem.goal",
                          "pyproject.toml.model.quality"}

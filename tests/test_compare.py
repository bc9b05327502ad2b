"""``mlfunnel compare``: two real reports of one project, before and after a change."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pytest_mlfunnel.cli import main
from pytest_mlfunnel.compare import compare_reports

CONFIG = """
[tool.mlfunnel]
funnel = ["data", "problem", "model"]
require = "{require}"

[tool.mlfunnel.data.volume]
metrics = "reports/eval.json"
expect = {{ rows = ">= 100" }}

[tool.mlfunnel.problem.goal]
metrics = "reports/eval.json"
expect = {{ signed = "== 1" }}

[tool.mlfunnel.model.quality]
metrics = "reports/eval.json"
expect = {{ accuracy = ">= 0.8", f1 = ">= 0.7" }}
"""

def release(pytester: pytest.Pytester, name: str) -> str:
    """The release a report names (outside git: the date of the run)."""
    return str(json.loads((pytester.path / name).read_text())["release"])


def mlfunnel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which("mlfunnel", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "pytest_mlfunnel.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def funnel_report(pytester: pytest.Pytester, name: str, require: str = "model",
                  **metrics: object) -> Path:
    """Run the funnel of the project as it is with these metrics; its JSON report."""
    pytester.makepyprojecttoml(CONFIG.format(require=require))
    values = {"rows": 500, "signed": 1, "accuracy": 0.9, "f1": 0.8, **metrics}
    (pytester.path / "reports").mkdir(exist_ok=True)
    (pytester.path / "reports" / "eval.json").write_text(json.dumps(values))
    pytester.runpytest("--funnel", f"--funnel-json={name}")
    path = pytester.path / name
    assert json.loads(path.read_text())["schema"] == "mlfunnel-report/1"
    return path


def table_rows(markdown: str) -> list[list[str]]:
    """Every table row as a Markdown renderer reads it: the text of each cell, with any
    markup other than plain text shown as ``<type>`` (an image would be ``<image>``)."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows: list[list[str]] = []
    in_row = False
    for token in tokens:
        if token.type in ("tr_open", "tr_close"):
            in_row = token.type == "tr_open"
            if in_row:
                rows.append([])
        elif token.type == "inline" and in_row:
            rows[-1].append("".join(child.content if child.type == "text" else f"<{child.type}>"
                                    for child in token.children or ()))
    return rows


def test_a_change_that_drops_a_gate_is_shown_and_fails_on_regress(
        pytester: pytest.Pytester) -> None:
    funnel_report(pytester, "base.json")
    funnel_report(pytester, "head.json", accuracy=0.74)
    done = mlfunnel("compare", "base.json", "head.json", "--markdown", "pr.md",
                    cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    base, head = release(pytester, "base.json"), release(pytester, "head.json")
    assert lines[:2] == ["wrote pr.md", f"ml funnel compare: base.json ({base}) -> head.json "
                                        f"({head})"]
    assert lines[2:] == [
        "stage reached: model (3/3) -> problem (2/3) (▼ 1 gate lower)",
        "gates whose status changed:",
        "   3 model  passed -> FAILED",
        "newly failing (1):",
        "  pyproject.toml::model::quality::accuracy: passed -> failed, observed 0.9 -> 0.74, "
        "expected >= 0.8",
        "      accuracy 0.74, expected >= 0.8",
        "HEAD is worse: the stage reached fell from model (3/3) to problem (2/3); the verdict "
        "was OK and is no longer; 1 blocking criterion newly fails",
    ]
    markdown = (pytester.path / "pr.md").read_text()
    assert markdown.startswith(f"### ml funnel · base.json ({base}) → head.json ({head})"
                               "\n\n**HEAD is worse: the stage "
                               "reached fell from model (3/3) to problem (2/3);")
    rows = table_rows(markdown)
    assert ["stage reached", "model (3/3)", "problem (2/3) ▼ 1 gate lower"] in rows
    assert ["3", "model", "passed", "FAILED"] in rows
    assert ["model::quality::accuracy", "passed", "failed", "0.9", "0.74", ">= 0.8",
            "accuracy 0.74, expected >= 0.8"] in rows

    regress = mlfunnel("compare", "base.json", "head.json", "--fail-on-regress",
                       cwd=pytester.path)
    assert regress.returncode == 1
    assert regress.stdout.splitlines()[-1].startswith("HEAD is worse: the stage reached fell")


def test_a_fix_lists_what_newly_passes_and_is_not_a_regression(
        pytester: pytest.Pytester) -> None:
    funnel_report(pytester, "base.json", accuracy=0.7, f1=0.6)
    funnel_report(pytester, "head.json", f1=0.65)
    done = mlfunnel("compare", "base.json", "head.json", "--fail-on-regress",
                    cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "stage reached: problem (2/3) -> problem (2/3) (unchanged)"
    assert "newly passing (1):" in lines
    assert ("  pyproject.toml::model::quality::accuracy: failed -> passed, observed 0.7 -> 0.9, "
            "expected >= 0.7" not in lines)
    assert ("  pyproject.toml::model::quality::accuracy: failed -> passed, observed 0.7 -> 0.9, "
            "expected >= 0.8" in lines)
    assert "newly failing" not in done.stdout
    assert "gates whose status changed" not in done.stdout  # model failed before and after
    assert lines[-1] == "HEAD is better"


def test_a_failure_above_the_required_gate_is_not_a_regression(
        pytester: pytest.Pytester) -> None:
    # problem fails in both, so model sits above the stage reached and the required gate data
    funnel_report(pytester, "base.json", require="data", signed=0)
    funnel_report(pytester, "head.json", require="data", signed=0, f1=0.5)
    done = mlfunnel("compare", "base.json", "head.json", "--fail-on-regress",
                    cwd=pytester.path)
    assert done.returncode == 0, done.stdout
    assert "  pyproject.toml::model::quality::f1: passed -> failed, observed 0.8 -> 0.5, " \
           "expected >= 0.7" in done.stdout.splitlines()
    assert done.stdout.splitlines()[-1] == "HEAD is not worse"

    # the same change with the model gate required blocks
    funnel_report(pytester, "base.json", require="model", signed=0)
    funnel_report(pytester, "head.json", require="model", signed=0, f1=0.5)
    done = mlfunnel("compare", "base.json", "head.json", "--fail-on-regress",
                    cwd=pytester.path)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == "HEAD is worse: 1 blocking criterion newly fails"


def test_a_report_only_run_has_no_blocking_criterion_to_regress(
        pytester: pytest.Pytester) -> None:
    # problem fails in both, so the stage reached stays data; model's f1 newly fails
    funnel_report(pytester, "base.json", require="none", signed=0)
    funnel_report(pytester, "head.json", require="none", signed=0, f1=0.5)
    assert json.loads((pytester.path / "head.json").read_text())["required"] == "none"
    done = mlfunnel("compare", "base.json", "head.json", "--fail-on-regress",
                    cwd=pytester.path)
    assert done.returncode == 0, done.stdout
    assert "  pyproject.toml::model::quality::f1: passed -> failed, observed 0.8 -> 0.5, " \
           "expected >= 0.7" in done.stdout.splitlines()
    assert done.stdout.splitlines()[-1] == "HEAD is not worse"


def test_a_required_gate_the_funnel_does_not_name_leaves_every_gate_blocking() -> None:
    def report(f1_status: str) -> dict[str, object]:
        return {"funnel": ["data", "model"], "stage": 1, "reached": "data",
                "required": "deployment", "ok": False,
                "gates": [{"name": "data", "status": "passed", "criteria": []},
                          {"name": "model", "status": "failed", "criteria": [
                              {"id": "model::f1", "status": f1_status}]}]}

    comparison = compare_reports(report("passed"), report("failed"))
    assert [c.blocking for c in comparison.newly_failing] == [True]
    assert comparison.regressions == ["1 blocking criterion newly fails"]


def test_markdown_values_cannot_break_the_table_or_show_an_image(
        pytester: pytest.Pytester) -> None:
    funnel_report(pytester, "base.json")
    hostile = "a|b ![x](https://evil.example/p.png) <img src=x> *bold* `code`\x1b[31m"
    funnel_report(pytester, "head.json", accuracy=hostile)
    assert mlfunnel("compare", "base.json", "head.json", "--markdown", "pr.md",
                    cwd=pytester.path).returncode == 0
    markdown = (pytester.path / "pr.md").read_text()
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<img" not in html and "<em>" not in html and "<code>" not in html
    row = next(r for r in table_rows(markdown) if r and r[0] == "model::quality::accuracy")
    assert row == [
        "model::quality::accuracy", "passed", "error", "0.9", "—", ">= 0.8",
        "accuracy in reports/eval.json is 'a|b ![x](https://evil.example/p.png) <img src=x> "
        "*bold* `code`\\x1b[31m', not a number"]


def test_control_characters_never_reach_the_text_or_the_markdown() -> None:
    from pytest_mlfunnel.render.comparison import md, plain

    assert plain("red\x1b[31m\x07 bell\nnext") == "red\\x1b[31m\\x07 bell next"
    assert md("x\x1b|y") == "x\\\\x1b\\|y"


def test_a_lone_surrogate_or_override_in_a_report_is_shown_as_its_escape(
        pytester: pytest.Pytester) -> None:
    # "\\ud800" is valid JSON that no UTF-8 output can hold: the comparison ended in a
    # UnicodeEncodeError traceback; a right-to-left override turned the line around
    base = funnel_report(pytester, "base.json")
    head = json.loads(base.read_text())
    for gate in head["gates"]:
        for criterion in gate["criteria"]:
            if criterion["id"].endswith("accuracy"):
                criterion.update(status="failed", message="bad \ud800 \u202e text")
    (pytester.path / "head.json").write_text(json.dumps(head))  # ensure_ascii: "\\ud800"
    done = mlfunnel("compare", "base.json", "head.json", "--markdown", "pr.md",
                    cwd=pytester.path)
    assert (done.returncode, done.stderr) == (0, "")
    assert "      bad \\ud800 \\u202e text" in done.stdout.splitlines()
    markdown = (pytester.path / "pr.md").read_text(encoding="utf-8")
    row = next(r for r in table_rows(markdown) if r and r[0] == "model::quality::accuracy")
    assert row[-1] == "bad \\ud800 \\u202e text"


def test_markdown_to_stdout_replaces_the_text(pytester: pytest.Pytester) -> None:
    base = funnel_report(pytester, "base.json")
    assert main(["compare", str(base), str(base), "--markdown", "-"]) == 0
    out = pytester.path / "unused"
    assert not out.exists()
    done = mlfunnel("compare", "base.json", "base.json", "--markdown", "-", cwd=pytester.path)
    base = release(pytester, "base.json")
    assert done.stdout.startswith(f"### ml funnel · base.json ({base}) → base.json ({base})"
                                  "\n\n**no change**\n")
    assert done.stdout.rstrip().endswith("No gate or criterion changed status.")
    assert "ml funnel compare:" not in done.stdout


@pytest.mark.parametrize(("content", "message"), [
    (None, "mlfunnel: error: missing.json: file not found"),
    ("{oops", "mlfunnel: error: missing.json: not JSON (line 1: Expecting property name "
              "enclosed in double quotes at column 2)"),
    ('{"schema": "coverage/7", "gates": []}',
     "mlfunnel: error: missing.json: not an mlfunnel report (schema 'coverage/7', expected "
     "'mlfunnel-report/1'; write one with 'pytest --funnel --funnel-json=PATH')"),
    ('{"schema": "mlfunnel-report/1", "gates": [], "stage": "two"}',
     "mlfunnel: error: missing.json: not an mlfunnel report (no stage (expected a whole "
     "number))"),
    ('{"schema": "mlfunnel-report/1", "stage": 1, "gates": [7]}',
     "mlfunnel: error: missing.json: not an mlfunnel report (gates[0] is not a gate (an "
     "object with a name))"),
    ('{"schema": "mlfunnel-report/1", "stage": 5, "funnel": ["data", "model"], "gates": []}',
     "mlfunnel: error: missing.json: not an mlfunnel report (stage 5 is past the funnel's 2 "
     "gates)"),
    ('{"schema": "mlfunnel-report/1", "stage": 1, "gates": [{"name": "data", "criteria": '
     '[{"status": "passed"}]}]}',
     "mlfunnel: error: missing.json: not an mlfunnel report (gate 'data': criteria[0] is not "
     "a criterion (an object with an id))"),
])
def test_an_unreadable_report_exits_2_with_one_line(
        pytester: pytest.Pytester, content: str | None, message: str) -> None:
    good = funnel_report(pytester, "good.json")
    if content is not None:
        (pytester.path / "missing.json").write_text(content)
    for args in (["good.json", "missing.json"], ["missing.json", "good.json"]):
        done = mlfunnel("compare", *args, "--fail-on-regress", "--markdown", "pr.md",
                        cwd=pytester.path)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [message]
        assert done.stdout == ""
    assert not (pytester.path / "pr.md").exists()
    assert good.exists()


def test_compare_has_help_and_needs_two_reports(tmp_path: Path) -> None:
    done = mlfunnel("compare", "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: mlfunnel compare [-h] [--markdown OUT] "
                                  "[--fail-on-regress]")
    done = mlfunnel("compare", "one.json", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "mlfunnel: error: the following arguments are required: HEAD.json (see 'mlfunnel "
        "compare --help')"]


def test_a_history_line_compares_by_its_criteria_as_a_report_does(
        pytester: pytest.Pytester) -> None:
    """A history line keeps each criterion's key and status, not the report's criteria:
    compared as a report, every criterion was "no longer in HEAD"."""
    funnel_report(pytester, "base.json")
    pytester.runpytest("--funnel", "--funnel-json=head.json", "--funnel-record=v2")
    history = (pytester.path / ".mlfunnel" / "history.jsonl").read_text().splitlines()
    (pytester.path / "line.json").write_text(history[-1])
    same = mlfunnel("compare", "head.json", "line.json", cwd=pytester.path)
    assert same.returncode == 0, same.stderr
    assert same.stdout.splitlines()[1:] == [
        "stage reached: model (3/3) -> model (3/3) (unchanged)", "no change"]

    (pytester.path / "reports" / "eval.json").write_text(json.dumps(
        {"rows": 500, "signed": 1, "accuracy": 0.74, "f1": 0.8}))
    pytester.runpytest("--funnel", "--funnel-record=v3")
    history = (pytester.path / ".mlfunnel" / "history.jsonl").read_text().splitlines()
    (pytester.path / "worse.json").write_text(history[-1])
    done = mlfunnel("compare", "base.json", "worse.json", "--fail-on-regress",
                    cwd=pytester.path)
    assert done.returncode == 1, done.stderr
    assert "no longer in HEAD" not in done.stdout
    # a history line keeps no expectation or message: HEAD's are not shown
    assert done.stdout.splitlines()[1:] == [
        "stage reached: model (3/3) -> problem (2/3) (▼ 1 gate lower)",
        "gates whose status changed:",
        "   3 model  passed -> FAILED",
        "newly failing (1):",
        "  pyproject.toml::model::quality::accuracy: passed -> failed, observed 0.9 -> 0.74",
        "HEAD is worse: the stage reached fell from model (3/3) to problem (2/3); the verdict "
        "was OK and is no longer; 1 blocking criterion newly fails",
    ]

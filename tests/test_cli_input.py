"""The ``mlfunnel`` command on reports and history lines of the wrong shape: exit 2 and one
line naming the file and the field, never a traceback."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.cli import main
from pytest_mlfunnel.schema import check_history_line, check_report

CONFIG = """
[tool.mlfunnel]
funnel = ["data", "problem", "model"]
require = "model"

[tool.mlfunnel.data.volume]
metrics = "reports/eval.json"
expect = { rows = ">= 100", "*" = ">= 0" }

[tool.mlfunnel.problem.goal]
metrics = "reports/eval.json"
expect = { signed = "== 1" }

[tool.mlfunnel.model.quality]
metrics = "reports/eval.json"
expect = { accuracy = ">= 0.8" }
"""
SEED = 20261129
MUTATIONS = 300


def cli_run(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_mlfunnel.cli", *args],
                          cwd=pytester.path, capture_output=True, text=True, timeout=180,
                          check=False)


@pytest.fixture
def real_report(pytester: pytest.Pytester) -> tuple[dict[str, Any], dict[str, Any]]:
    """A report and a history line written by a real run (one criterion fails)."""
    pytester.makepyprojecttoml(CONFIG)
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "eval.json").write_text(json.dumps(
        {"rows": 500, "signed": 1, "accuracy": 0.7, "f1": 0.5}))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json",
                                "--funnel-record=v1.0.0")
    assert result.ret == 1
    report = json.loads((pytester.path / "report.json").read_text())
    line = json.loads((pytester.path / ".mlfunnel" / "history.jsonl").read_text())
    return report, line


def test_what_the_plugin_writes_is_what_the_schema_accepts(
        real_report: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, line = real_report
    assert check_report(report) is None
    assert check_history_line(line) is None



def test_the_schema_models_accept_only_this_report_schema(
        real_report: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, line = copy.deepcopy(real_report)
    report["schema"] = line["schema"] = "mlfunnel-report/2"
    expected = "schema: expected 'mlfunnel-report/1', got 'mlfunnel-report/2'"
    assert check_report(report) == expected
    assert check_history_line(line) == expected

@pytest.mark.parametrize(("change", "field"), [
    (lambda r: r["gates"][1].update(status="sideways"), "gates[1].status"),
    (lambda r: r["gates"][0]["criteria"][0].update(status=3), "gates[0].criteria[0].status"),
    (lambda r: r["gates"][0]["criteria"][0].pop("id"), "gates[0].criteria[0].id"),
    (lambda r: r.update(stage="2"), "stage"),
    (lambda r: r.update(gates={"data": {}}), "gates"),
    (lambda r: r["gates"][2].update(passed=None), "gates[2].passed"),
    (lambda r: r.update(funnel="data"), "funnel"),
    (lambda r: r["gates"][0]["criteria"][0].update(details="one line"),
     "gates[0].criteria[0].details"),
])
def test_a_report_of_the_wrong_shape_is_one_line_naming_the_field(
        pytester: pytest.Pytester, real_report: tuple[dict[str, Any], dict[str, Any]],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        change: Any, field: str) -> None:
    monkeypatch.chdir(pytester.path)
    report = copy.deepcopy(real_report[0])
    change(report)
    (pytester.path / "bad.json").write_text(json.dumps(report))
    capsys.readouterr()
    for args in (["report", "bad.json", "--html", "r.html", "--markdown", "r.md"],
                 ["badge", "--report", "bad.json", "-o", "b.svg"]):
        code, err = _call(args, capsys)
        assert code == 2, err
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"mlfunnel: error: bad.json: {field}: "), lines[0]
    assert not (pytester.path / "r.html").exists()


def test_a_history_line_of_the_wrong_shape_is_skipped_naming_the_field(
        pytester: pytest.Pytester, real_report: tuple[dict[str, Any], dict[str, Any]]) -> None:
    good = real_report[1]
    bad = copy.deepcopy(good)
    bad["release"] = "v2.0.0"
    bad["gates"][0]["passed"] = "all"
    history = pytester.path / ".mlfunnel" / "history.jsonl"
    history.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    for args in (["history"], ["history", "--html", "h.html"], ["badge", "-o", "b.svg"]):
        done = cli_run(pytester, *args)
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines() == [
            "mlfunnel: note: .mlfunnel/history.jsonl:2: not a valid history entry "
            "(gates[0].passed: Input should be a valid integer (got 'all')) (skipped, left "
            "in place)"]
    history.write_text(json.dumps(bad) + "\n")
    done = cli_run(pytester, "history", "--html", "h.html")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "mlfunnel: error: .mlfunnel/history.jsonl: no readable history entries (1 line "
        "skipped; line 1: not a valid history entry (gates[0].passed: Input should be a valid "
        "integer (got 'all')))"]


def test_a_file_that_is_no_history_at_all_is_one_line_not_a_note_per_line(
        pytester: pytest.Pytester, real_report: tuple[dict[str, Any], dict[str, Any]]) -> None:
    # the JSON report given where the history belongs: hundreds of lines, none an entry
    lines = len((pytester.path / "report.json").read_text().splitlines())
    assert lines > 50
    for args in (["history", "--history", "report.json"],
                 ["badge", "--history", "report.json", "-o", "b.svg"]):
        done = cli_run(pytester, *args)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            f"mlfunnel: error: report.json: no readable history entries ({lines} lines "
            "skipped; line 1: not JSON (Expecting property name enclosed in double quotes at "
            "column 2))"]
    report = (pytester.path / "report.json").read_text()
    done = cli_run(pytester, "report", "report.json", "--history", "report.json",
                   "--markdown", "r.md")
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        f"mlfunnel: note: report.json: no readable history entries ({lines} lines skipped; "
        "line 1: not JSON (Expecting property name enclosed in double quotes at column 2))"]
    assert (pytester.path / "report.json").read_text() == report


def test_invalid_utf8_in_the_config_is_one_line(pytester: pytest.Pytester) -> None:
    (pytester.path / "odd.toml").write_bytes(b'[tool.mlfunnel]\nhistory = "h\xff.jsonl"\n')
    done = cli_run(pytester, "history", "--config", "odd.toml")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "mlfunnel: error: odd.toml: cannot read: not valid UTF-8: byte 0xff at line 2, column 13 "
        "(TOML files are UTF-8; save the file as UTF-8)"]


# --------------------------------------------------------------------------- mutations
_ODD_VALUES: list[Any] = [None, True, False, 0, -1, 2**63, 10**30, 1.5, -0.0, float("nan"),
                          float("inf"), "", "x" * 5000, "\x1b[31mred\x07", "../../etc",
                          "v1.0.0", "data", "failed", "passed", "not run", [], {}, [None],
                          {"name": "data"}, ["data", "data"], {"": None}]


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*here, index))
    return found


def mutate(document: Any, rng: random.Random) -> Any:
    """One to three random changes: replace, delete, duplicate, swap types, add keys."""
    document = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(document) if p]
        if not paths:
            return document
        path = rng.choice(paths)
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        operation = rng.choice(["replace", "replace", "delete", "duplicate", "wrap", "add",
                                "stringify"])
        if operation == "replace":
            parent[last] = copy.deepcopy(rng.choice(_ODD_VALUES))
        elif operation == "delete":
            del parent[last]
        elif operation == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif operation == "wrap":
            parent[last] = [parent[last]]
        elif operation == "add" and isinstance(parent[last], dict):
            parent[last][rng.choice(["extra", "gates", "name", "0"])] = rng.choice(
                _ODD_VALUES)
        elif operation == "stringify":
            parent[last] = json.dumps(parent[last])
    return document


def _call(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    except Exception:  # the bug this test hunts: a traceback
        pytest.fail(f"mlfunnel {' '.join(args)} raised:\n{traceback.format_exc()}")
    return code, capsys.readouterr().err


def test_hundreds_of_mutated_reports_and_history_lines_never_traceback(
        pytester: pytest.Pytester, real_report: tuple[dict[str, Any], dict[str, Any]],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pytester.path)
    report, line = real_report
    rng = random.Random(SEED)
    refused = 0
    for number in range(MUTATIONS):
        mutated = mutate(report, rng)
        path = Path(f"m{number}.json")
        path.write_text(json.dumps(mutated), encoding="utf-8")
        for args in (["report", str(path), "--html", "m.html", "--markdown", "m.md",
                      "--no-history"], ["badge", "--report", str(path), "-o", "m.svg"]):
            code, err = _call(args, capsys)
            assert code in (0, 2), (args, err)
            if code == 2:
                refused += 1
                assert err.count("\n") == 1 and err.startswith(
                    f"mlfunnel: error: {path}: "), err
        history = Path(".mlfunnel") / "history.jsonl"
        history.write_text(json.dumps(line) + "\n" + json.dumps(mutate(line, rng)) + "\n",
                           encoding="utf-8")
        for args in (["history"], ["history", "--html", "h.html"], ["badge", "-o", "h.svg"]):
            code, err = _call(args, capsys)
            assert code in (0, 2), (args, err)
            assert "Traceback" not in err
    # the mutations are not all harmless: most are refused, each with one line
    assert refused > MUTATIONS // 2

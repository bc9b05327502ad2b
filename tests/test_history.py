"""Recording runs in the history file, comparing with the last release, --funnel-no-regress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_mlfunnel.history import SCHEMA, compare, read_history, record, summary_of

CONFIG = """
[tool.mlfunnel]
funnel = ["data", "problem", "model"]
require = "{require}"
{extra}

[tool.mlfunnel.data.volume]
metrics = "reports/eval.json"
expect = {{ rows = ">= 100" }}

[tool.mlfunnel.problem.goal]
metrics = "reports/eval.json"
expect = {{ signed = "== 1" }}

[tool.mlfunnel.model.quality]
metrics = "reports/eval.json"
expect = {{ accuracy = ">= 0.8", auc = ">= 0.85" }}
"""
#: eval.json values that stop the funnel at each stage (0 = none reached, 3 = all).
AT_STAGE = {
    0: {"rows": 10, "signed": 0, "accuracy": 0.5, "auc": 0.5},
    1: {"rows": 500, "signed": 0, "accuracy": 0.9, "auc": 0.9},
    2: {"rows": 500, "signed": 1, "accuracy": 0.7, "auc": 0.9},
    3: {"rows": 500, "signed": 1, "accuracy": 0.9, "auc": 0.9},
}


def make_project(pytester: pytest.Pytester, stage: int, extra: str = "",
                 require: str = "model") -> None:
    pytester.makepyprojecttoml(CONFIG.format(extra=extra, require=require))
    set_stage(pytester, stage)


def set_stage(pytester: pytest.Pytester, stage: int) -> None:
    reports = pytester.path / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "eval.json").write_text(json.dumps(AT_STAGE[stage]))


def history_lines(pytester: pytest.Pytester, name: str = ".mlfunnel/history.jsonl"
                  ) -> list[dict]:
    path = pytester.path / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(release: str, stage: int, statuses: dict[str, str] | None = None) -> dict:
    """A history entry as a recorded run writes it (three gates)."""
    gates = []
    for index, name in enumerate(["data", "problem", "model"]):
        status = "passed" if index < stage else "failed" if index == stage else "passed"
        gates.append({"name": name, "status": status, "passed": 1, "total": 1,
                      "statuses": {k: v for k, v in (statuses or {}).items()
                                   if k.startswith(f"{name}::")}})
    reached = ["data", "problem", "model"][stage - 1] if stage else None
    return {"schema": SCHEMA, "project": "demo", "release": release, "commit": None,
            "created": "2026-11-01T00:00:00Z", "funnel": ["data", "problem", "model"],
            "required": "model", "reached": reached, "stage": stage, "ok": stage == 3,
            "partial": False, "gates": gates}


# ----------------------------------------------------------------------------- the file
def test_record_appends_one_line_per_release_in_order(tmp_path: Path) -> None:
    path = tmp_path / "h" / "history.jsonl"
    for release, stage in [("v1", 1), ("v2", 2), ("v3", 3)]:
        record(path, summary(release, stage))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["release"] for line in lines] == ["v1", "v2", "v3"]
    assert [e["stage"] for e in read_history(path).entries] == [1, 2, 3]


def test_re_recording_a_release_replaces_its_line_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for release, stage in [("v1", 1), ("v2", 1), ("v3", 2)]:
        record(path, summary(release, stage))
    before = read_history(path)
    record(path, summary("v2", 3))
    after = read_history(path)
    assert [e["release"] for e in after.entries] == ["v1", "v2", "v3"]
    assert [e["stage"] for e in after.entries] == [1, 3, 2]
    assert after.entries[0] == before.entries[0]
    assert after.entries[2] == before.entries[2]


def test_corrupt_and_foreign_lines_are_reported_and_kept_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    good = json.dumps(summary("v1", 1))
    foreign = json.dumps({"schema": "someone-else/2", "release": "x"})
    garbage = b"{\"release\": \"v0\", \"stage\": 2, trunc\xff"
    path.write_bytes(good.encode() + b"\n" + garbage + b"\n" + foreign.encode()
                     + b"\n[1, 2]\n" + b'{"schema": "mlfunnel-report/1", "release": "v9"}')
    history = read_history(path)
    assert [e["release"] for e in history.entries] == ["v1"]
    notes = history.notes("h.jsonl")
    assert notes == [
        "h.jsonl:2: not UTF-8 text (skipped, left in place)",
        "h.jsonl:3: not a history entry (schema 'someone-else/2', expected "
        "'mlfunnel-report/1') (skipped, left in place)",
        "h.jsonl:4: not a history entry (a JSON list) (skipped, left in place)",
        "h.jsonl:5: not a valid history entry (stage: Field required) (skipped, left in place)",
    ]
    record(path, summary("v2", 2))
    blob = path.read_bytes()
    assert garbage + b"\n" in blob
    assert foreign.encode() + b"\n" in blob
    assert b'{"schema": "mlfunnel-report/1", "release": "v9"}\n' in blob  # no newline before
    assert [e["release"] for e in read_history(path).entries] == ["v1", "v2"]


def test_a_line_that_is_not_json_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"release": "v1", \n')
    assert read_history(path).notes("h") == [
        "h:1: not JSON (Expecting property name enclosed in double quotes at column 19) "
        "(skipped, left in place)"]


@pytest.mark.parametrize(("line", "problem"), [
    ('{"release": "v1\x01"}', "Invalid control character at column 16"),
    ('{"release": "v1', "Unterminated string starting at column 13"),
], ids=["control-character", "unterminated-string"])
def test_a_json_message_ending_in_at_says_at_once(tmp_path: Path, line: str,
                                                  problem: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(line + "\n")
    assert read_history(path).notes("h") == [f"h:1: not JSON ({problem}) (skipped, left in place)"]


@pytest.mark.parametrize(("line", "problem"), [
    ('{"schema": "mlfunnel-report/1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "arrays or objects nested too deeply to read"),
    ('{"schema": "mlfunnel-report/1", "stage": ' + "7" * 5000 + "}",
     "an integer of 5000 digits (at most 4300 are read)"),
], ids=["nested-deeply", "thousands-of-digits"])
def test_a_line_json_cannot_hold_in_memory_is_skipped_and_kept(tmp_path: Path, line: str,
                                                               problem: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(line + "\n" + json.dumps(summary("v1", 1)) + "\n")
    history = read_history(path)
    assert history.notes("h") == [f"h:1: not JSON ({problem}) (skipped, left in place)"]
    assert [e["release"] for e in history.entries] == ["v1"]
    record(path, summary("v2", 2))
    assert path.read_text().splitlines()[0] == line


def test_a_missing_history_is_empty_and_the_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "new" / "history.jsonl"
    assert read_history(path).entries == []
    record(path, summary("v1", 1))
    assert sorted(p.name for p in path.parent.iterdir()) == [".history.jsonl.lock",
                                                            "history.jsonl"]


WRITER = """
import json, sys
from pathlib import Path
from pytest_mlfunnel.history import record
path, prefix, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
base = json.loads(sys.argv[4])
for i in range(count):
    record(path, dict(base, release=f"{prefix}-{i}"))
"""


def test_two_processes_recording_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text("not json, must survive\n")
    base = json.dumps(summary("x", 2))
    count = 40
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), prefix, str(count),
                                 base]) for prefix in ("a", "b", "c")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    history = read_history(path)
    releases = [e["release"] for e in history.entries]
    assert sorted(releases) == sorted(f"{p}-{i}" for p in "abc" for i in range(count))
    assert history.lines[0].raw == b"not json, must survive"
    for prefix in "abc":  # each writer's own lines stay in the order it wrote them
        mine = [r for r in releases if r.startswith(prefix)]
        assert mine == [f"{prefix}-{i}" for i in range(count)]


def test_recording_parses_only_the_lines_the_run_did_not_read_already(tmp_path: Path) -> None:
    # a run reads the history for its comparison, then records under the lock: a history of
    # many releases was checked line by line twice
    path = tmp_path / "history.jsonl"
    for release in ("v1", "v2"):
        record(path, summary(release, 1))
    known = read_history(path)
    record(path, summary("other-run", 2))  # another run records in between
    path.write_bytes(path.read_bytes() + b"cut sho\n")
    before = record(path, summary("v3", 3), known)
    assert [line.entry is seen.entry for line, seen in zip(before.lines[:2], known.lines,
                                                           strict=True)] == [True, True]
    assert [e["release"] for e in before.entries] == ["v1", "v2", "other-run"]
    assert before.notes() == [f"{path}:4: not JSON (Expecting value at column 1) "
                              "(skipped, left in place)"]
    assert [e["release"] for e in read_history(path).entries] == [
        "v1", "v2", "other-run", "v3"]


# ----------------------------------------------------------------------------- comparison
def test_comparison_names_the_stage_change_and_criteria_that_started_failing() -> None:
    before = summary("v1.3.0", 3, {"model::quality::accuracy": "passed",
                                   "model::quality::auc": "passed",
                                   "problem::goal::signed": "failed"})
    now = summary("v1.4.0", 2, {"model::quality::accuracy": "failed",
                                "model::quality::auc": "passed",
                                "problem::goal::signed": "failed"})
    comparison = compare(now, before)
    assert comparison.line() == "since v1.3.0: model -> problem, down 1 stage"
    assert comparison.failing_line() == ("passed in v1.3.0, failing now: "
                                         "model::quality::accuracy")
    assert compare(before, summary("v1", 0)).line() == "since v1: none -> model, up 3 stages"
    assert compare(before, before).line() == "since v1.3.0: model -> model, same stage"
    assert compare(before, before).failing_line() is None


def test_summary_keeps_statuses_and_measured_numbers_but_not_criteria() -> None:
    report = {"schema": SCHEMA, "release": "v1", "stage": 1, "reached": "data",
              "funnel": ["data"], "gates": [{"name": "data", "status": "passed", "passed": 2,
                                             "total": 2, "criteria": [
                  {"id": "pyproject.toml::data::volume::rows", "status": "passed",
                   "evidence": "measured", "observed": 500},
                  {"id": "tests/test_x.py::test_y", "status": "passed",
                   "evidence": "attested", "observed": 3},
              ]}]}
    line = summary_of(report)
    gate = line["gates"][0]
    assert "criteria" not in gate
    assert gate["statuses"] == {"data::volume::rows": "passed",
                                "data::tests/test_x.py::test_y": "passed"}
    assert gate["observed"] == {"data::volume::rows": 500}


# ----------------------------------------------------------------------------- real runs
@pytest.mark.xdist_matters
def test_recording_writes_one_summary_line_once(pytester: pytest.Pytester, xdist_args: list[str]
                                                ) -> None:
    make_project(pytester, stage=2)
    result = pytester.runpytest("--funnel", "--funnel-record=v1.0.0", *xdist_args)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*note: recorded v1.0.0 in .mlfunnel/history.jsonl"])
    (line,) = history_lines(pytester)
    assert line["schema"] == SCHEMA
    assert (line["release"], line["stage"], line["reached"]) == ("v1.0.0", 2, "problem")
    assert [(g["name"], g["status"], g["passed"], g["total"]) for g in line["gates"]] == [
        ("data", "passed", 1, 1), ("problem", "passed", 1, 1), ("model", "failed", 1, 2)]
    assert line["gates"][2]["statuses"] == {"model::quality::accuracy": "failed",
                                            "model::quality::auc": "passed"}
    assert line["gates"][2]["observed"] == {"model::quality::accuracy": 0.7,
                                            "model::quality::auc": 0.9}
    assert "criteria" not in line["gates"][0]
    assert line["created"].endswith("Z")


def test_the_summary_compares_with_the_last_recorded_release(pytester: pytest.Pytester,
                                                             xdist_args: list[str]) -> None:
    make_project(pytester, stage=3)
    assert pytester.runpytest("--funnel", "--funnel-record=v1.3.0").ret == 0
    set_stage(pytester, 2)
    result = pytester.runpytest("--funnel", "--funnel-record=v1.4.0", *xdist_args)
    result.stdout.fnmatch_lines([
        "stage reached: problem (2/3) · required: model · BELOW REQUIRED GATE",
        "*gate model failed and the required gate is model",
        "since v1.3.0: model -> problem, down 1 stage",
        "  passed in v1.3.0, failing now: model::quality::accuracy",
    ])
    # Re-running the same release compares with the release before it, not with itself.
    set_stage(pytester, 3)
    result = pytester.runpytest("--funnel", "--funnel-record=v1.4.0")
    result.stdout.fnmatch_lines(["since v1.3.0: model -> model, same stage",
                                 "*note: replaced v1.4.0 in .mlfunnel/history.jsonl"])
    assert [line["release"] for line in history_lines(pytester)] == ["v1.3.0", "v1.4.0"]


def test_a_partial_run_does_not_claim_to_have_moved_stages(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=3)
    assert pytester.runpytest("--funnel", "--funnel-record=v1.3.0").ret == 0
    set_stage(pytester, 2)
    result = pytester.runpytest("--funnel", "-k", "accuracy")
    assert result.ret == 1  # the selected criterion fails as usual
    result.stdout.fnmatch_lines([
        "stage reached: none (0/3) · required: model · partial run",
        "since v1.3.0: model; this partial run reached none with what it selected "
        "(stages not compared)",
        "  passed in v1.3.0, failing now: model::quality::accuracy",
    ])
    result = pytester.runpytest("--funnel", "--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["since v1.3.0: model; this partial run reached none *"])
    assert "down" not in result.stdout.str()


def test_a_corrupt_history_line_is_a_note_and_stays(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=3)
    history = pytester.path / ".mlfunnel" / "history.jsonl"
    history.parent.mkdir()
    history.write_text("this is not json\n" + json.dumps(summary("v0", 1)) + "\n")
    result = pytester.runpytest("--funnel", "--funnel-record=v1")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "since v0: data -> model, up 2 stages",
        "*note: .mlfunnel/history.jsonl:1: not JSON (Expecting value at column 1) "
        "(skipped, left in place)",
    ])
    assert history.read_text().splitlines()[0] == "this is not json"
    assert len(history.read_text().splitlines()) == 3


def test_a_history_line_nested_too_deeply_does_not_stop_the_run(pytester: pytest.Pytester
                                                                ) -> None:
    make_project(pytester, stage=3)
    history = pytester.path / ".mlfunnel" / "history.jsonl"
    history.parent.mkdir()
    deep = '{"schema": "mlfunnel-report/1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    history.write_text(deep + "\n" + json.dumps(summary("v0", 1)) + "\n")
    result = pytester.runpytest("--funnel", "--funnel-record=v1", "--funnel-no-regress")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "since v0: data -> model, up 2 stages",
        "*note: .mlfunnel/history.jsonl:1: not JSON (arrays or objects nested too deeply to "
        "read) (skipped, left in place)",
        "*note: recorded v1 in .mlfunnel/history.jsonl",
    ])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert history.read_text().splitlines()[0] == deep


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_history_that_is_a_named_pipe_is_refused_not_waited_on(pytester: pytest.Pytester
                                                                 ) -> None:
    """Opening a FIFO waits for a writer forever: the run must end all the same."""
    make_project(pytester, stage=3)
    (pytester.path / ".mlfunnel").mkdir()
    os.mkfifo(pytester.path / ".mlfunnel" / "history.jsonl")
    result = pytester.runpytest_subprocess("--funnel", timeout=120)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*note: cannot read .mlfunnel/history.jsonl: a FIFO (named "
                                 "pipe), not a regular file"])
    for option, usage in (("--funnel-record=v1", "--funnel-record"),
                          ("--funnel-no-regress", "--funnel-no-regress")):
        result = pytester.runpytest_subprocess("--funnel", option, timeout=120)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {usage}: .mlfunnel/history.jsonl: is a FIFO "
                                     "(named pipe), *(the history file, "
                                     "tool.mlfunnel.history)"])


def test_no_regress_with_a_history_that_is_a_directory_is_a_usage_error(
        pytester: pytest.Pytester) -> None:
    """A regression that cannot be looked for is not a pass."""
    make_project(pytester, stage=3)
    (pytester.path / ".mlfunnel" / "history.jsonl").mkdir(parents=True)
    result = pytester.runpytest("--funnel", "--funnel-no-regress")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --funnel-no-regress: .mlfunnel/history.jsonl: is a directory, not a history "
        "file to compare with (the history file, tool.mlfunnel.history)"])


def test_the_history_path_comes_from_the_config(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=1, extra='history = "ops/funnel-history.jsonl"')
    pytester.runpytest("--funnel", "--funnel-record")
    (line,) = history_lines(pytester, "ops/funnel-history.jsonl")
    assert line["stage"] == 1
    assert not (pytester.path / ".mlfunnel").exists()


def test_a_partial_run_is_not_recorded(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=3)
    result = pytester.runpytest("--funnel", "--funnel-record=v1", "-k", "accuracy")
    result.stdout.fnmatch_lines(["*note: not recorded in .mlfunnel/history.jsonl: partial run "
                                 "(criteria were deselected)"])
    assert not (pytester.path / ".mlfunnel" / "history.jsonl").exists()


def test_without_record_nothing_is_written(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=3)
    assert pytester.runpytest("--funnel").ret == 0
    assert not (pytester.path / ".mlfunnel").exists()


# ----------------------------------------------------------------------------- no-regress
def test_no_regress_fails_a_run_below_the_last_release(pytester: pytest.Pytester,
                                                       xdist_args: list[str]) -> None:
    make_project(pytester, stage=3, require="data")
    assert pytester.runpytest("--funnel", "--funnel-record=v1.3.0").ret == 0
    set_stage(pytester, 2)
    # Without the option the slip is shown, and the run passes (data is required).
    result = pytester.runpytest("--funnel", *xdist_args)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["stage reached: problem (2/3) · required: data · OK",
                                 "since v1.3.0: model -> problem, down 1 stage"])
    result = pytester.runpytest("--funnel", "--funnel-no-regress", "--funnel-json=r.json",
                                *xdist_args)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "stage reached: problem (2/3) · required: data · REGRESSED since v1.3.0",
        "  regressed: stage reached problem (2/3) is 1 stage below v1.3.0's model (3/3) "
        "(--funnel-no-regress)",
    ])
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["ok"] is False
    assert report["verdict"] == ("stage reached: problem (2/3) · required: data · "
                                 "REGRESSED since v1.3.0")


def test_no_regress_passes_at_or_above_the_last_release(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=2, require="none")
    assert pytester.runpytest("--funnel", "--funnel-record=v1").ret == 0
    result = pytester.runpytest("--funnel", "--funnel-no-regress")
    assert result.ret == 0
    set_stage(pytester, 3)
    result = pytester.runpytest("--funnel", "--funnel-no-regress")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["stage reached: model (3/3) · required: none · REPORT ONLY",
                                 "since v1: problem -> model, up 1 stage"])


def test_no_regress_without_history_says_so_and_passes(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=3)
    result = pytester.runpytest("--funnel", "--funnel-no-regress")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*note: --funnel-no-regress: no earlier release recorded in "
                                 ".mlfunnel/history.jsonl to compare with"])


def test_no_regress_is_not_enforced_on_a_partial_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=3)
    assert pytester.runpytest("--funnel", "--funnel-record=v1").ret == 0
    result = pytester.runpytest("--funnel", "--funnel-no-regress", "-k", "volume")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["stage reached: data (1/3) · required: model · partial run"])


def test_no_regress_also_fails_when_the_required_gate_is_missed(pytester: pytest.Pytester
                                                                ) -> None:
    make_project(pytester, stage=3)
    assert pytester.runpytest("--funnel", "--funnel-record=v1").ret == 0
    set_stage(pytester, 1)
    result = pytester.runpytest("--funnel", "--funnel-no-regress")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "stage reached: data (1/3) · required: model · BELOW REQUIRED GATE · "
        "REGRESSED since v1",
        "  gate problem failed and the required gate is model",
        "  regressed: stage reached data (1/3) is 2 stages below v1's model (3/3) "
        "(--funnel-no-regress)",
    ])


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need privileges on Windows")
def test_a_history_that_is_a_symlink_stays_one_and_its_target_gets_the_lines(
        pytester: pytest.Pytester) -> None:
    # a history kept in a shared place and linked into the project: replacing the link by a
    # file of its own would leave the shared history behind, and later runs would not see it
    make_project(pytester, stage=3)
    shared = pytester.path / "shared" / "history.jsonl"
    shared.parent.mkdir()
    shared.write_text("this is not json\n" + json.dumps(summary("v0", 1)) + "\n")
    link = pytester.path / ".mlfunnel" / "history.jsonl"
    link.parent.mkdir()
    link.symlink_to(shared)
    result = pytester.runpytest("--funnel", "--funnel-record=v1")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "since v0: data -> model, up 2 stages",
        "*note: .mlfunnel/history.jsonl:1: not JSON (Expecting value at column 1) "
        "(skipped, left in place)",
        "*note: recorded v1 in .mlfunnel/history.jsonl",
    ])
    assert pytester.runpytest("--funnel", "--funnel-record=v2").ret == 0
    assert link.is_symlink() and link.resolve() == shared.resolve()
    lines = shared.read_text().splitlines()
    assert lines[0] == "this is not json"
    assert [json.loads(line)["release"] for line in lines[1:]] == ["v0", "v1", "v2"]
    assert sorted(p.name for p in link.parent.iterdir()) == ["history.jsonl"]
    assert ".history.jsonl.lock" in [p.name for p in shared.parent.iterdir()]


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need privileges on Windows")
def test_a_history_that_is_a_symlink_loop_is_an_error_of_the_run_not_an_internal_error(
        pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=3)
    link = pytester.path / ".mlfunnel" / "history.jsonl"
    link.parent.mkdir()
    link.symlink_to("history.jsonl")  # itself
    result = pytester.runpytest("--funnel", "--funnel-record=v1", "--funnel-no-regress")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "  note: cannot read .mlfunnel/history.jsonl: Too many levels of symbolic links",
        "error: --funnel-no-regress: cannot read .mlfunnel/history.jsonl: Too many levels of "
        "symbolic links",
        "error: could not record v1 in .mlfunnel/history.jsonl: Too many levels of symbolic "
        "links",
    ])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert link.is_symlink()


def test_a_release_name_with_a_newline_or_escape_stays_on_its_summary_line(
        pytester: pytest.Pytester) -> None:
    # a release named by a hook from a file or an environment variable can hold anything;
    # a newline would forge a summary line, an escape sequence recolour the terminal
    make_project(pytester, stage=3)
    assert pytester.runpytest("--funnel", "--funnel-record=v1\nok\x1b\x07").ret == 0
    set_stage(pytester, 1)
    result = pytester.runpytest("--funnel", "--funnel-record=v2\u2028x", "--funnel-no-regress")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "stage reached: data (1/3) · required: model · BELOW REQUIRED GATE · REGRESSED since "
        "v1\\nok\\x1b\\x07",
        "  regressed: stage reached data (1/3) is 2 stages below v1\\nok\\x1b\\x07's model (3/3) "
        "(--funnel-no-regress)",
        "since v1\\nok\\x1b\\x07: model -> data, down 2 stages",
        "  note: recorded v2\\u2028x in .mlfunnel/history.jsonl",
    ])
    assert "\x1b" not in result.stdout.str() and "\x07" not in result.stdout.str()
    assert [entry["release"] for entry in history_lines(pytester)] == [
        "v1\nok\x1b\x07", "v2\u2028x"]


def test_an_unwritable_history_is_a_usage_error_when_recording(
        pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=3)
    (pytester.path / ".mlfunnel").write_text("a file where the directory should be")
    result = pytester.runpytest("--funnel", "--funnel-record=v1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --funnel-record: .mlfunnel/history.jsonl: .mlfunnel is not a directory (the "
        "history file, tool.mlfunnel.history)"])
    assert "Traceback" not in result.stderr.str()


def test_hook_receives_the_report_with_the_previous_release(pytester: pytest.Pytester) -> None:
    make_project(pytester, stage=2)
    assert pytester.runpytest("--funnel", "--funnel-record=v1").ret == 1
    pytester.makeconftest(textwrap.dedent("""
        def pytest_mlfunnel_report(report):
            print("previous:", report.previous["release"], report.previous["stage"])
    """))
    result = pytester.runpytest("--funnel", "-s")
    result.stdout.fnmatch_lines(["*previous: v1 2"])


def test_no_regress_applies_even_when_only_reporting(pytester: pytest.Pytester) -> None:
    """Asking for --funnel-no-regress is asking to fail on a slide, whatever require says."""
    make_project(pytester, stage=3, require="none")
    assert pytester.runpytest("--funnel", "--funnel-record=v1").ret == 0
    set_stage(pytester, 0)
    assert pytester.runpytest("--funnel").ret == 0
    result = pytester.runpytest("--funnel", "--funnel-no-regress")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "stage reached: none (0/3) · required: none · REPORT ONLY · REGRESSED since v1",
        "  regressed: stage reached none (0/3) is 3 stages below v1's model (3/3) "
        "(--funnel-no-regress)",
    ])

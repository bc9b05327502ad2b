"""``mlfunnel portfolio``: the computation on hand-made histories with known answers, and the
command end to end (terminal, JSON, Markdown, bad input)."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.cli import main
from pytest_mlfunnel.funnel import DEFAULT_FUNNEL
from pytest_mlfunnel.history import summary_line
from pytest_mlfunnel.portfolio import (
    Portfolio,
    parse_as_of,
    parse_days,
    read_paths,
    summarize,
)

AS_OF = dt.date(2026, 11, 29)
THREE = ("data", "problem", "model")


def entry(project: str | None, release: str, day: str, stage: int,
          funnel: Sequence[str] = DEFAULT_FUNNEL) -> dict[str, Any]:
    """A report dict as ``Report.to_dict()`` makes it (gates with criteria)."""
    gates = []
    for index, gate in enumerate(funnel, start=1):
        status = "passed" if index <= stage else "failed" if index == stage + 1 else "empty"
        gates.append({"name": gate, "status": status, "passed": int(index <= stage),
                      "total": 1, "criteria": [{
                          "id": f"pyproject.toml::{gate}::check::x", "check": "check",
                          "kind": "metrics", "status": "passed" if index <= stage else "failed",
                          "evidence": "measured", "observed": 1.0, "expected": ">= 1",
                          "message": "", "duration_s": 0.01}]})
    data: dict[str, Any] = {
        "schema": "mlfunnel-report/1", "project": project, "release": release,
        "commit": None, "created": f"{day}T09:30:00Z", "funnel": list(funnel),
        "required": "none", "reached": funnel[stage - 1] if stage else None, "stage": stage,
        "ok": True, "partial": False, "verdict": "", "reasons": [], "gates": gates}
    if project is None:
        del data["project"]
    return data


def write_history(path: Path, entries: Sequence[dict[str, Any]], extra: bytes = b"") -> Path:
    """A history file written as ``--funnel-record`` writes its lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(summary_line(e) + b"\n" for e in entries) + extra)
    return path


def project_history(root: Path, name: str, stages: Sequence[tuple[str, int]],
                    funnel: Sequence[str] = DEFAULT_FUNNEL) -> Path:
    entries = [entry(name, f"v{i}", day, stage, funnel)
               for i, (day, stage) in enumerate(stages, start=1)]
    return write_history(root / name / ".mlfunnel" / "history.jsonl", entries)


def portfolio_of(*paths: Path, as_of: dt.date = AS_OF, stalled_after: int = 90) -> Portfolio:
    return summarize(read_paths(paths), as_of, stalled_after)


def by_name(portfolio: Portfolio) -> dict[str, Any]:
    return {p.name: p for p in portfolio.projects}


# ----------------------------------------------------------------------------- computation
def test_each_gate_counts_the_projects_at_or_beyond_it_and_the_conversion(tmp_path: Path
                                                                          ) -> None:
    for name, stage in [("a", 0), ("b", 1), ("c", 2), ("d", 2), ("e", 3)]:
        project_history(tmp_path, name, [("2026-10-01", stage)], THREE)
    portfolio = portfolio_of(tmp_path)
    [group] = portfolio.groups
    assert group.gates == THREE
    steps = [(s.gate, s.reached, s.previous, s.stopped_here) for s in group.steps]
    assert steps == [("data", 4, 5, 1), ("problem", 3, 4, 1), ("model", 1, 3, 2)]
    assert [s.conversion for s in group.steps] == [0.8, 0.75, pytest.approx(1 / 3)]
    assert group.through == 1
    data = portfolio.to_dict()["funnels"][0]
    assert data["not_started"] == 1 and data["through"] == 1
    assert [s["conversion"] for s in data["steps"]] == [0.8, 0.75, 0.3333]


def test_the_median_days_to_pass_a_gate_come_from_the_histories(tmp_path: Path) -> None:
    # Waits at data: 10, 20 and 40 days; "late" adopted the funnel already past data, so
    # its history does not show how long data took and it is not measured there.
    project_history(tmp_path, "p10", [("2026-01-01", 0), ("2026-01-11", 1)], THREE)
    project_history(tmp_path, "p20", [("2026-01-01", 0), ("2026-01-05", 0),
                                      ("2026-01-21", 2)], THREE)
    project_history(tmp_path, "p40", [("2026-02-01", 0), ("2026-03-13", 1),
                                      ("2026-03-20", 2)], THREE)
    project_history(tmp_path, "late", [("2026-01-01", 1), ("2026-01-31", 2)], THREE)
    [group] = portfolio_of(tmp_path).groups
    data, problem, model = group.steps
    assert (data.median_days, data.measured) == (20.0, 3)
    # problem: p40 took 7 days after data, late 30 days; p20 jumped from no gate to
    # problem at once, so it never waited at problem and is not measured there.
    assert (problem.median_days, problem.measured) == (18.5, 2)
    assert (model.median_days, model.measured) == (None, 0)
    assert by_name(portfolio_of(tmp_path))["p20"].days_to_pass == {1: 20}


def test_a_project_is_stalled_when_its_stage_has_not_changed_for_longer_than_the_limit(
        tmp_path: Path) -> None:
    project_history(tmp_path, "moving", [("2026-08-01", 1), ("2026-08-31", 2)], THREE)
    project_history(tmp_path, "stuck", [("2026-06-01", 0), ("2026-08-30", 2),
                                        ("2026-10-01", 2), ("2026-11-20", 2)], THREE)
    project_history(tmp_path, "done", [("2025-01-01", 3)], THREE)
    projects = by_name(portfolio_of(tmp_path))
    # moving: 90 days in stage as of 2026-11-29 (not more than 90), stuck: 91 days.
    assert (projects["moving"].days_in_stage, projects["moving"].stalled) == (90, False)
    assert (projects["stuck"].days_in_stage, projects["stuck"].stalled) == (91, True)
    assert projects["stuck"].since == dt.date(2026, 8, 30)
    # Through every gate is the end of the funnel, not a stall.
    assert projects["done"].through and not projects["done"].stalled
    [group] = portfolio_of(tmp_path).groups
    assert [s.stalled_here for s in group.steps] == [[], [], ["stuck"]]
    assert by_name(portfolio_of(tmp_path, stalled_after=30))["moving"].stalled


def test_a_project_that_fell_back_keeps_its_best_stage_and_counts_from_its_fall(
        tmp_path: Path) -> None:
    project_history(tmp_path, "slip", [("2026-01-01", 1), ("2026-03-01", 3),
                                       ("2026-05-01", 2), ("2026-06-01", 2)])
    slip = by_name(portfolio_of(tmp_path))["slip"]
    assert (slip.stage, slip.reached, slip.best_stage, slip.best) == (2, "problem", 3, "model")
    assert slip.fell_back
    assert slip.since == dt.date(2026, 5, 1)  # the current stay at problem
    assert slip.first_reached == dt.date(2026, 3, 1)  # problem was first reached with model
    assert slip.days_in_stage == (AS_OF - dt.date(2026, 5, 1)).days
    assert [(p.release, p.stage) for p in slip.timeline] == [("v1", 1), ("v2", 3), ("v3", 2),
                                                            ("v4", 2)]
    [group] = portfolio_of(tmp_path).groups
    assert group.steps[2].reached == 0 and group.steps[2].ever_reached == 1


def test_several_histories_of_one_project_are_merged_by_release_and_date(tmp_path: Path
                                                                         ) -> None:
    # Two CI artifacts of the same project: overlapping releases, one re-recorded later.
    write_history(tmp_path / "run-1" / "history.jsonl", [
        entry("churn", "v1", "2026-01-01", 1), entry("churn", "v2", "2026-02-01", 1)])
    write_history(tmp_path / "run-2" / "history.jsonl", [
        entry("churn", "v2", "2026-02-01", 1), entry("churn", "v2", "2026-02-03", 2),
        entry("churn", "v3", "2026-04-01", 3)])
    write_history(tmp_path / "run-0" / "history.jsonl", [entry("churn", "v0", "2025-12-01", 0)])
    portfolio = summarize(read_paths(sorted(tmp_path.glob("run-*/history.jsonl"))), AS_OF)
    [churn] = portfolio.projects
    assert churn.releases == 4
    assert [(p.release, p.day.isoformat(), p.stage) for p in churn.timeline] == [
        ("v0", "2025-12-01", 0), ("v1", "2026-01-01", 1), ("v2", "2026-02-03", 2),
        ("v3", "2026-04-01", 3)]
    assert len(churn.sources) == 3 and portfolio.entries == 6


def test_a_project_without_a_name_is_named_after_its_folder(tmp_path: Path) -> None:
    write_history(tmp_path / "fraud-detection" / ".mlfunnel" / "history.jsonl",
                  [entry(None, "v1", "2026-01-01", 1)])
    write_history(tmp_path / "artifacts" / "pricing" / "history.jsonl",
                  [entry("", "v1", "2026-01-01", 2)])
    portfolio = portfolio_of(tmp_path / "fraud-detection",
                             tmp_path / "artifacts" / "pricing" / "history.jsonl")
    assert sorted(by_name(portfolio)) == ["fraud-detection", "pricing"]


def test_custom_funnels_are_grouped_by_their_own_gates_and_the_mismatch_is_reported(
        tmp_path: Path) -> None:
    project_history(tmp_path, "a", [("2026-10-01", 2)])
    project_history(tmp_path, "b", [("2026-10-01", 3)])
    project_history(tmp_path, "c", [("2026-10-01", 1)], ("data", "model", "deployment"))
    portfolio = portfolio_of(tmp_path)
    assert [(g.gates, len(g.projects)) for g in portfolio.groups] == [
        (DEFAULT_FUNNEL, 2), (("data", "model", "deployment"), 1)]
    assert portfolio.mismatches == [
        "1 project uses another funnel than data, problem, model, organization, deployment, "
        "usage, effectiveness, maintenance: data, model, deployment (c); counted in a funnel "
        "of their own"]
    custom = portfolio.groups[1]
    assert [(s.gate, s.reached) for s in custom.steps] == [("data", 1), ("model", 0),
                                                          ("deployment", 0)]


def test_a_funnel_changed_within_a_history_is_counted_by_gate_name_and_reported(
        tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write_history(path, [entry("x", "v1", "2026-01-01", 2, ("data", "model")),
                         entry("x", "v2", "2026-02-01", 2, ("data", "problem", "model"))])
    portfolio = portfolio_of(path)
    [x] = portfolio.projects
    # model was gate 2 of the old funnel, gate 3 of the new: v1 counts as stage 3.
    assert [(p.release, p.stage) for p in x.timeline] == [("v1", 3), ("v2", 2)]
    assert x.fell_back
    assert portfolio.mismatches == [
        "x: its funnel changed after v1 (data, model -> data, problem, model); earlier "
        "stages are counted by gate name"]


def test_as_of_counts_days_to_that_date_and_leaves_out_later_releases(tmp_path: Path) -> None:
    project_history(tmp_path, "p", [("2026-01-01", 1), ("2026-03-01", 2), ("2026-09-01", 3)])
    then = portfolio_of(tmp_path, as_of=dt.date(2026, 4, 1))
    [p] = then.projects
    assert (p.stage, p.since, p.days_in_stage, p.releases) == (2, dt.date(2026, 3, 1), 31, 2)
    assert then.later_than_as_of == 1
    [now] = portfolio_of(tmp_path).projects
    assert (now.stage, now.days_in_stage) == (3, (AS_OF - dt.date(2026, 9, 1)).days)
    # A release recorded on the as-of day itself counts.
    [same_day] = portfolio_of(tmp_path, as_of=dt.date(2026, 9, 1)).projects
    assert (same_day.stage, same_day.days_in_stage) == (3, 0)


def test_json_reports_are_read_as_one_release(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "fraud.json"
    report.parent.mkdir()
    report.write_text(json.dumps(entry("fraud", "v7", "2026-11-01", 4), indent=2))
    [fraud] = portfolio_of(report).projects
    assert (fraud.name, fraud.stage, fraud.last_release) == ("fraud", 4, "v7")


def test_lines_laid_out_otherwise_are_decoded_whole(tmp_path: Path) -> None:
    """The fast reader skips the gates of lines it wrote; any other layout is read in full."""
    reordered = entry("odd", "v1", "2026-01-01", 2)
    reordered = {"gates": reordered.pop("gates"), **reordered}
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(reordered) + "\n" + json.dumps(entry("odd", "v2", "2026-02-01",
                                                                     3), indent=None) + "\n")
    [odd] = portfolio_of(path).projects
    assert [(p.release, p.stage) for p in odd.timeline] == [("v1", 2), ("v2", 3)]


def test_bad_input_is_reported_with_its_path_and_skipped(tmp_path: Path) -> None:
    good = project_history(tmp_path, "good", [("2026-01-01", 1)])
    cut = b'{"schema":"mlfunnel-report/1","release":"v2","stage":2,'
    foreign = json.dumps({"schema": "other/2", "release": "v1"}).encode()
    no_date = summary_line({**entry("good", "v3", "2026-03-01", 3), "created": "yesterday"})
    with good.open("ab") as handle:
        handle.write(b"\n".join([cut, b"{not json", foreign, no_date]) + b"\n")
    other_report = tmp_path / "other.json"
    other_report.write_text(json.dumps({"schema": "mlfunnel-portfolio/1"}))
    empty_folder = tmp_path / "nothing-here"
    empty_folder.mkdir()
    reading = read_paths([tmp_path / "good", other_report, empty_folder,
                          tmp_path / "missing.jsonl"])
    history = str(good)
    assert [str(p) for p in reading.problems] == [
        f"{history}:2: not JSON (Expecting property name enclosed in double quotes at "
        "column 56)",
        f"{history}:3: not JSON (Expecting property name enclosed in double quotes at "
        "column 2)",
        f"{history}:4: not a history entry (schema 'other/2', expected 'mlfunnel-report/1')",
        f"{history}:5: no valid 'created' date ('yesterday')",
        f"{other_report}: not an mlfunnel report (schema 'mlfunnel-portfolio/1', expected "
        "'mlfunnel-report/1')",
        f"{empty_folder}: no .mlfunnel/history.jsonl found in this folder",
        f"{tmp_path / 'missing.jsonl'}: no such file or directory",
    ]
    assert [r.release for r in reading.releases] == ["v1"]
    assert reading.lines_skipped == 5


def test_lines_json_cannot_hold_are_reported_and_the_rest_is_counted(tmp_path: Path) -> None:
    good = project_history(tmp_path, "good", [("2026-01-01", 1)])
    deep = b'{"schema":"mlfunnel-report/1","x":' + b"[" * 100_000 + b"]" * 100_000 + b',"gates":[]}'
    digits = b'{"schema":"mlfunnel-report/1","stage":' + b"7" * 5000 + b',"gates":[]}'
    with good.open("ab") as handle:
        handle.write(deep + b"\n" + digits + b"\n")
    report = tmp_path / "deep.json"
    report.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    reading = read_paths([tmp_path / "good", report])
    assert [str(p) for p in reading.problems] == [
        f"{good}:2: not JSON (arrays or objects nested too deeply to read)",
        f"{good}:3: not JSON (an integer of 5000 digits (at most 4300 are read))",
        f"{report}: not JSON (arrays or objects nested too deeply to read)",
    ]
    assert [r.release for r in reading.releases] == ["v1"]


def test_a_file_full_of_foreign_lines_is_noted_a_few_times_then_counted(tmp_path: Path
                                                                        ) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(f"line {i}\n" for i in range(40)))
    reading = read_paths([path])
    assert len(reading.problems) == 6
    assert str(reading.problems[-1]) == f"{path}: 35 more lines skipped"
    assert reading.lines_skipped == 40


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="file permissions do not stop this user")
def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = project_history(tmp_path, "locked", [("2026-01-01", 1)])
    path.chmod(0)
    try:
        reading = read_paths([path])
    finally:
        path.chmod(0o644)
    assert [str(p) for p in reading.problems] == [f"{path}: cannot read: Permission denied"]


def test_a_non_regular_file_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "history.jsonl"
    os.mkfifo(fifo)
    reading = read_paths([fifo])  # opening a FIFO would wait for a writer forever
    assert [str(p) for p in reading.problems] == [f"{fifo}: cannot read: not a regular file"]


def test_folders_are_searched_recursively_past_caches_and_version_control(tmp_path: Path
                                                                          ) -> None:
    project_history(tmp_path / "team-a", "churn", [("2026-01-01", 1)])
    project_history(tmp_path / "team-b" / "deep" / "er", "fraud", [("2026-01-01", 2)])
    project_history(tmp_path / ".git" / "x", "ghost", [("2026-01-01", 2)])
    project_history(tmp_path / "node_modules", "ghost2", [("2026-01-01", 2)])
    assert sorted(by_name(portfolio_of(tmp_path))) == ["churn", "fraud"]


@pytest.mark.parametrize(("text", "days"), [("90d", 90), ("90 days", 90), ("12w", 84),
                                            ("45", 45), ("1 day", 1)])
def test_stalled_after_reads_days_and_weeks(text: str, days: int) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["3m", "soon", "-5d", "1.5d", "", "9999999d"])
def test_stalled_after_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="expected a number of days or weeks like 90d or 12w"):
        parse_days(text)


def test_as_of_is_a_date() -> None:
    assert parse_as_of("2026-03-01") == dt.date(2026, 3, 1)
    with pytest.raises(ValueError, match="expected a date like 2026-11-29, got 'March'"):
        parse_as_of("March")


# ----------------------------------------------------------------------------- the command
def mlfunnel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which("mlfunnel", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "pytest_mlfunnel.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def portfolio_dir(tmp_path: Path) -> Path:
    """Five projects of the default funnel and one of a custom funnel."""
    root = tmp_path / "repos"
    project_history(root, "churn", [("2026-01-05", 0), ("2026-02-04", 1), ("2026-03-06", 3)])
    project_history(root, "fraud", [("2026-04-01", 1), ("2026-05-01", 4), ("2026-07-01", 3)])
    project_history(root, "pricing", [("2026-10-01", 1), ("2026-11-01", 2)])
    project_history(root, "search", [("2025-06-01", 7), ("2025-09-01", 8), ("2026-11-01", 8)])
    project_history(root, "ideas", [("2026-11-20", 0)])
    project_history(root, "vision", [("2026-05-01", 1)], ("data", "labels", "model"))
    return root


def test_a_history_named_twice_is_read_once(portfolio_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # the folder and one of its projects, or a link to a history already read: the count of
    # files and releases read said twice as many
    churn = portfolio_dir / "churn" / ".mlfunnel" / "history.jsonl"
    (portfolio_dir.parent / "link.jsonl").symlink_to(churn)
    assert main(["portfolio", str(portfolio_dir), str(churn), str(portfolio_dir / "churn"),
                 str(portfolio_dir.parent / "link.jsonl"), "--as-of", "2026-11-29"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[-1] == "read 13 releases from 6 files"


def test_the_terminal_table_shows_each_gate_and_each_project(portfolio_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    assert main(["portfolio", str(portfolio_dir), "--as-of", "2026-11-29"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    expected = [
        "ml funnel portfolio · 6 projects · 2 funnels · as of 2026-11-29 · stalled after 90 days",
        "",
        "funnel: data > problem > model > organization > deployment > usage > effectiveness "
        "> maintenance (5 projects)",
        "#  gate * reached * from previous  median days to pass  stopped here  stalled here",
        "*",
        "1  data * 4  ################···· * 4/5  80% * 30 (n=1) * 1 * -",
        "2  problem * 4  ################···· * 4/4 100% * 30 (n=3) * 0 * -",
        "3  model * 3  ############········ * 3/4  75% * - * 1 * -",
        "4  organization * 1  ####················ * 1/3  33% * - * 2 * 2",
        "5  deployment * 1  ####················ * 1/1 100% * - * 0 * -",
        "*",
        "8  maintenance * 1  ####················ * 1/1 100% * 92 (n=1) * 0 * -",
        "through every gate: 1 of 5",
        "stalled (no stage change for over 90 days), by the gate they have not passed:",
        "  organization (2): churn 268 d, fraud 151 d",
    ]
    # fnmatch: "*" spans the padding between columns; the bar is drawn with "█".
    text = "\n".join(lines).replace("█", "#")
    position = 0
    for pattern in expected:
        while position < len(lines) and not fnmatch.fnmatch(text.splitlines()[position],
                                                             pattern):
            position += 1
        assert position < len(lines), f"{pattern!r} not found in order in:\n{out}"
    assert "funnel: data > labels > model (1 project)" in out
    assert ("mismatch: 1 project uses another funnel than data, problem, model, organization,"
            " deployment, usage, effectiveness, maintenance: data, labels, model (vision); "
            "counted in a funnel of their own") in out
    rows = {line.split()[0]: line for line in lines if line.split()[:1] in (
        ["churn"], ["fraud"], ["search"], ["ideas"])}
    assert fnmatch.fnmatch(rows["churn"], "churn * model 3/8 * organization * 2026-03-06 "
                                          "* 268 * model 3/8 * 3 * STALLED")
    assert fnmatch.fnmatch(rows["fraud"], "fraud * model 3/8 * organization * 2026-07-01 * 151"
                                          " * organization 4/8 * 3 * STALLED, fell back")
    assert fnmatch.fnmatch(rows["search"], "search * maintenance 8/8 * - * 2025-09-01 * 454 *"
                                           " through")
    assert fnmatch.fnmatch(rows["ideas"], "ideas * none 0/8 * data * 2026-11-20 * 9 * none 0/8"
                                          " * 1")
    assert lines[-1] == "read 13 releases from 6 files"


def test_json_follows_the_documented_schema(portfolio_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["portfolio", str(portfolio_dir), "--as-of", "2026-11-29", "--json", "-",
                 "--stalled-after", "22w"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)  # stdout holds the JSON alone
    assert err == ""
    assert data["schema"] == "mlfunnel-portfolio/1"
    assert (data["as_of"], data["stalled_after_days"], data["projects_total"],
            data["stalled_total"]) == ("2026-11-29", 154, 6, 2)
    main_funnel, custom = data["funnels"]
    assert main_funnel["gates"] == list(DEFAULT_FUNNEL) and main_funnel["default"] is True
    assert custom == {
        "gates": ["data", "labels", "model"], "default": False, "projects": 1,
        "not_started": 0, "through": 0,
        "steps": [
            {"index": 1, "gate": "data", "reached": 1, "from": 1, "conversion": 1.0,
             "ever_reached": 1, "stopped_here": 0, "stalled_here": [],
             "median_days_to_pass": None, "measured": 0},
            {"index": 2, "gate": "labels", "reached": 0, "from": 1, "conversion": 0.0,
             "ever_reached": 0, "stopped_here": 1, "stalled_here": ["vision"],
             "median_days_to_pass": None, "measured": 0},
            {"index": 3, "gate": "model", "reached": 0, "from": 0, "conversion": None,
             "ever_reached": 0, "stopped_here": 0, "stalled_here": [],
             "median_days_to_pass": None, "measured": 0}]}
    organization = main_funnel["steps"][3]
    assert organization["stalled_here"] == ["churn"]  # fraud: 151 days, not over 154
    fraud = next(p for p in data["projects"] if p["project"] == "fraud")
    assert fraud == {
        "project": "fraud", "funnel_group": 0, "stage": 3, "reached": "model",
        "stopped_at": "organization", "since": "2026-07-01", "first_reached": "2026-05-01",
        "days_in_stage": 151, "best_stage": 4, "best": "organization", "fell_back": True,
        "stalled": False, "through": False, "releases": 3, "first_recorded": "2026-04-01",
        "last_recorded": "2026-07-01", "last_release": "v3",
        "days_to_pass": {"problem": 30},
        "timeline": [{"date": "2026-04-01", "release": "v1", "stage": 1},
                     {"date": "2026-05-01", "release": "v2", "stage": 4},
                     {"date": "2026-07-01", "release": "v3", "stage": 3}],
        "sources": [str(portfolio_dir / "fraud" / ".mlfunnel" / "history.jsonl")]}
    assert data["read"] == {"files": 6, "releases": 13, "skipped": 0, "after_as_of": 0}
    assert data["problems"] == [] and len(data["mismatches"]) == 1


def test_markdown_escapes_what_the_histories_say(tmp_path: Path) -> None:
    project_history(tmp_path / "repos", "x", [("2026-01-01", 1)])
    hostile = "*[click](http://evil.example)* <b>|x|"
    write_history(tmp_path / "repos" / "h" / ".mlfunnel" / "history.jsonl",
                  [entry(hostile, "v1", "2026-01-01", 2)])
    done = mlfunnel("portfolio", "repos", "--markdown", "out/portfolio.md", "--as-of",
                    "2026-11-29", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote out/portfolio.md" in done.stdout
    text = (tmp_path / "out" / "portfolio.md").read_text()
    assert hostile not in text and "<b>" not in text and "](http" not in text
    assert ("| \\*\\[click\\]\\(http://evil\\.example\\)\\* &lt;b&gt;\\|x\\| | problem 2/8 | "
            "model | 2026-01-01 | 332 | problem 2/8 | ‖ stalled |") in text
    assert "| 1 | data | 2 | 2/2 (100%) | – | 0 |  |" in text
    assert text.startswith("### ml funnel portfolio · 2 projects · as of 2026-11-29\n")


def test_markdown_shows_skipped_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    good = project_history(tmp_path, "good", [("2026-01-01", 1)])
    with good.open("a") as handle:
        handle.write("{oops\n")
    assert main(["portfolio", str(good), "--markdown", "-", "--as-of", "2026-11-29"]) == 0
    out, err = capsys.readouterr()
    assert "<details><summary>1 input skipped</summary>" in out
    assert "/good/\\.mlfunnel/history\\.jsonl:2: not JSON \\(Expecting" in out
    assert err == (f"mlfunnel: note: {good}:2: not JSON (Expecting property name enclosed in "
                   "double quotes at column 2) (skipped)\n")


def test_bad_inputs_are_noted_and_the_rest_is_counted(tmp_path: Path) -> None:
    project_history(tmp_path, "good", [("2026-01-01", 1)])
    (tmp_path / "broken.jsonl").write_text("{oops\n")
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something/3"}))
    done = mlfunnel("portfolio", "good", "broken.jsonl", "other.json", "gone", "--as-of",
                    "2026-11-29", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "mlfunnel: note: broken.jsonl:1: not JSON (Expecting property name enclosed in double "
        "quotes at column 2) (skipped)",
        "mlfunnel: note: other.json: not an mlfunnel report (schema 'something/3', expected "
        "'mlfunnel-report/1') (skipped)",
        "mlfunnel: note: gone: no such file or directory (skipped)",
    ]
    assert "ml funnel portfolio · 1 project · 1 funnel" in done.stdout
    assert done.stdout.splitlines()[-1] == "read 1 release from 3 files, skipped 2"
    assert "Traceback" not in done.stderr


def test_it_exits_2_only_when_nothing_could_be_read(tmp_path: Path) -> None:
    (tmp_path / "broken.jsonl").write_text("{oops\n")
    done = mlfunnel("portfolio", "broken.jsonl", "gone", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "mlfunnel: note: broken.jsonl:1: not JSON (Expecting property name enclosed in double "
        "quotes at column 2) (skipped)",
        "mlfunnel: note: gone: no such file or directory (skipped)",
        "mlfunnel: error: nothing could be read from the 2 paths given: no history entry or "
        "report (see the notes above)",
    ]
    assert done.stdout == ""


def test_it_exits_2_when_every_release_is_after_the_as_of_date(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[
                                                                   str]) -> None:
    path = project_history(tmp_path, "p", [("2026-05-01", 1), ("2026-06-01", 2)])
    assert main(["portfolio", str(path), "--as-of", "2026-01-01"]) == 2
    assert capsys.readouterr().err == (
        "mlfunnel: error: all 2 releases read were recorded after 2026-01-01 (--as-of)\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--stalled-after", "3m"], "argument --stalled-after: expected a number of days or weeks "
                                "like 90d or 12w, got '3m'"),
    (["--as-of", "yesterday"], "argument --as-of: expected a date like 2026-11-29, got "
                               "'yesterday'"),
])
def test_bad_options_exit_2_with_the_reason(tmp_path: Path, args: list[str], message: str
                                            ) -> None:
    done = mlfunnel("portfolio", ".", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (f"mlfunnel: error: {message} (see 'mlfunnel portfolio --help')\n")


def test_no_path_is_a_usage_error(tmp_path: Path) -> None:
    done = mlfunnel("portfolio", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("mlfunnel: error: the following arguments are required: PATH "
                           "(see 'mlfunnel portfolio --help')\n")


def test_an_unwritable_output_exits_2_naming_it(tmp_path: Path) -> None:
    project_history(tmp_path, "p", [("2026-05-01", 1)])
    (tmp_path / "taken").write_text("a file, not a folder")
    done = mlfunnel("portfolio", "p", "--json", "taken/out.json", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith("mlfunnel: error: taken/out.json: cannot "
                                                   "write: ")


def test_help_describes_the_command(tmp_path: Path) -> None:
    done = mlfunnel("portfolio", "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: mlfunnel portfolio")
    for option in ("--html OUT", "--json OUT", "--markdown OUT", "--stalled-after DAYS",
                   "--as-of DATE"):
        assert option in done.stdout
    assert "portfolio" in mlfunnel("--help", cwd=tmp_path).stdout


def test_it_reads_histories_recorded_by_real_funnel_runs(pytester: pytest.Pytester) -> None:
    for name, accuracy in [("churn", 0.9), ("fraud", 0.5)]:
        project = pytester.mkdir(name)
        (project / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\n\n[tool.mlfunnel]\nfunnel = ["data", "model"]\n'
            '[tool.mlfunnel.data.volume]\nmetrics = "eval.json"\nexpect = { rows = ">= 10" }\n'
            '[tool.mlfunnel.model.quality]\nmetrics = "eval.json"\n'
            'expect = { accuracy = ">= 0.8" }\n')
        (project / "eval.json").write_text(json.dumps({"rows": 50, "accuracy": accuracy}))
        result = pytester.runpytest_subprocess("--funnel", "--funnel-record=v1", "--rootdir",
                                               str(project), "-c",
                                               str(project / "pyproject.toml"), str(project))
        assert (project / ".mlfunnel" / "history.jsonl").exists(), result.stdout.str()
        (project / "report.json").write_text("")  # an empty report beside it: noted, skipped
    done = mlfunnel("portfolio", ".", "churn/report.json", "--json", "-", cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("mlfunnel: note: churn/report.json: not JSON (Expecting value at "
                           "column 1) (skipped)\n")
    data = json.loads(done.stdout)
    stages = {p["project"]: (p["stage"], p["reached"]) for p in data["projects"]}
    assert stages == {"churn": (2, "model"), "fraud": (1, "data")}


def test_the_example_portfolio_tells_its_story(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Many projects at data and problem, a cemetery at organization, few maintained."""
    example = Path(__file__).resolve().parent.parent / "example_portfolio"
    done = subprocess.run([sys.executable, str(example / "make_portfolio.py"), "--out",
                           str(tmp_path / "repos")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote 12 histories under {tmp_path / 'repos'}\n"
    # The committed histories are the generator's output.
    written = sorted(p.relative_to(tmp_path / "repos")
                     for p in (tmp_path / "repos").rglob("history.jsonl"))
    committed = sorted(p.relative_to(example / "repos")
                       for p in (example / "repos").rglob("history.jsonl"))
    assert written == committed and len(written) == 12
    for relative in written:
        assert (tmp_path / "repos" / relative).read_bytes() == (
            example / "repos" / relative).read_bytes()
    assert main(["portfolio", str(example / "repos"), "--as-of", "2026-11-29", "--json",
                 "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    [funnel] = data["funnels"]
    stopped = {s["gate"]: s["stopped_here"] for s in funnel["steps"]}
    stalled = {s["gate"]: len(s["stalled_here"]) for s in funnel["steps"]}
    assert stopped["data"] + stopped["problem"] == 5  # many at data and problem
    assert max(stalled, key=lambda gate: stalled[gate]) == "organization"
    assert stalled["organization"] == 4  # the cemetery
    assert funnel["through"] == 1  # few maintained
    assert [s["reached"] for s in funnel["steps"]] == [10, 7, 6, 2, 2, 2, 1, 1]


@pytest.mark.parametrize(("created", "day"), [
    ("2026-01-01T23:30:00Z", "2026-01-01"),
    ("2026-01-01T23:30:00-05:00", "2026-01-02"),  # dates are UTC dates
    ("2026-01-01T10:00:00", "2026-01-01"),  # naive: taken as UTC
    ("2026-01-01", "2026-01-01"),
])
def test_release_dates_are_read_as_utc(tmp_path: Path, created: str, day: str) -> None:
    path = write_history(tmp_path / "h.jsonl",
                         [{**entry("p", "v1", "2026-01-01", 1), "created": created}])
    [release] = read_paths([path]).releases
    assert release.day.isoformat() == day


@pytest.mark.parametrize("created", ["2026-01-01T10:00:00+02:00Z", "", None, 20260101])
def test_a_release_without_a_usable_date_is_skipped(tmp_path: Path, created: Any) -> None:
    path = write_history(tmp_path / "h.jsonl",
                         [{**entry("p", "v1", "2026-01-01", 1), "created": created}])
    reading = read_paths([path])
    assert reading.releases == []
    assert [str(p) for p in reading.problems] == [
        f"{path}:1: no valid 'created' date ({created!r})"]


def test_markdown_renders_hostile_names_as_plain_text(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Rendered by a CommonMark+tables parser: no link, no HTML, the name shown as written."""
    from markdown_it import MarkdownIt

    hostile = "*[click](http://evil.example)* <b>|x| _y_ `z` # h\x1b[31m"
    write_history(tmp_path / "h" / ".mlfunnel" / "history.jsonl",
                  [entry(hostile, "v1", "2026-01-01", 2)])
    assert main(["portfolio", str(tmp_path / "h"), "--markdown", "-", "--as-of",
                 "2026-11-29"]) == 0
    rendered = MarkdownIt("commonmark").enable("table").render(capsys.readouterr().out)
    assert "<a " not in rendered and "<b>" not in rendered and "<code>" not in rendered
    assert "<em>" not in rendered and "\x1b" not in rendered
    shown = hostile.replace("<", "&lt;").replace(">", "&gt;").replace("\x1b", "\\x1b")
    # Whole cells: the pipes in the name did not split its row.
    assert f"<td>{shown}</td>" in rendered  # the projects' table
    assert f"<td>{shown} (332 d)</td>" in rendered  # stalled in front of model


def test_a_name_that_is_not_valid_unicode_reaches_every_output_escaped(tmp_path: Path) -> None:
    """JSON allows a lone surrogate escape; no output may fail on it."""
    path = tmp_path / "h.jsonl"
    line = summary_line(entry("PLACEHOLDER", "v1", "2026-01-01", 1)).replace(
        b"PLACEHOLDER", b"bad\\ud800name")
    path.write_bytes(line + b"\n")
    done = mlfunnel("portfolio", "h.jsonl", "--json", "p.json", "--html", "p.html",
                    "--markdown", "p.md", "--as-of", "2026-11-29", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "bad\\ud800name" in done.stdout  # the terminal table, escaped
    assert json.loads((tmp_path / "p.json").read_text())["projects"][0]["project"] == (
        "bad\ud800name")
    assert "bad\\ud800name" in (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "bad\\\\ud800name" in (tmp_path / "p.md").read_text(encoding="utf-8")
    to_stdout = mlfunnel("portfolio", "h.jsonl", "--json", "-", "--as-of", "2026-11-29",
                         cwd=tmp_path)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert json.loads(to_stdout.stdout)["projects"][0]["project"] == "bad\ud800name"


def test_files_that_cannot_be_read_and_empty_folders_are_noted_by_the_command(
        tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    project_history(tmp_path, "good", [("2026-01-01", 1)])
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "empty").mkdir()
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "nowhere")
    done = mlfunnel("portfolio", "good", "pipe.jsonl", "empty", "dangling.jsonl", "--as-of",
                    "2026-11-29", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "mlfunnel: note: pipe.jsonl: cannot read: not a regular file (skipped)",
        "mlfunnel: note: empty: no .mlfunnel/history.jsonl found in this folder (skipped)",
        "mlfunnel: note: dangling.jsonl: no such file or directory (skipped)",
    ]
    assert done.stdout.splitlines()[-1] == "read 1 release from 1 file"


@pytest.mark.parametrize("outputs", [["--json", "{history}"], ["--html", "{report}"],
                                     ["--markdown", "out.md", "--html", "out.md"]],
                         ids=["json-over-a-history", "html-over-a-report", "one-file-twice"])
def test_an_output_never_overwrites_a_history_or_report_it_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        outputs: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    history = project_history(tmp_path, "churn", [("2026-10-01", 2)], THREE)
    report = tmp_path / "reports" / "search.json"
    report.parent.mkdir()
    report.write_text(json.dumps(entry("search", "v1", "2026-10-02", 1, THREE)))
    before = (history.read_bytes(), report.read_bytes())
    args = [o.format(history=history, report=report) for o in outputs]
    assert main(["portfolio", str(tmp_path), str(report), "--as-of", "2026-11-29", *args]) == 2
    out, err = capsys.readouterr()
    target = args[-1]
    what = {str(history): "the history file, which this command reads",
            str(report): "the report, which this command reads"}.get(
        target, "given for both --html and --markdown")
    assert err.splitlines()[-1] == (f"mlfunnel: error: {target}: {what}; give the output a "
                                    "path of its own")
    assert out == ""
    assert (history.read_bytes(), report.read_bytes()) == before
    assert not (tmp_path / "out.md").exists()

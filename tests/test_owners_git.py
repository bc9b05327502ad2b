"""``owners = { git = ... }``: authors and truck factor counted from real git repositories."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mlfunnel.kinds.owners import truck_factor


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60,
                          check=True, env={**os.environ, **(env or {})})
    return done.stdout


def commit(repo: Path, path: str, author: str, email: str, days_ago: int = 1) -> None:
    file = repo / path
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a") as handle:
        handle.write(f"{author} {days_ago}\n")
    stamp = f"@{int(time.time()) - days_ago * 86400} +0000"
    git(repo, "add", "--", path)
    git(repo, "commit", "-q", "-m", f"change {path}", env={
        "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": email, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})


@pytest.fixture
def repo(pytester: pytest.Pytester) -> Path:
    path = pytester.path
    git(path, "init", "-q", "-b", "main")
    for _ in range(6):
        commit(path, "src/model.py", "Alice", "alice@example.com")
    commit(path, "src/data.py", "Bob", "bob@example.com")
    commit(path, "src/data.py", "Bob Builder", "bob@home.example")  # the same Bob, see .mailmap
    commit(path, "models/card.md", "Carol", "carol@example.com")
    commit(path, "docs/index.md", "Dan", "dan@example.com")  # outside the paths
    commit(path, "src/old.py", "Eve", "eve@example.com", days_ago=400)  # outside the window
    (path / ".mailmap").write_text("Bob <bob@example.com> Bob Builder <bob@home.example>\n")
    return path


CONFIG = """
[tool.mlfunnel]
[tool.mlfunnel.maintenance.owners]
owners = {{ git = "{git}", since = "180 days", paths = ["src/", "models/"]{extra} }}
"""

def run(pytester: pytest.Pytester, git_expectation: str, extra: str = "") -> Any:
    pytester.makepyprojecttoml(CONFIG.format(git=git_expectation, extra=extra))
    return pytester.runpytest("--funnel", "--funnel-json=report.json", "-p", "no:cacheprovider")


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def test_distinct_authors_after_mailmap_in_the_window_and_paths(
        pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(repo, "add", ".mailmap")
    commit(repo, "src/model.py", "Alice", "alice@example.com")
    result = run(pytester, ">= 4", ', truck_factor = ">= 2"')
    found = criteria(pytester)
    authors = found["git-authors"]
    assert authors["evidence"] == "measured"
    assert authors["observed"] == 3
    assert authors["message"] == (
        "3 distinct authors of 10 commits to src/, models/ in the last 180 days (Alice (7), "
        "Bob (2), Carol (1)), expected >= 4")
    assert authors["status"] == "failed"
    truck = found["truck-factor"]
    assert truck["observed"] == 1 and truck["evidence"] == "measured"
    assert truck["message"] == ("truck factor 1: Alice made 7 of 10 commits (70%) to src/, "
                                "models/ in the last 180 days, expected >= 2")
    assert result.ret == 1


def test_enough_authors_pass(pytester: pytest.Pytester, repo: Path) -> None:
    for name in ("Bob", "Carol"):
        for _ in range(3):
            commit(repo, "src/model.py", name, f"{name.lower()}@example.com")
    result = run(pytester, ">= 2", ', truck_factor = ">= 2"')
    found = criteria(pytester)
    assert found["git-authors"]["status"] == "passed"
    assert found["truck-factor"]["observed"] == 2
    assert result.ret == 0


def test_a_shallow_clone_is_an_error_that_says_how_to_fetch_the_history(
        pytester: pytest.Pytester, repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, timeout=60, capture_output=True)
    (clone / "pyproject.toml").write_text(CONFIG.format(git=">= 2", extra=""))
    result = pytester.runpytest("--funnel", f"--rootdir={clone}", "-c",
                                str(clone / "pyproject.toml"), "--funnel-json=report.json")
    found = criteria(pytester)["git-authors"]
    assert found["status"] == "error"
    assert "shallow clone" in found["message"] and "fetch-depth: 0" in found["message"]
    assert result.ret == 1


def test_outside_a_git_repository_the_criterion_errors_saying_so(
        pytester: pytest.Pytester) -> None:
    run(pytester, ">= 2")
    found = criteria(pytester)["git-authors"]
    assert found["status"] == "error"
    assert found["message"].endswith("is not in a git repository: owners counted from git "
                                     "need the project's history")


def test_an_author_name_with_a_direction_override_is_shown_escaped_in_every_output(
        pytester: pytest.Pytester, repo: Path) -> None:
    """U+202E turns the rest of a line around in a terminal or a browser: a name holding it
    could make 'Mallory' read as someone else and scramble the message after it."""
    commit(repo, "src/model.py", "Mal\u202eyrol", "mallory@example.com")
    pytester.makepyprojecttoml(CONFIG.format(git=">= 9", extra=""))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json",
                                "--funnel-html=report.html", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*distinct authors*Mal\\u202eyrol (1)*, expected >= 9"])
    html = (pytester.path / "report.html").read_text(encoding="utf-8")
    for shown in (result.stdout.str(), html):
        assert "\u202e" not in shown
    assert "Mal\\u202eyrol" in html
    # the JSON report keeps the name as git has it: JSON escapes it for a reader
    assert "Mal\u202eyrol" in criteria(pytester)["git-authors"]["message"]


def test_a_bad_git_rule_is_a_config_error_with_its_key_path(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.mlfunnel.maintenance.owners]\n'
                               'owners = { git = "many", since = "180" }\n')
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines([
        "*tool.mlfunnel.maintenance.owners.owners.git: not a valid expectation: 'many'*",
        "*tool.mlfunnel.maintenance.owners.owners.since: not a duration: '180' (a number and a unit: *"])


@pytest.mark.parametrize(("counts", "factor"), [([], 0), ([5], 1), ([7, 2, 1], 1),
                                                ([3, 3, 3, 1], 2), ([1, 1, 1, 1], 2)])
def test_the_truck_factor_is_the_fewest_authors_covering_half_the_commits(
        counts: list[int], factor: int) -> None:
    assert truck_factor(counts) == factor


def test_a_project_in_a_folder_of_the_repository_names_that_folder_not_the_repository(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    top = tmp_path / "mono"
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    commit(top, "web/app.js", "Wendy", "wendy@example.com")
    commit(top, "ml/churn/train.py", "Alice", "alice@example.com")
    project = top / "ml" / "churn"
    (project / "pyproject.toml").write_text(
        '[tool.mlfunnel]\n[tool.mlfunnel.maintenance.owners]\nowners = { git = ">= 2" }\n')
    result = pytester.runpytest("--funnel", f"--rootdir={project}", "-c",
                                str(project / "pyproject.toml"), "--funnel-json=report.json")
    found = criteria(pytester)["git-authors"]
    assert found["message"] == ("1 distinct author of 1 commit to ml/churn/ in the last 180 "
                                "days (Alice (1)), expected >= 2")
    assert result.ret == 1


def test_a_path_in_neither_the_working_tree_nor_the_history_is_an_error_naming_it(
        pytester: pytest.Pytester, repo: Path) -> None:
    pytester.makepyprojecttoml('[tool.mlfunnel.maintenance.owners]\n'
                               'owners = { git = ">= 1", paths = ["src/", "modles/"] }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["git-authors"]
    assert found["status"] == "error"
    assert found["message"] == ("paths: 'modles/' is in neither the working tree nor the "
                                "history of the repository")
    assert result.ret == 1


def test_paths_with_spaces_a_leading_dash_or_only_in_the_history_are_counted(
        pytester: pytest.Pytester, repo: Path) -> None:
    commit(repo, "my models/a.txt", "Fay", "fay@example.com")
    commit(repo, "-notes", "Gus", "gus@example.com")
    commit(repo, "gone/x.py", "Hal", "hal@example.com")
    git(repo, "rm", "-q", "-r", "gone")
    git(repo, "commit", "-q", "-m", "drop gone", env={
        "GIT_AUTHOR_NAME": "Hal", "GIT_AUTHOR_EMAIL": "hal@example.com",
        "GIT_COMMITTER_NAME": "Hal", "GIT_COMMITTER_EMAIL": "hal@example.com"})
    pytester.makepyprojecttoml('[tool.mlfunnel.maintenance.owners]\n'
                               'owners = { git = ">= 3", paths = ["my models", "-notes", '
                               '"gone/"] }\n')
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)["git-authors"]
    assert found["message"] == ("3 distinct authors of 4 commits to my models, -notes, gone/ "
                                "in the last 180 days (Hal (2), Fay (1), Gus (1)), expected >= 3")
    assert result.ret == 0


def test_a_repository_without_commits_has_no_authors(pytester: pytest.Pytester) -> None:
    git(pytester.path, "init", "-q", "-b", "main")
    run(pytester, ">= 1")
    found = criteria(pytester)["git-authors"]
    assert found["status"] == "failed"
    assert found["message"] == ("0 distinct authors of 0 commits to src/, models/ in the last "
                                "180 days (the current branch has no commits yet), expected >= 1")


@pytest.mark.parametrize("since", ["0 days", "-30 days"])
def test_a_window_that_is_not_positive_is_a_config_error(pytester: pytest.Pytester,
                                                         since: str) -> None:
    pytester.makepyprojecttoml('[tool.mlfunnel.maintenance.owners]\n'
                               f'owners = {{ git = ">= 2", since = "{since}" }}\n')
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines([
        "*tool.mlfunnel.maintenance.owners.owners.since: the window of commits must be "
        f"longer than zero, got {since}*"])


def test_a_git_on_the_path_that_cannot_be_run_is_an_error_saying_so(
        pytester: pytest.Pytester, repo: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "git").write_text("#!/bin/sh\nexit 0\n")  # not executable
    monkeypatch.setenv("PATH", str(folder))
    run(pytester, ">= 1")
    found = criteria(pytester)["git-authors"]
    assert found["status"] == "error"
    assert found["message"] == ("git could not be run (Permission denied): owners counted from "
                                "git need it")


def test_two_authors_of_one_name_are_told_apart_by_e_mail_in_the_message_and_report(
        pytester: pytest.Pytester, repo: Path) -> None:
    commit(repo, "src/model.py", "Alice", "alice@elsewhere.example")  # another Alice
    run(pytester, ">= 9")
    found = criteria(pytester)["git-authors"]
    assert found["observed"] == 4
    assert found["message"] == (
        "4 distinct authors of 10 commits to src/, models/ in the last 180 days (Alice "
        "<alice@example.com> (6), Bob (2), Alice <alice@elsewhere.example> (1), Carol (1)), "
        "expected >= 9")
    assert found["extra"]["authors"] == {"Alice <alice@example.com>": 6, "Bob": 2,
                                         "Alice <alice@elsewhere.example>": 1, "Carol": 1}


def test_run_from_a_git_hook_the_project_folder_s_repository_is_read_not_the_hook_s_git_dir(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git runs hooks with GIT_DIR=.git (relative) and GIT_INDEX_FILE set; a hook that goes
    into the project's folder and runs the funnel must still find the repository."""
    top = tmp_path / "mono"
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    commit(top, "ml/churn/train.py", "Alice", "alice@example.com")
    commit(top, "ml/churn/train.py", "Bob", "bob@example.com")
    project = top / "ml" / "churn"
    (project / "pyproject.toml").write_text(
        '[tool.mlfunnel]\n[tool.mlfunnel.maintenance.owners]\nowners = { git = ">= 2" }\n')
    monkeypatch.setenv("GIT_DIR", ".git")
    monkeypatch.setenv("GIT_INDEX_FILE", ".git/index")
    monkeypatch.chdir(project)
    result = pytester.runpytest("--funnel", f"--rootdir={project}", "-c",
                                str(project / "pyproject.toml"),
                                f"--funnel-json={pytester.path / 'report.json'}")
    found = criteria(pytester)["git-authors"]
    assert found["message"] == ("2 distinct authors of 2 commits to ml/churn/ in the last 180 "
                                "days (Alice (1), Bob (1)), expected >= 2")
    assert result.ret == 0

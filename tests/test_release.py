"""Which release a recorded run belongs to, in a real git repository."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

CONFIG = """
[tool.mlfunnel]
funnel = ["data"]

[tool.mlfunnel.data.volume]
metrics = "eval.json"
expect = { rows = ">= 1" }
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project directory with git configured for the test only (identity, no user config)."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Author")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "author@example.com")
    # Never find a repository above the test directory.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(pytester.path.parent))
    pytester.makepyprojecttoml(CONFIG)
    (pytester.path / "eval.json").write_text(json.dumps({"rows": 5}))
    return pytester


def git(project: pytest.Pytester, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=project.path, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def init_repo(project: pytest.Pytester) -> str:
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "pyproject.toml", "eval.json")
    git(project, "commit", "-q", "-m", "first")
    return git(project, "rev-parse", "--short", "HEAD")


def recorded(project: pytest.Pytester, *args: str) -> dict:
    result = project.runpytest("--funnel", *args)
    assert result.ret == 0, result.stdout.str()
    lines = (project.path / ".mlfunnel" / "history.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def test_a_tag_at_head_names_the_release(project: pytest.Pytester) -> None:
    commit = init_repo(project)
    git(project, "tag", "v1.2.0")
    line = recorded(project, "--funnel-record")
    assert (line["release"], line["commit"]) == ("v1.2.0", commit)


def test_an_annotated_tag_names_the_release(project: pytest.Pytester) -> None:
    init_repo(project)
    git(project, "tag", "-a", "v2.0.0", "-m", "release 2")
    assert recorded(project, "--funnel-record")["release"] == "v2.0.0"


def test_without_a_tag_at_head_the_short_commit_names_the_release(project: pytest.Pytester
                                                                  ) -> None:
    init_repo(project)
    git(project, "tag", "v1.0.0")
    (project.path / "eval.json").write_text(json.dumps({"rows": 6}))
    git(project, "commit", "-q", "-am", "second")
    commit = git(project, "rev-parse", "--short", "HEAD")
    line = recorded(project, "--funnel-record")
    assert (line["release"], line["commit"]) == (commit, commit)


def test_a_detached_head_uses_its_tag_else_its_commit(project: pytest.Pytester) -> None:
    first = init_repo(project)
    git(project, "tag", "v1.0.0")
    (project.path / "eval.json").write_text(json.dumps({"rows": 6}))
    git(project, "commit", "-q", "-am", "second")
    second = git(project, "rev-parse", "--short", "HEAD")
    (project.path / "eval.json").write_text(json.dumps({"rows": 7}))
    git(project, "commit", "-q", "-am", "third")
    git(project, "checkout", "-q", "--detach", "v1.0.0")
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD"  # really detached
    line = recorded(project, "--funnel-record")
    assert (line["release"], line["commit"]) == ("v1.0.0", first)
    git(project, "checkout", "-q", "--detach", second)
    line = recorded(project, "--funnel-record")
    assert (line["release"], line["commit"]) == (second, second)


def test_outside_a_repository_the_date_names_the_release(project: pytest.Pytester) -> None:
    line = recorded(project, "--funnel-record")
    assert line["release"] == dt.date.today().isoformat()
    assert line["commit"] is None


def test_a_repository_without_commits_falls_back_to_the_date(project: pytest.Pytester) -> None:
    git(project, "init", "-q")
    line = recorded(project, "--funnel-record")
    assert (line["release"], line["commit"]) == (dt.date.today().isoformat(), None)


def test_without_git_installed_the_date_names_the_release(project: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    init_repo(project)
    git(project, "tag", "v1.0.0")
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    line = recorded(project, "--funnel-record")
    assert (line["release"], line["commit"]) == (dt.date.today().isoformat(), None)


def test_a_given_name_wins_over_the_tag(project: pytest.Pytester) -> None:
    commit = init_repo(project)
    git(project, "tag", "v1.0.0")
    line = recorded(project, "--funnel-record=rc-7")
    assert (line["release"], line["commit"]) == ("rc-7", commit)


def test_the_release_hook_wins_over_a_given_name(project: pytest.Pytester,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    init_repo(project)
    git(project, "tag", "v1.0.0")
    project.makeconftest(textwrap.dedent("""
        import os

        def pytest_mlfunnel_release(config):
            return os.environ.get("RELEASE_FROM_CI")
    """))
    monkeypatch.setenv("RELEASE_FROM_CI", "build-42")
    assert recorded(project, "--funnel-record=rc-7")["release"] == "build-42"
    monkeypatch.delenv("RELEASE_FROM_CI")
    # A hook answering None passes the decision on.
    assert recorded(project, "--funnel-record=rc-7")["release"] == "rc-7"
    assert recorded(project, "--funnel-record")["release"] == "v1.0.0"


def test_a_given_name_that_is_not_utf8_records_nothing_and_says_which_byte(
        project: pytest.Pytester) -> None:
    # --funnel-record="$(cat VERSION)" of a Latin-1 file: the history line could not be
    # encoded, and the run ended in an INTERNALERROR after its tests
    init_repo(project)
    assert project.runpytest("--funnel", "--funnel-record=v1").ret == 0
    history = project.path / ".mlfunnel" / "history.jsonl"
    kept = history.read_bytes()
    result = project.runpytest_subprocess("--funnel", "--funnel-record=caf\udce9",
                                          "--funnel-json=r.json", timeout=120)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "  note: not recorded in .mlfunnel/history.jsonl: the release has no name",
        "error: --funnel-record: the release name 'caf\\udce9' is not UTF-8 text (byte 0xe9 at "
        "position 3): name the release in UTF-8",
    ])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert history.read_bytes() == kept
    assert json.loads((project.path / "r.json").read_text())["release"] is None


def test_the_json_report_names_the_same_release(project: pytest.Pytester) -> None:
    commit = init_repo(project)
    result = project.runpytest("--funnel", "--funnel-json=r.json")
    assert result.ret == 0
    report = json.loads((project.path / "r.json").read_text())
    assert (report["release"], report["commit"]) == (commit, commit)


def test_run_from_a_git_hook_in_a_folder_of_the_repository_the_commit_names_the_release(
        project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """git runs hooks at the repository's top with GIT_DIR=.git (relative); a hook that goes
    into the project's folder and records must not fall back to the date."""
    top = project.path
    folder = top / "ml"
    folder.mkdir()
    (top / "pyproject.toml").rename(folder / "pyproject.toml")
    (top / "eval.json").rename(folder / "eval.json")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "ml")
    git(project, "commit", "-q", "-m", "first")
    commit = git(project, "rev-parse", "--short", "HEAD")
    monkeypatch.setenv("GIT_DIR", ".git")
    monkeypatch.chdir(folder)
    result = project.runpytest("--funnel", "--funnel-record", f"--rootdir={folder}", "-c",
                               str(folder / "pyproject.toml"))
    assert result.ret == 0, result.stdout.str()
    lines = (folder / ".mlfunnel" / "history.jsonl").read_text().splitlines()
    line = json.loads(lines[-1])
    assert (line["release"], line["commit"]) == (commit, commit)

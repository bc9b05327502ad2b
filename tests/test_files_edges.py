"""``files`` and ``document`` on what a real work tree holds: folders where files were
expected, clocks ahead, links out of the project, many files in git, a git that hangs."""

from __future__ import annotations

import os
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyprojecttoml('[tool.mlfunnel]\nfunnel = ["maintenance"]\n'
                               + textwrap.dedent(body))


def git(cwd: Path, *args: str, date: str | None = None) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                   timeout=60)


def test_a_folder_is_not_a_file(pytester: pytest.Pytester) -> None:
    """``models/old.pkl/`` is no model, and ``docs/adr`` named alone is a folder."""
    (pytester.path / "models" / "old.pkl").mkdir(parents=True)
    (pytester.path / "docs" / "adr").mkdir(parents=True)
    (pytester.path / "reports" / "2026").mkdir(parents=True)
    write(pytester.path, "reports/2026/eval.md", "# Eval\n")
    config(pytester, """
        [tool.mlfunnel.maintenance.artifacts]
        files = ["models/*.pkl", "docs/adr", "reports/**"]
    """)
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "models/[*].pkl: no such file (only folders match: models/old.pkl)",
        "docs/adr: a folder, not a file (write 'docs/adr/[*]' for the files in it)",
    ])
    # the folders reports/ and reports/2026 are not counted as files
    assert '"observed": 1,' in (pytester.path / "report.json").read_text()


def test_a_file_dated_ahead_of_the_clock_cannot_pass_max_age(pytester: pytest.Pytester) -> None:
    ahead = time.time() + 3 * 365 * 86400
    for name in ("models/model.pkl", "docs/runbook.md"):
        path = write(pytester.path, name, "x\n# Runbook\nWhat to do.\n")
        os.utime(path, (ahead, ahead))
    write(pytester.path, "models/fresh.pkl", "y")
    soon = time.time() + 60  # a clock a minute ahead is two machines disagreeing: now
    os.utime(pytester.path / "models" / "fresh.pkl", (soon, soon))
    config(pytester, """
        [tool.mlfunnel.maintenance.artifacts]
        files = ["models/*.pkl"]
        max_age = "30 days"

        [tool.mlfunnel.maintenance.runbook]
        document = "docs/runbook.md"
        sections = []
        max_age = "30 days"
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=2)
    year = time.strftime("%Y", time.gmtime(ahead))
    result.stdout.fnmatch_lines_random([
        "models/[*].pkl: 1 of 2 file(s) dated ahead of the clock, so their age cannot be "
        f"told: models/model.pkl (modified {year}-* UTC, in the future)",
        f"docs/runbook.md: modified {year}-* UTC, in the future, so the document's age "
        "cannot be told, expected <= 30 days old",
    ])


def git_wrapper(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                before: str) -> Path:
    """A ``git`` first on PATH that runs the shell line ``before``, then the real git."""
    real_git = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    wrapper = pytester.path.parent / f"{pytester.path.name}-bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\n{before}\nexec {real_git} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    return wrapper.parent


@pytest.mark.skipif(os.name != "posix", reason="a shell script counts the git calls")
def test_many_files_are_dated_by_one_git_log(pytester: pytest.Pytester,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """1,500 files were 1,500 git calls (14 s); the dates are the newest commit of each, a
    file git does not hold counts by its modification time, a '*' in a name is a name."""
    git(pytester.path, "init", "-q")
    for index in range(1500):
        write(pytester.path, f"reports/r{index}.json", f"{index}\n")
    write(pytester.path, "reports/a*b.json", "{}\n")
    git(pytester.path, "add", "reports")
    git(pytester.path, "commit", "-qm", "old", date="2020-01-01T00:00:00")
    write(pytester.path, "reports/r7.json", "updated\n")
    git(pytester.path, "commit", "-qam", "new")
    write(pytester.path, "reports/untracked.json", "{}\n")
    write(pytester.path, "reports/ab.json", "{}\n")  # 'a*b' as a pathspec would match it
    config(pytester, """
        [tool.mlfunnel.maintenance.artifacts]
        files = ["reports/*.json", "reports/r7.json", "reports/a*b.json"]
        max_age = "30 days"
    """)
    calls = pytester.path.parent / f"{pytester.path.name}-git-calls.log"
    git_wrapper(pytester, monkeypatch, f'echo "$*" >> {calls}')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=2)
    logs = [line for line in calls.read_text().splitlines() if "log" in line.split()]
    assert len(logs) == 3  # one per criterion, not one per file
    result.stdout.fnmatch_lines_random([
        "reports/[*].json: 1500 of 1503 file(s) older than 30 days: reports/*",
        "reports/a[*]b.json: 1 of 1 file(s) older than 30 days: reports/a[*]b.json (* ago)",
    ])


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for git")
def test_a_git_that_does_not_answer_is_an_error_naming_what_it_waited_for(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """git that waits (a history too long to walk, a hook, a network file system) is given up
    on: the criterion says so instead of falling back to modification times in silence."""
    git(pytester.path, "init", "-q")
    write(pytester.path, "docs/runbook.md", "# Runbook\n")
    git(pytester.path, "add", "docs")
    git(pytester.path, "commit", "-qm", "runbook")
    config(pytester, """
        [tool.mlfunnel.maintenance.artifacts]
        files = ["docs/*.md"]
        max_age = "30 days"
    """)
    git_wrapper(pytester, monkeypatch, 'for a in "$@"; do [ "$a" = log ] && exec sleep 120; done')
    # the bound is 30 s; a second keeps the test short
    pytester.makeconftest("import pytest_mlfunnel.kinds.files as files\n"
                          "files.GIT_TIMEOUT_S = 1.0\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess("--funnel", timeout=120)
    assert time.monotonic() - started < 60
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "docs/[*].md: git log did not answer within 1 s while dating 1 file(s) by their last "
        "commit (a very long history, or a git that waits for something)"])


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="POSIX links")
def test_a_document_linked_to_a_file_outside_the_project_is_not_read(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Its headings and sign-offs would go into the reports: any file of the CI machine."""
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "notes.md"
    elsewhere.write_text("# Secret plans\n\n## Sign-off\n- Owner: Mallory, 2026-01-01\n")
    (pytester.path / "docs").mkdir()
    (pytester.path / "docs" / "model_card.md").symlink_to(elsewhere)
    write(pytester.path, "docs/real.md", "# Runbook\n\nRestart it.\n")
    (pytester.path / "docs" / "runbook.md").symlink_to("real.md")  # inside: fine
    config(pytester, """
        [tool.mlfunnel.maintenance.card]
        document = "docs/model_card.md"
        sections = ["Secret plans"]

        [tool.mlfunnel.maintenance.runbook]
        document = "docs/runbook.md"
        sections = ["Runbook"]
    """)
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        f"docs/model_card.md: a symbolic link that leads outside the project (to "
        f"{os.path.realpath(elsewhere)}); a document must be a file of the project"])
    assert "Mallory" not in result.stdout.str()
    assert "Mallory" not in (pytester.path / "report.json").read_text()


def test_a_shallow_clone_cannot_make_old_files_look_fresh(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    """CI's default checkout keeps one commit, and git shows every file as added by it: a
    runbook untouched for years passed ``max_age``. Where the history is cut, a date within
    ``max_age`` cannot be told (an error), and one beyond it is old for sure."""
    origin = tmp_path_factory.mktemp("origin")
    git(origin, "init", "-q")
    write(origin, "docs/runbook.md", "# Runbook\n\nRestart it.\n")
    git(origin, "add", "docs")
    git(origin, "commit", "-qm", "runbook", date="2020-01-01T00:00:00")
    write(origin, "models/older.pkl", "y")
    git(origin, "add", "models")
    git(origin, "commit", "-qm", "older model", date="2020-06-01T00:00:00")
    write(origin, "models/model.pkl", "x")
    git(origin, "add", "models")
    git(origin, "commit", "-qm", "model")
    clone = pytester.path / "clone"
    git(pytester.path, "clone", "-q", "--depth", "1", origin.as_uri(), str(clone))
    git(pytester.path, "clone", "-q", "--depth", "2", origin.as_uri(), str(clone) + "2")
    body = """
        [tool.mlfunnel]
        funnel = ["maintenance"]

        [tool.mlfunnel.maintenance.artifacts]
        files = ["docs/runbook.md", "models/model.pkl"]
        max_age = "30 days"

        [tool.mlfunnel.maintenance.runbook]
        document = "docs/runbook.md"
        sections = []
        max_age = "30 days"
    """
    for folder in (clone, Path(str(clone) + "2")):
        (folder / "pyproject.toml").write_text(textwrap.dedent(body))
    cut = ("the repository is a shallow clone, so git cannot tell when {} last changed (each "
           "shows as added where the history is cut): fetch the full history "
           "(actions/checkout with fetch-depth: 0; GitLab: GIT_DEPTH: 0)")
    # depth 1: the history is cut at the newest commit, which every file seems to add
    result = pytester.runpytest("--funnel", f"--rootdir={clone}", "-c",
                                str(clone / "pyproject.toml"), str(clone))
    result.assert_outcomes(passed=1, errors=0, failed=3)
    result.stdout.fnmatch_lines_random([
        f"docs/runbook.md: {cut.format('docs/runbook.md')}",
        f"models/model.pkl: {cut.format('models/model.pkl')}",
    ])
    # depth 2: model.pkl's commit is inside the history; the runbook's is at most as new as
    # the cut (June 2020), so it is older than 30 days for sure
    result = pytester.runpytest("--funnel", f"--rootdir={clone}2", "-c",
                                f"{clone}2/pyproject.toml", f"{clone}2")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "docs/runbook.md: 1 of 1 file(s) older than 30 days: docs/runbook.md (at least * days "
        "ago)",
        "docs/runbook.md: last committed 2020-06-01 or before (a shallow clone), * days ago, "
        "expected <= 30 days old",
    ])


@pytest.mark.skipif(os.name != "posix", reason="a moved folder stands in for a lost remote")
def test_a_treeless_clone_whose_remote_is_gone_is_an_error_not_a_fresh_file(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A treeless clone fetches old trees from its remote while git log walks; when that
    fails, the files are not dated by their checkout time in silence."""
    origin = tmp_path_factory.mktemp("origin")
    git(origin, "init", "-q")
    git(origin, "config", "uploadpack.allowFilter", "true")
    write(origin, "docs/runbook.md", "# Runbook\n")
    git(origin, "add", "docs")
    git(origin, "commit", "-qm", "runbook", date="2020-01-01T00:00:00")
    write(origin, "README.md", "hi\n")
    git(origin, "add", "README.md")
    git(origin, "commit", "-qm", "readme")
    clone = pytester.path / "clone"
    git(pytester.path, "clone", "-q", "--filter=tree:0", origin.as_uri(), str(clone))
    origin.rename(origin.with_name(origin.name + "-gone"))
    (clone / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.mlfunnel]
        funnel = ["maintenance"]

        [tool.mlfunnel.maintenance.artifacts]
        files = ["docs/runbook.md"]
        max_age = "30 days"
    """))
    result = pytester.runpytest("--funnel", f"--rootdir={clone}", "-c",
                                str(clone / "pyproject.toml"), str(clone))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "docs/runbook.md: git log failed while dating 1 file(s) by their last commit: fatal: "
        "could not fetch * from promisor remote"])


def test_a_huge_metrics_file_or_document_is_named_not_read_into_memory(
        pytester: pytest.Pytester) -> None:
    """A sparse 30 GiB file (an export gone wrong) ended as ``MemoryError`` raised in pathlib,
    or filled the memory when it fitted."""
    for name in ("reports/eval.json", "reports/eval.toml", "reports/service.prom",
                 "docs/model_card.md"):
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.truncate(30 * 2**30)
    write(pytester.path, "reports/ok.json", '{"f1": 0.9}')
    config(pytester, """
        [tool.mlfunnel.maintenance.json]
        metrics = "reports/eval.json"
        expect = { f1 = ">= 0.8" }

        [tool.mlfunnel.maintenance.toml]
        metrics = "reports/eval.toml"
        expect = { f1 = ">= 0.8" }

        [tool.mlfunnel.maintenance.prom]
        metrics = "reports/service.prom"
        expect = { requests_total = ">= 1" }

        [tool.mlfunnel.maintenance.card]
        document = "docs/model_card.md"
        sections = []

        [tool.mlfunnel.maintenance.ok]
        metrics = "reports/ok.json"
        expect = { f1 = ">= 0.8" }
    """)
    result = pytester.runpytest_subprocess("--funnel", timeout=120)
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines_random([
        f"reports/{name}: holds 30.0 GiB; a metrics file is read whole, up to 64 MiB (is it "
        "the right file?)" for name in ("eval.json", "eval.toml", "service.prom")] + [
        "docs/model_card.md: holds 30.0 GiB; a document is read whole, up to 64 MiB (is it "
        "the right file?)"])
    assert "MemoryError" not in result.stdout.str()

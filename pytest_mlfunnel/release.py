"""Which release a run belongs to: the hook, --funnel-record=RELEASE, the git tag, the commit."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

#: What git itself clears when it runs a command in another repository (``git rev-parse
#: --local-env-vars``, less the config it carries). git sets GIT_DIR (often ``.git``, relative)
#: and GIT_INDEX_FILE for its hooks: a hook that goes into the project's folder and runs the
#: funnel would otherwise send every git call to a repository that is not there.
REPOSITORY_ENV = ("GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_OBJECT_DIRECTORY", "GIT_DIR",
                  "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE", "GIT_INDEX_FILE",
                  "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX",
                  "GIT_INTERNAL_SUPER_PREFIX", "GIT_SHALLOW_FILE", "GIT_COMMON_DIR")


def git_env() -> dict[str, str]:
    """The environment for git calls in the project's folder: the repository is the one
    git finds from that folder, whatever a hook around the run has set. git never waits on a
    person: a partial clone fetching from a remote that wants a password fails at once instead
    of asking on the terminal, and no pager starts."""
    kept = {name: value for name, value in os.environ.items() if name not in REPOSITORY_ENV}
    return kept | {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"}


def git(rootdir: Path, *args: str) -> str | None:
    """Run a git command in rootdir; None when git is missing or the command fails."""
    try:
        done = subprocess.run(["git", *args], cwd=rootdir, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=10, check=False,
                              env=git_env(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def short_commit(rootdir: Path) -> str | None:
    return git(rootdir, "rev-parse", "--short", "HEAD")


def tag_at_head(rootdir: Path) -> str | None:
    return git(rootdir, "describe", "--tags", "--exact-match", "HEAD")


class ReleaseNameError(TypeError):
    """The release hook answered something that is not a name."""


def detect_release(config: Any, rootdir: Path) -> tuple[str | None, str | None]:
    """(release, commit). Release: hook answer, given name, tag at HEAD, short commit, date.

    The ``pytest_mlfunnel_release`` hook wins over ``--funnel-record=NAME``: a project that
    names its releases in code (from ``CI_COMMIT_TAG``, a version file …) gets one naming
    rule everywhere, and the hook receives ``config`` so it can still defer to the command
    line (``return config.getoption("funnel_record") or ...``). A hook answering None
    passes the decision on.
    """
    commit = short_commit(rootdir)
    answer = config.hook.pytest_mlfunnel_release(config=config)
    if answer is not None and (isinstance(answer, bool) or not isinstance(answer, str | int)):
        raise ReleaseNameError(f"the pytest_mlfunnel_release hook returned {answer!r}: return "
                               "the release's name as a string, or None")
    if answer is not None and str(answer).strip():
        return _text(str(answer).strip(), "the pytest_mlfunnel_release hook"), commit
    given = config.getoption("funnel_record", None)
    if given and given.strip():
        return _text(given.strip(), "--funnel-record"), commit
    tag = tag_at_head(rootdir)
    if tag:
        return tag, commit
    if commit:
        return commit, commit
    return dt.date.today().isoformat(), None


def _text(name: str, given_by: str) -> str:
    """``name`` when it can be written as UTF-8 (history, reports); a ``ReleaseNameError``
    when it holds a lone surrogate: a byte of another encoding passed through the command line
    (``--funnel-record="$(cat VERSION)"`` of a Latin-1 file) or a broken string from a hook."""
    for position, character in enumerate(name):
        if "\ud800" <= character <= "\udfff":
            what = (f"byte 0x{ord(character) - 0xDC00:02x}" if character >= "\udc80"
                    else f"a lone surrogate {character!r}")
            raise ReleaseNameError(f"{given_by}: the release name {name!r} is not UTF-8 text "
                                   f"({what} at position {position}): name the release in "
                                   "UTF-8")
    return name

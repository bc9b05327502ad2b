"""``files``: paths and globs exist, and are fresh (last commit touching them, else mtime)."""

from __future__ import annotations

import datetime as dt
import glob
import os
from pathlib import Path
from typing import Any

from pydantic import field_validator

from pytest_mlfunnel.expectations import format_duration
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    Duration,
    EvalContext,
    Evaluate,
    PlanContext,
)
from pytest_mlfunnel.outcome import Outcome
from pytest_mlfunnel.release import git

MAX_LISTED = 5


class FilesConfig(CheckConfig):
    files: list[str]
    max_age: Duration | None = None

    @field_validator("files", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("files")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value or any(not v.strip() for v in value):
            raise ValueError("give one or more paths or globs, e.g. ['docs/runbook.md']")
        return value


def last_changed(path: Path, rootdir: Path) -> dt.datetime:
    """When a file last changed: its last git commit, else its modification time."""
    stamp = git(rootdir, "log", "-1", "--format=%ct", "--", str(path))
    if stamp and stamp.isdigit():
        return dt.datetime.fromtimestamp(int(stamp), dt.timezone.utc)
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)


def expand(pattern: str, rootdir: Path) -> list[Path]:
    """The paths a pattern names, symbolic links that lead nowhere included (the check
    names them). Globs as ``glob`` reads them, but ``**`` does not descend into a linked
    folder: ``glob`` does, and two links to a parent folder make that walk exponential."""
    base = Path(pattern).expanduser()
    full = base if base.is_absolute() else rootdir / base
    # a name may hold "[" or "*" itself ("reports/[2026-11]/eval.json"): what is there as
    # written is that file, not a glob class matching "reports/2/eval.json"
    if glob.has_magic(pattern) and not os.path.lexists(full):
        return sorted(Path(p) for p in _glob(full))
    return [full] if os.path.lexists(full) else []


def _glob(full: Path) -> list[str]:
    parts = full.parts
    start = 0
    while start < len(parts) and not glob.has_magic(parts[start]):
        start += 1
    current = [os.path.join(*parts[:start])]
    for index in range(start, len(parts)):
        part, last = parts[index], index == len(parts) - 1
        found: list[str] = []
        for folder in current:
            if part == "**":
                found.extend(_below(folder, with_files=last))
            elif glob.has_magic(part):
                found.extend(glob.glob(os.path.join(glob.escape(folder), part)))
            elif os.path.lexists(os.path.join(folder, part)):
                found.append(os.path.join(folder, part))
        current = list(dict.fromkeys(found))
    return current


def _below(folder: str, with_files: bool) -> list[str]:
    """``folder/**``: the folder and every folder under it (and file, at the end of the
    pattern), hidden names left out as ``glob`` leaves them; linked folders are listed but
    not entered."""
    if not os.path.isdir(folder):
        return []
    found = [folder]
    for root, dirs, files in os.walk(folder):  # followlinks=False
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, d) for d in dirs)
        if with_files:
            found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return found


class FilesKind(CheckKind[FilesConfig]):
    key = "files"
    evidence = "measured"
    config_model = FilesConfig

    def plan(self, check: FilesConfig, ctx: PlanContext) -> list[Criterion]:
        expected = "exists" + (f", changed within {format_duration(check.max_age)}"
                               if check.max_age is not None else "")
        return [Criterion(pattern, self._evaluator(check, pattern, expected), expected=expected)
                for pattern in check.files]

    @staticmethod
    def _evaluator(check: FilesConfig, pattern: str, expected: str) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            found = expand(pattern, ctx.rootdir)
            matches = [path for path in found if path.exists()]
            if not matches:
                return Outcome.failed(_missing(pattern, found, ctx.rootdir), 0, expected)
            if check.max_age is None:
                return Outcome.passed(len(matches), expected,
                                      f"{pattern}: {len(matches)} file(s)")
            ages = []
            for path in matches:
                age = (ctx.now - last_changed(path, ctx.rootdir)).total_seconds()
                ages.append((age, path))
            stale = sorted([(a, p) for a, p in ages if a > check.max_age], reverse=True)
            oldest = max(a for a, _ in ages)
            if not stale:
                return Outcome.passed(round(oldest / 86400.0, 2), expected,
                                      f"{pattern}: {len(matches)} file(s), oldest changed "
                                      f"{format_duration(oldest)} ago")
            named = ", ".join(f"{_rel(p, ctx.rootdir)} ({format_duration(a)} ago)"
                              for a, p in stale[:MAX_LISTED])
            more = f" and {len(stale) - MAX_LISTED} more" if len(stale) > MAX_LISTED else ""
            return Outcome.failed(
                f"{pattern}: {len(stale)} of {len(matches)} file(s) older than "
                f"{format_duration(check.max_age)}: {named}{more}",
                round(oldest / 86400.0, 2), expected)
        return evaluate


def _missing(pattern: str, broken: list[Path], rootdir: Path) -> str:
    """``no such file``, naming the links that lead nowhere (or in a loop) when that is why."""
    if not broken:
        hint = (" ('[' starts a set of characters in a glob: write '[[]' for a '[' in a name)"
                if "[" in pattern else "")
        return f"{pattern}: no such file{hint}"
    if not glob.has_magic(pattern):
        return f"{pattern}: a broken symbolic link (it leads to no file)"
    named = ", ".join(_rel(path, rootdir) for path in broken[:MAX_LISTED])
    more = f" and {len(broken) - MAX_LISTED} more" if len(broken) > MAX_LISTED else ""
    return f"{pattern}: no such file (only broken symbolic links: {named}{more})"


def _rel(path: Path, rootdir: Path) -> str:
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return str(path)

"""``files``: paths and globs exist, and are fresh (last commit touching them, else mtime)."""

from __future__ import annotations

import datetime as dt
import glob
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
    base = Path(pattern).expanduser()
    full = base if base.is_absolute() else rootdir / base
    if glob.has_magic(pattern):
        return sorted(Path(p) for p in glob.glob(str(full), recursive=True))
    return [full] if full.exists() else []


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
            matches = expand(pattern, ctx.rootdir)
            if not matches:
                return Outcome.failed(f"{pattern}: no such file", 0, expected)
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


def _rel(path: Path, rootdir: Path) -> str:
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return str(path)

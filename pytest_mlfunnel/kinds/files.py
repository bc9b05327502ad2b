"""``files``: paths and globs exist, and are fresh (last commit touching them, else mtime)."""

from __future__ import annotations

import datetime as dt
import glob
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from pydantic import field_validator

from pytest_mlfunnel.expectations import format_duration
from pytest_mlfunnel.kinds.base import (
    CLOCK_SKEW_S,
    CheckConfig,
    CheckKind,
    Criterion,
    Duration,
    EvalContext,
    Evaluate,
    PlanContext,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.release import git, git_env

MAX_LISTED = 5


def _some(names: list[str]) -> str:
    """The first ``MAX_LISTED`` names, and how many more there are."""
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more
#: how long the git calls that date a check's files may take, all together
GIT_TIMEOUT_S = 30.0
#: pathspecs per ``git log`` call, in characters (far below any command-line limit)
_PATHSPEC_CHARS = 60_000


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


class Changed:
    """When a file last changed, and how that is known (``committed`` or ``modified``).
    ``at_least`` when git only knows the commit where a shallow clone's history is cut: the
    file may have changed long before, so ``when`` is only the newest it can be."""

    def __init__(self, when: dt.datetime, how: str, at_least: bool = False) -> None:
        self.when = when
        self.how = how
        self.at_least = at_least

    def age(self, now: dt.datetime) -> float | None:
        """Seconds since the change; None when it is dated ahead of the clock (a wrong clock
        on the machine that wrote it), so the age cannot be told."""
        seconds = (now - self.when).total_seconds()
        if seconds < -CLOCK_SKEW_S:
            return None
        return max(seconds, 0.0)

    def in_the_future(self) -> str:
        return f"{self.how} {self.when:%Y-%m-%d %H:%M} UTC, in the future"


def last_changed(path: Path, rootdir: Path) -> Changed:
    """When a file last changed: its last git commit, else its modification time."""
    return last_changes([path], rootdir)[path]


def last_changes(paths: list[Path], rootdir: Path) -> dict[Path, Changed]:
    """``last_changed`` of many files from one ``git ls-tree`` and one ``git log`` (not one
    git call per file: 1,500 files took 14 s), the log read only until every file committed
    at HEAD has been seen. git that does not answer within ``GIT_TIMEOUT_S`` is an error
    naming what it was asked, not a silent fall back to modification times."""
    changed: dict[Path, Changed] = {}
    for path, (when, cut) in _commit_times(paths, rootdir).items():
        changed[path] = Changed(when, "committed", at_least=cut)
    for path in paths:
        if path not in changed:
            stamp = path.stat().st_mtime
            changed[path] = Changed(dt.datetime.fromtimestamp(stamp, dt.timezone.utc),
                                    "modified")
    return changed


def _commit_times(paths: list[Path], rootdir: Path) -> dict[Path, tuple[dt.datetime, bool]]:
    top = git(rootdir, "rev-parse", "--show-toplevel")
    if top is None:  # not a repository, no git, no commit yet
        return {}
    toplevel = Path(os.path.realpath(top))
    names: dict[str, Path] = {}
    for path in paths:
        # the link itself is what git tracks: resolve its folder, not the link
        real = Path(os.path.realpath(path.parent)) / path.name
        try:
            names[real.relative_to(toplevel).as_posix()] = path
        except ValueError:
            continue  # outside the work tree: its modification time counts
    deadline = time.monotonic() + GIT_TIMEOUT_S
    found: dict[Path, tuple[dt.datetime, bool]] = {}
    cuts: set[str] | None = None
    for chunk in _chunks(sorted(names)):
        listed = _git_lines(toplevel, ["ls-tree", "-r", "-z", "--name-only", "HEAD", "--",
                                       *chunk], deadline, len(chunk))
        committed = set(listed) & set(chunk)
        if not committed:
            continue
        if cuts is None:
            cuts = _shallow_cuts(toplevel)
        for name, (stamp, commit) in _log_times(toplevel, sorted(committed),
                                                deadline).items():
            found[names[name]] = (dt.datetime.fromtimestamp(stamp, dt.timezone.utc),
                                  commit in cuts)
    return found


def _shallow_cuts(toplevel: Path) -> set[str]:
    """The commits where a shallow clone's history is cut (CI's default checkout): git shows
    every file there as added by them, whenever it really changed."""
    where = git(toplevel, "rev-parse", "--git-path", "shallow")
    if where is None:
        return set()
    try:
        return set((toplevel / where).read_text(encoding="ascii").split())
    except (OSError, UnicodeDecodeError):
        return set()


def _chunks(names: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for name in names:
        if chunks[-1] and size + len(name) > _PATHSPEC_CHARS:
            chunks.append([])
            size = 0
        chunks[-1].append(name)
        size += len(name) + 1
    return [chunk for chunk in chunks if chunk]


def _git(toplevel: Path, args: list[str], stderr: Any = subprocess.DEVNULL
         ) -> subprocess.Popen[bytes]:
    """git in the work tree, never waiting on a person: no terminal prompt for credentials,
    no pager, no signature check of each commit, names taken literally (``a*.json``)."""
    env = git_env() | {"GIT_LITERAL_PATHSPECS": "1", "GIT_OPTIONAL_LOCKS": "0"}
    return subprocess.Popen(
        ["git", "--no-pager", "-c", "log.showSignature=false", "-c", "core.quotePath=off",
         *args], cwd=toplevel, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=stderr, env=env)


def _git_lines(toplevel: Path, args: list[str], deadline: float, files: int) -> list[str]:
    """A git command's NUL-separated output; [] when git fails."""
    try:
        process = _git(toplevel, args)
    except OSError:
        return []
    try:
        out, _ = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise _too_slow(args[0], files) from None
    if process.returncode != 0:
        return []
    return [name for name in out.decode("utf-8", "surrogateescape").split("\0") if name]


def _log_times(toplevel: Path, names: list[str], deadline: float
               ) -> dict[str, tuple[int, str]]:
    """The time and hash of each name's newest commit, from one ``git log`` read until every
    name has been seen (older history is never walked)."""
    with tempfile.TemporaryFile() as errors:
        try:
            process = _git(toplevel, ["log", "--format=%x00%ct %H", "-z", "--name-only",
                                      "--no-renames", "--", *names], stderr=errors)
        except OSError:
            return {}
        assert process.stdout is not None
        times: dict[str, tuple[int, str]] = {}
        reader = threading.Thread(target=_read_log, args=(process.stdout, set(names), times),
                                  daemon=True)
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        if reader.is_alive() or len(times) == len(names):
            # out of time, or every name seen: the rest of the history is not needed
            process.kill()
            process.wait()
            reader.join(5)
            process.stdout.close()
            if len(times) < len(names):
                raise _too_slow("log", len(names))
            return times
        process.stdout.close()
        try:  # its output ended: its exit status says whether that was all the history
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise _too_slow("log", len(names)) from None
        if process.returncode != 0:
            # a treeless clone fetching trees from a remote it cannot reach, a broken object
            errors.seek(0)
            said = errors.read(4096).decode("utf-8", "replace").strip().splitlines()
            raise CriterionError(f"git log failed while dating {len(names)} file(s) by their "
                                 f"last commit: {said[-1] if said else process.returncode}")
    return times


def _read_log(stream: IO[bytes], wanted: set[str], times: dict[str, tuple[int, str]]) -> None:
    """``git log --format=%x00%ct %H -z --name-only``: NUL-separated tokens, an empty token
    before each commit's time and hash, then its names (the first after a newline)."""
    pending = b""
    header, first, stamp, commit = False, False, 0, ""
    while len(times) < len(wanted):
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            break
        *tokens, pending = (pending + chunk).split(b"\0")
        for token in tokens:
            if not token:
                header = True
            elif header:
                header = False
                stamp_text, _, commit = token.decode("ascii", "replace").partition(" ")
                stamp = int(stamp_text) if stamp_text.isdigit() else 0
                first = True
            else:
                name = token.decode("utf-8", "surrogateescape")
                if first:
                    name, first = name.removeprefix("\n"), False
                if name in wanted and name not in times:
                    times[name] = (stamp, commit)


def _too_slow(command: str, files: int) -> CriterionError:
    return CriterionError(
        f"git {command} did not answer within {format_duration(GIT_TIMEOUT_S)} while "
        f"dating {files} file(s) by their last commit (a very long history, or a git that "
        "waits for something)")


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
            existing = [path for path in found if path.exists()]
            matches = [path for path in existing if not path.is_dir()]
            if not matches:
                folders = [path for path in existing if path.is_dir()]
                message = (_folders(pattern, folders, ctx.rootdir) if folders
                           else _missing(pattern, found, ctx.rootdir))
                return Outcome.failed(message, 0, expected)
            if check.max_age is None:
                return Outcome.passed(len(matches), expected,
                                      f"{pattern}: {len(matches)} file(s)")
            try:
                changes = last_changes(matches, ctx.rootdir)
            except CriterionError as exc:
                raise CriterionError(f"{pattern}: {exc}") from None
            ages: list[tuple[float, Path]] = []
            future: list[Path] = []
            cut: list[Path] = []
            for path in matches:
                age = changes[path].age(ctx.now)
                if age is None:
                    future.append(path)
                elif changes[path].at_least and age <= check.max_age:
                    cut.append(path)  # it may be older: the history that would say is cut
                else:
                    ages.append((age, path))
            stale = sorted([(a, p) for a, p in ages if a > check.max_age], reverse=True)
            oldest = max((a for a, _ in ages), default=0.0)
            if cut and not stale and not future:
                raise CriterionError(f"{pattern}: {shallow_clone(cut, ctx.rootdir)}")
            if not stale and not future:
                return Outcome.passed(round(oldest / 86400.0, 2), expected,
                                      f"{pattern}: {len(matches)} file(s), oldest changed "
                                      f"{format_duration(oldest)} ago")
            problems: list[str] = []
            if future:
                named = _some([f"{_rel(p, ctx.rootdir)} ({changes[p].in_the_future()})"
                               for p in future])
                problems.append(f"{len(future)} of {len(matches)} file(s) dated ahead of the "
                                f"clock, so their age cannot be told: {named}")
            if stale:
                named = _some([
                    f"{_rel(p, ctx.rootdir)} ({'at least ' if changes[p].at_least else ''}"
                    f"{format_duration(a)} ago)" for a, p in stale])
                problems.append(f"{len(stale)} of {len(matches)} file(s) older than "
                                f"{format_duration(check.max_age)}: {named}")
            return Outcome.failed(f"{pattern}: {'; '.join(problems)}",
                                  round(oldest / 86400.0, 2), expected)
        return evaluate


def shallow_clone(paths: list[Path], rootdir: Path) -> str:
    named = _some([_rel(path, rootdir) for path in paths])
    return (f"the repository is a shallow clone, so git cannot tell when {named} last "
            "changed (each shows as added where the history is cut): fetch the full history "
            "(actions/checkout with fetch-depth: 0; GitLab: GIT_DEPTH: 0)")


def _folders(pattern: str, folders: list[Path], rootdir: Path) -> str:
    """Only folders match: a folder is not a file (``models/old.pkl/`` is no model)."""
    if not glob.has_magic(pattern):
        inside = pattern.rstrip("/\\") + "/*"
        return f"{pattern}: a folder, not a file (write '{inside}' for the files in it)"
    named = _some([_rel(path, rootdir) for path in folders])
    return f"{pattern}: no such file (only folders match: {named})"


def _missing(pattern: str, broken: list[Path], rootdir: Path) -> str:
    """``no such file``, naming the links that lead nowhere (or in a loop) when that is why."""
    if not broken:
        hint = (" ('[' starts a set of characters in a glob: write '[[]' for a '[' in a name)"
                if "[" in pattern else "")
        return f"{pattern}: no such file{hint}"
    if not glob.has_magic(pattern):
        return f"{pattern}: a broken symbolic link (it leads to no file)"
    named = _some([_rel(path, rootdir) for path in broken])
    return f"{pattern}: no such file (only broken symbolic links: {named})"


def _rel(path: Path, rootdir: Path) -> str:
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return str(path)

"""The history file: one summary line per recorded release, and comparison with the last one.

The file is JSON Lines; each line is an ``mlfunnel-report/1`` document without criteria,
plus per gate the compact ``statuses`` of its criteria and the numbers they observed.
Writers hold a lock file beside it and replace the whole file (temp file + ``os.replace``),
so a reader never sees half a line and two runs recording at once lose nothing. Lines that
are not ours are reported and kept byte for byte.

Standard library only at import: the ``mlfunnel`` command reads this module without pytest
(a line is checked with the report schema's models, loaded when a history is read).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlfunnel.atomic import read_regular, write_atomic
from pytest_mlfunnel.funnel import NOT_PASSED
from pytest_mlfunnel.jsontext import JsonTextError, parse_json
from pytest_mlfunnel.report import SCHEMA as SCHEMA  # the report's: a history line is one
from pytest_mlfunnel.report import strict_json

#: Where runs are recorded unless ``history = ...`` says otherwise.
DEFAULT_HISTORY = ".mlfunnel/history.jsonl"

GATE_STATUSES = ("passed", "warned", "failed", "empty", "not run")
#: Numbers observed per line; enough for trends, small enough to keep lines short.
MAX_OBSERVED = 200
_LOCK_TIMEOUT_S = 60.0
#: A temporary file of ours this old is left over from a run that was killed.
STALE_TEMPORARY_S = 600.0


@dataclass
class HistoryLine:
    number: int  # 1-based line number in the file
    raw: bytes  # the line as stored, without its newline (rewritten verbatim)
    entry: dict[str, Any] | None  # the summary, None when the line is corrupt or foreign
    problem: str | None = None


@dataclass
class History:
    path: Path
    lines: list[HistoryLine] = field(default_factory=list)

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [line.entry for line in self.lines if line.entry is not None]

    def latest(self) -> dict[str, Any] | None:
        entries = self.entries
        return entries[-1] if entries else None

    def previous_to(self, release: str | None) -> dict[str, Any] | None:
        """The last recorded entry of another release (re-runs compare with the one before)."""
        entries = self.entries
        for entry in entries[::-1]:
            if entry.get("release") != release:
                return entry
        return None

    def notes(self, label: str | None = None) -> list[str]:
        where = label or str(self.path)
        return [f"{where}:{line.number}: {line.problem} (skipped, left in place)"
                for line in self.lines if line.problem is not None]


# ---------------------------------------------------------------------- reading
def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(entry, None) for a summary line, (None, problem) for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    try:
        data: Any = parse_json(text)
    except JsonTextError as exc:
        return None, f"not JSON ({exc.describe(with_line=False)})"
    if not isinstance(data, dict):
        return None, f"not a history entry (a JSON {type(data).__name__})"
    if data.get("schema") != SCHEMA:
        return None, f"not a history entry (schema {data.get('schema')!r}, expected {SCHEMA!r})"
    from pytest_mlfunnel.schema import check_history_line

    problem = check_history_line(data)
    if problem is not None:
        return None, f"not a valid history entry ({problem})"
    return data, None


def _split(blob: bytes) -> list[bytes]:
    lines = blob.split(b"\n")
    return [line.rstrip(b"\r") for line in lines]


def read_history(path: Path) -> History:
    """The history at ``path``; empty when the file does not exist yet."""
    try:
        blob = read_regular(path)
    except FileNotFoundError:
        return History(path)
    return _parse(path, blob)


def _parse(path: Path, blob: bytes, known: History | None = None) -> History:
    """The lines of ``blob``; a line ``known`` holds byte for byte is not parsed again (a run
    reads the history before it records, and checking a line is most of reading it)."""
    seen = {line.raw: line for line in known.lines} if known is not None else {}
    history = History(path)
    for number, raw in enumerate(_split(blob), start=1):
        if not raw.strip():
            continue
        before = seen.get(raw)
        entry, problem = (before.entry, before.problem) if before else parse_line(raw)
        history.lines.append(HistoryLine(number, raw, entry, problem))
    return history


# ---------------------------------------------------------------------- summaries
def criterion_key(gate: str, criterion_id: str) -> str:
    """``pyproject.toml::model::quality::accuracy`` -> ``model::quality::accuracy``.

    Ordinary tests marked with a gate keep their node id: ``model::tests/t.py::test_x``.
    """
    _, _, rest = criterion_id.partition("::")
    if rest.startswith(f"{gate}::"):
        return rest
    return f"{gate}::{criterion_id}"


def statuses_of(gate: Mapping[str, Any]) -> dict[str, str]:
    """Criterion key -> status, from a summary's ``statuses`` or a report's ``criteria``."""
    stored = gate.get("statuses")
    if isinstance(stored, dict):
        return {str(k): str(v) for k, v in stored.items()}
    name = str(gate.get("name"))
    return {criterion_key(name, str(c.get("id"))): str(c.get("status"))
            for c in gate.get("criteria") or () if isinstance(c, dict)}


def count(value: Any) -> int:
    """A stage or a count from a stored report; 0 for anything that is not a whole number.

    Reports can come from files anyone edited, so renderers never trust their types.
    """
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summary_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The history line of a report dict (``Report.to_dict()``)."""
    summary = {key: value for key, value in report.items() if key != "gates"}
    summary["schema"] = SCHEMA
    gates = []
    budget = MAX_OBSERVED
    for gate in report.get("gates", []):
        line = {key: gate[key] for key in ("name", "status", "passed", "total") if key in gate}
        line["statuses"] = statuses_of(gate)
        observed: dict[str, Any] = {}
        for criterion in gate.get("criteria") or ():
            value = criterion.get("observed")
            if budget > 0 and criterion.get("evidence") == "measured" and _is_number(value):
                observed[criterion_key(gate["name"], str(criterion.get("id")))] = value
                budget -= 1
        if not observed and isinstance(gate.get("observed"), dict):
            observed = dict(gate["observed"])
        if observed:
            line["observed"] = observed
        gates.append(line)
    summary["gates"] = gates
    return summary


#: Line breaks to Python's ``str.splitlines`` (and to editors) that JSON leaves unescaped.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def summary_line(report: Mapping[str, Any]) -> bytes:
    text = json.dumps(strict_json(summary_of(report)), separators=(",", ":"),
                      ensure_ascii=False, default=str, allow_nan=False)
    # one entry, one line for every reader: a release named "v2\u2028rc" written raw would
    # be two lines to a script reading the file with splitlines()
    for character, escaped in _LINE_BREAKS.items():
        text = text.replace(character, escaped)
    return text.encode("utf-8")


# ---------------------------------------------------------------------- writing
@contextlib.contextmanager
def locked(path: Path, timeout_s: float = _LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.lock`` beside ``path`` (across processes).

    The lock file stays: removing it would race with a process about to lock it.
    """
    lock_path = path.with_name(f".{path.name}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        _acquire(handle.fileno(), lock_path, timeout_s)
        try:
            yield
        finally:
            _release(handle.fileno())


if sys.platform == "win32":  # pragma: no cover
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _release(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _release(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _acquire(fd: int, lock_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _try_lock(fd):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{lock_path}: still locked after {timeout_s:.0f} s by another "
                               "run")
        time.sleep(0.01)


def replace_file(path: Path, blob: bytes) -> None:
    """Write a whole file atomically (see ``atomic.write_atomic``)."""
    write_atomic(path, blob)


def remove_stale_temporaries(path: Path, now: float | None = None) -> list[Path]:
    """Remove ``.<name>.*.tmp`` beside ``path`` left by a killed writer: its process is gone,
    or it is older than ``STALE_TEMPORARY_S``. Call it holding the lock."""
    now = time.time() if now is None else now
    removed = []
    prefix = f".{path.name}."
    try:
        candidates = [p for p in path.parent.iterdir()
                      if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return []
    for candidate in candidates:
        pid = candidate.name[len(prefix):].split(".", 1)[0]
        try:
            stale = (pid.isdigit() and not _alive(int(pid))) or (
                now - candidate.lstat().st_mtime > STALE_TEMPORARY_S)
            if stale and candidate.is_file():
                candidate.unlink()
                removed.append(candidate)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # pragma: no cover - os.kill would end the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True


def record(path: Path, report: Mapping[str, Any], known: History | None = None) -> History:
    """Add the summary of ``report`` to the history; a release already there is replaced.

    ``known``: the history as read earlier in the run; the file is read again under the lock
    (another run may have recorded since), and only lines it does not hold are parsed.
    Returns the history as it was before (its notes name the lines that were skipped).
    """
    line = summary_line(report)
    release = report.get("release")
    # the lock and the temporaries beside the file itself: two projects linking one shared
    # history must take the same lock
    path = Path(os.path.realpath(path))
    with locked(path):
        remove_stale_temporaries(path)
        try:
            blob = read_regular(path)
        except FileNotFoundError:
            blob = b""
        before = _parse(path, blob, known)
        kept: list[bytes] = []
        placed = False
        for stored in before.lines:
            if stored.entry is not None and stored.entry.get("release") == release:
                if not placed:  # the new line takes the place of the release's first line
                    kept.append(line)
                    placed = True
                continue
            kept.append(stored.raw)
        if not placed:
            kept.append(line)
        replace_file(path, b"\n".join(kept) + b"\n")
    return before


# ---------------------------------------------------------------------- comparison
@dataclass
class ChangeSinceRelease:
    """Where this run stands against a recorded release: the stage then and now, and the
    criteria that passed then and fail now (the summary's "since" lines)."""

    release: str
    before: tuple[str | None, int]  # (gate reached, stage) of the recorded release
    now: tuple[str | None, int]
    newly_failing: list[str]  # criterion keys that passed then and fail now
    partial: bool = False  # this run deselected criteria: its stage counts only what ran

    @property
    def change(self) -> int:
        """Stages up (positive) or down since the release; 0 for a partial run, whose stage
        is not comparable with a whole run's."""
        return 0 if self.partial else self.now[1] - self.before[1]

    def line(self) -> str:
        before, now = self.before[0] or "none", self.now[0] or "none"
        if self.partial:
            return (f"since {self.release}: {before}; this partial run reached {now} with what "
                    "it selected (stages not compared)")
        change = self.change
        if change == 0:
            moved = "same stage"
        else:
            steps = abs(change)
            moved = f"{'up' if change > 0 else 'down'} {steps} stage{'s' if steps != 1 else ''}"
        return f"since {self.release}: {before} -> {now}, {moved}"

    def failing_line(self, limit: int = 5) -> str | None:
        if not self.newly_failing:
            return None
        shown = ", ".join(self.newly_failing[:limit])
        more = len(self.newly_failing) - limit
        if more > 0:
            shown += f" and {more} more"
        return f"passed in {self.release}, failing now: {shown}"


def compare(current: Mapping[str, Any], previous: Mapping[str, Any]) -> ChangeSinceRelease:
    """How a report (or summary) stands against a recorded release."""
    then: dict[str, str] = {}
    for gate in previous.get("gates") or ():
        then.update(statuses_of(gate))
    newly_failing = []
    for gate in current.get("gates") or ():
        for key, status in statuses_of(gate).items():
            if status in NOT_PASSED and then.get(key) == "passed":
                newly_failing.append(key)
    return ChangeSinceRelease(
        release=str(previous.get("release")),
        before=(previous.get("reached"), count(previous.get("stage"))),
        now=(current.get("reached"), count(current.get("stage"))),
        newly_failing=newly_failing,
        partial=current.get("partial") is True,
    )


def series(entries: Sequence[Mapping[str, Any]], current: Mapping[str, Any] | None
           ) -> list[Mapping[str, Any]]:
    """Releases in recorded order, ending with ``current`` (which replaces its own release)."""
    if current is None:
        return list(entries)
    release = current.get("release")
    return [e for e in entries if e.get("release") != release] + [current]


def record_run(path: Path, report: Mapping[str, Any], label: str,
               known: History | None = None) -> tuple[list[str], str | None]:
    """``--funnel-record``: record a report; (notes for the terminal summary, the reason it
    could not be recorded or None).

    A partial run is not recorded: its stage counts only what was selected, and history
    would then show a slip that never happened.
    """
    if report.get("partial"):
        return [f"not recorded in {label}: partial run (criteria were deselected)"], None
    try:
        before = record(path, report, known)
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [], f"could not record {report.get('release')} in {label}: {reason}"
    replaced = any(e.get("release") == report.get("release") for e in before.entries)
    verb = "replaced" if replaced else "recorded"
    return [f"{verb} {report.get('release')} in {label}"], None

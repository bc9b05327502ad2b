"""The organization's funnel: many projects' histories summarized gate by gate.

Reads history files (``.mlfunnel/history.jsonl``), saved JSON reports, and folders holding
them, and answers a data leader's questions: how many projects passed each gate, how many
got from one gate to the next, how long they took, where they stop, and which have not
moved for months. Pure Python, standard library only: renderers read :class:`Portfolio`.

Reading is linear and cheap: a history line as this package writes it keeps its ``gates``
last, so only the head before them (project, release, date, funnel, stage) is decoded; a
line laid out otherwise is decoded whole and checked by :func:`history.parse_line`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pytest_mlfunnel.funnel import DEFAULT_FUNNEL
from pytest_mlfunnel.history import SCHEMA, parse_line

PORTFOLIO_SCHEMA = "mlfunnel-portfolio/1"
HISTORY_NAME = "history.jsonl"
HISTORY_FOLDER = ".mlfunnel"
DEFAULT_STALLED_AFTER_DAYS = 90
#: Folders never searched: version control, caches, dependencies.
_SKIPPED_FOLDERS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox",
                              ".nox", ".venv", "venv", ".mypy_cache", ".pytest_cache",
                              ".ruff_cache"})
_GATES_KEY = b',"gates":'
_DECODER = json.JSONDecoder()
_UTC = dt.timezone.utc
#: Notes per file before the rest are counted in one line (a foreign file is one problem).
MAX_NOTES_PER_FILE = 5


# ---------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Problem:
    """Something that could not be read; it is skipped and the rest is counted."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class Release(NamedTuple):
    """One recorded run of one project (a history line or a saved report)."""

    project: str
    release: str
    created: dt.datetime  # aware, UTC
    funnel: tuple[str, ...]
    stage: int
    source: str
    order: int  # reading order, to keep a stable sort between equal dates

    @property
    def day(self) -> dt.date:
        return self.created.date()


@dataclass
class Reading:
    releases: list[Release] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every file opened
    lines_skipped: int = 0


def parse_created(value: Any) -> dt.datetime | None:
    """An ISO date or timestamp as an aware UTC datetime (naive ones are taken as UTC)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    zulu = text.endswith(("Z", "z"))
    try:
        moment = dt.datetime.fromisoformat(text[:-1] if zulu else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_UTC)
    if zulu:  # "...+02:00Z" is not a timestamp
        return None
    return moment.astimezone(_UTC)


def _fast_head(raw: bytes) -> dict[str, Any] | None:
    """The fields before ``gates`` of a line written by this package, or None to decode all.

    ``"`` inside a JSON string is always escaped, so the first ``,"gates":`` is a key; a
    line cut short does not end with ``]}``. Anything unusual falls back to a full decode.
    """
    cut = raw.find(_GATES_KEY)
    if cut < 0 or not (raw.endswith(b"]}") or raw.rstrip().endswith(b"]}")):
        return None
    try:
        data = _DECODER.decode(raw[:cut].decode("utf-8") + "}")
    except (ValueError, RecursionError):  # also UnicodeDecodeError; parse_line says why
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    release, stage, funnel = data.get("release"), data.get("stage"), data.get("funnel")
    if (not isinstance(release, str) or not release or type(stage) is not int or stage < 0
            or not isinstance(funnel, list)):
        return None
    return data


def project_of_path(path: Path) -> str:
    """The folder name a file is named after: ``repo`` for ``repo/.mlfunnel/history.jsonl``."""
    folder = path.resolve().parent
    if folder.name == HISTORY_FOLDER:
        folder = folder.parent
    return folder.name or str(folder)


class Reader:
    """Collects releases from paths, noting every problem with the path it came from."""

    def __init__(self) -> None:
        self.reading = Reading()
        self._funnels: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._order = 0
        self._read: set[str] = set()  # real paths: a file named twice is read once

    def read(self, paths: Iterable[str | os.PathLike[str]]) -> Reading:
        for given in paths:
            path = Path(given)
            if path.is_dir():
                found = list(find_histories(path, self.reading.problems))
                if not found:
                    self.reading.problems.append(Problem(
                        str(path), f"no {HISTORY_FOLDER}/{HISTORY_NAME} found in this folder"))
                for history in found:
                    self.read_file(history)
            elif path.exists():
                self.read_file(path)
            else:
                self.reading.problems.append(Problem(str(path), "no such file or directory"))
        return self.reading

    def read_file(self, path: Path) -> None:
        label = str(path)
        real = os.path.realpath(path)
        if real in self._read:  # `repos` and `repos/churn`, or a link to a history read
            return
        self._read.add(real)
        try:
            if not path.is_file():
                raise IsADirectoryError(0, "not a regular file")
            blob = path.read_bytes()
        except OSError as exc:
            self.reading.problems.append(Problem(label, f"cannot read: {exc.strerror or exc}"))
            return
        self.reading.files.append(label)
        fallback = project_of_path(path)
        if path.suffix == ".json":
            self._read_report(label, blob, fallback)
        else:
            self._read_lines(label, blob, fallback)

    def _read_report(self, label: str, blob: bytes, fallback: str) -> None:
        entry, problem = parse_line(blob)
        if entry is None:
            self.reading.lines_skipped += 1
            what = (problem or "unreadable").replace("a history entry", "an mlfunnel report")
            self.reading.problems.append(Problem(label, what))
            return
        problem = self._add(entry, label, fallback)
        if problem is not None:
            self.reading.lines_skipped += 1
            self.reading.problems.append(Problem(label, problem))

    def _read_lines(self, label: str, blob: bytes, fallback: str) -> None:
        skipped = 0
        for number, raw in enumerate(blob.split(b"\n"), start=1):
            if not raw.strip():
                continue
            entry = _fast_head(raw)
            problem = None
            if entry is None:
                entry, problem = parse_line(raw.rstrip(b"\r"))
            if entry is not None:
                problem = self._add(entry, label, fallback)
            if problem is not None:
                skipped += 1
                if skipped <= MAX_NOTES_PER_FILE:
                    self.reading.problems.append(Problem(label, problem, number))
        if skipped > MAX_NOTES_PER_FILE:
            self.reading.problems.append(Problem(
                label, f"{skipped - MAX_NOTES_PER_FILE} more lines skipped"))
        self.reading.lines_skipped += skipped

    def _add(self, entry: Mapping[str, Any], label: str, fallback: str) -> str | None:
        created = parse_created(entry.get("created"))
        if created is None:
            return f"no valid 'created' date ({entry.get('created')!r})"
        listed = entry.get("funnel")
        key = tuple(listed) if isinstance(listed, list) else ()
        funnel = self._funnels.get(key)
        if funnel is None:
            if not all(isinstance(g, str) for g in key):
                return "not a history entry (no funnel)"
            funnel = self._funnels.setdefault(key, key)
        stage = entry.get("stage")
        if not isinstance(stage, int) or isinstance(stage, bool) or stage < 0:
            return "no stage"
        if stage > len(funnel):
            return f"stage {stage} is beyond its funnel of {len(funnel)} gates"
        name = entry.get("project")
        project = name.strip() if isinstance(name, str) and name.strip() else fallback
        self._order += 1
        self.reading.releases.append(Release(project, str(entry.get("release")), created,
                                             funnel, stage, label, self._order))
        return None


def find_histories(folder: Path, problems: list[Problem] | None = None) -> Iterator[Path]:
    """Every ``.mlfunnel/history.jsonl`` under ``folder``, in a stable order.

    A sub-folder that cannot be listed is added to ``problems`` and left out.
    """
    def unreadable(exc: OSError) -> None:
        if problems is not None:
            problems.append(Problem(str(exc.filename or folder),
                                    f"cannot read: {exc.strerror or exc}"))

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_FOLDERS)
        if os.path.basename(root) == HISTORY_FOLDER and HISTORY_NAME in files:
            yield Path(root) / HISTORY_NAME


def read_paths(paths: Iterable[str | os.PathLike[str]]) -> Reading:
    return Reader().read(paths)


# ---------------------------------------------------------------------- one project
@dataclass(frozen=True)
class TimelinePoint:
    """A release at which the project's stage changed (and the latest one)."""

    day: dt.date
    release: str
    stage: int


@dataclass
class ProjectSummary:
    name: str
    funnel: tuple[str, ...]
    stage: int
    since: dt.date  # the start of its current stay at this stage
    first_reached: dt.date  # the first time it reached at least this stage
    days_in_stage: int
    best_stage: int
    stalled: bool
    releases: int
    first_recorded: dt.date
    last_recorded: dt.date
    last_release: str
    sources: list[str]
    timeline: list[TimelinePoint]
    #: Days from first reaching gate i-1 to first passing gate i, where the history shows it.
    days_to_pass: dict[int, int] = field(default_factory=dict)

    def gate(self, stage: int) -> str | None:
        return self.funnel[stage - 1] if 0 < stage <= len(self.funnel) else None

    @property
    def reached(self) -> str | None:
        return self.gate(self.stage)

    @property
    def best(self) -> str | None:
        return self.gate(self.best_stage)

    @property
    def fell_back(self) -> bool:
        return self.best_stage > self.stage

    @property
    def through(self) -> bool:
        """Every gate passed: at the end of the funnel, not stuck in front of a gate."""
        return self.stage == len(self.funnel)

    @property
    def stopped_at(self) -> str | None:
        """The gate it has not passed yet (None when through)."""
        return self.funnel[self.stage] if self.stage < len(self.funnel) else None


def _stage_in(release: Release, funnel: tuple[str, ...]) -> int:
    """A release's stage counted in ``funnel`` (its project's latest), mapped by gate name."""
    if release.funnel is funnel or release.funnel == funnel or release.stage == 0:
        return release.stage
    reached = release.funnel[release.stage - 1]
    if reached in funnel:
        return funnel.index(reached) + 1
    return min(release.stage, len(funnel))


def summarize_project(name: str, releases: Sequence[Release], as_of: dt.date,
                      stalled_after_days: int) -> tuple[ProjectSummary, str | None]:
    """A project's figures from its releases (sorted by date); a note when its funnel changed."""
    latest = releases[-1]
    funnel = latest.funnel
    note = None
    changed = next((r for r in reversed(releases) if r.funnel != funnel), None)
    if changed is not None:
        note = (f"{name}: its funnel changed after {changed.release} ({', '.join(changed.funnel)}"
                f" -> {', '.join(funnel)}); earlier stages are counted by gate name")
    stages = [_stage_in(r, funnel) for r in releases]
    days = [r.day for r in releases]
    stage = stages[-1]
    start = len(stages) - 1
    while start > 0 and stages[start - 1] == stage:
        start -= 1
    first_at_least: dict[int, int] = {0: 0}
    best = 0
    timeline: list[TimelinePoint] = []
    for k, value in enumerate(stages):
        if value > best:
            for level in range(best + 1, value + 1):
                first_at_least[level] = k
            best = value
        if k == 0 or value != stages[k - 1]:
            timeline.append(TimelinePoint(days[k], releases[k].release, value))
    if timeline[-1].release != latest.release:
        timeline.append(TimelinePoint(days[-1], latest.release, stage))
    days_to_pass: dict[int, int] = {}
    for level in range(1, best + 1):
        before = first_at_least[level - 1]
        if stages[before] < level:  # the history shows the wait, not only its end
            days_to_pass[level] = (days[first_at_least[level]] - days[before]).days
    since = days[start]
    days_in_stage = (as_of - since).days
    summary = ProjectSummary(
        name=name, funnel=funnel, stage=stage, since=since,
        first_reached=days[first_at_least[stage]], days_in_stage=days_in_stage,
        best_stage=best, stalled=stage < len(funnel) and days_in_stage > stalled_after_days,
        releases=len(releases), first_recorded=days[0], last_recorded=days[-1],
        last_release=latest.release, sources=sorted({r.source for r in releases}),
        timeline=timeline, days_to_pass=days_to_pass)
    return summary, note


# ---------------------------------------------------------------------- the portfolio
@dataclass
class GateStep:
    index: int  # 1-based position in the funnel
    gate: str
    reached: int  # projects whose latest stage is at least this gate
    previous: int  # ... at least the gate before (all projects for the first gate)
    ever_reached: int  # projects that reached it at some point
    stopped_here: int  # projects that passed the gate before, not this one
    stalled_here: list[str]  # ... of which stalled (names, longest stay first)
    median_days: float | None  # median days from the gate before to passing this one
    measured: int  # how many projects' histories show that wait

    @property
    def conversion(self) -> float | None:
        return self.reached / self.previous if self.previous else None


@dataclass
class FunnelGroup:
    gates: tuple[str, ...]
    projects: list[ProjectSummary]
    steps: list[GateStep]

    @property
    def through(self) -> int:
        return sum(p.through for p in self.projects)

    @property
    def default(self) -> bool:
        return self.gates == DEFAULT_FUNNEL


@dataclass
class Portfolio:
    as_of: dt.date
    stalled_after_days: int
    groups: list[FunnelGroup]
    problems: list[Problem]
    mismatches: list[str]
    files: int
    entries: int  # releases read (before merging)
    lines_skipped: int
    later_than_as_of: int = 0  # releases recorded after --as-of, left out

    @property
    def projects(self) -> list[ProjectSummary]:
        return [p for group in self.groups for p in group.projects]

    def to_dict(self) -> dict[str, Any]:
        return portfolio_dict(self)


def _median(values: Sequence[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def build_group(gates: tuple[str, ...], projects: list[ProjectSummary]) -> FunnelGroup:
    n = len(gates)
    at_least = [0] * (n + 2)
    ever = [0] * (n + 2)
    at = [0] * (n + 1)
    waits: list[list[int]] = [[] for _ in range(n + 1)]
    stalled: list[list[ProjectSummary]] = [[] for _ in range(n + 1)]
    for project in projects:
        at[project.stage] += 1
        at_least[project.stage] += 1
        ever[project.best_stage] += 1
        for level, days in project.days_to_pass.items():
            waits[level].append(days)
        if project.stalled:
            stalled[project.stage].append(project)
    for level in range(n - 1, -1, -1):  # counts at a stage -> counts at least at it
        at_least[level] += at_least[level + 1]
        ever[level] += ever[level + 1]
    steps = []
    for level in range(1, n + 1):
        stuck = sorted(stalled[level - 1], key=lambda p: (-p.days_in_stage, p.name))
        steps.append(GateStep(
            index=level, gate=gates[level - 1], reached=at_least[level],
            previous=at_least[level - 1], ever_reached=ever[level],
            stopped_here=at[level - 1], stalled_here=[p.name for p in stuck],
            median_days=_median(waits[level]), measured=len(waits[level])))
    ordered = sorted(projects, key=lambda p: (p.stage, -p.days_in_stage, p.name))
    return FunnelGroup(gates, ordered, steps)


def summarize(reading: Reading, as_of: dt.date,
              stalled_after_days: int = DEFAULT_STALLED_AFTER_DAYS) -> Portfolio:
    """The portfolio as it stood on ``as_of``: releases recorded later are left out."""
    by_project: dict[str, dict[str, Release]] = {}
    later = 0
    for release in reading.releases:
        if release.day > as_of:
            later += 1
            continue
        releases = by_project.setdefault(release.project, {})
        kept = releases.get(release.release)
        # One release seen twice (two copies of a history, a re-record): the latest wins.
        if kept is None or (release.created, release.order) > (kept.created, kept.order):
            releases[release.release] = release
    mismatches: list[str] = []
    by_funnel: dict[tuple[str, ...], list[ProjectSummary]] = {}
    for name in sorted(by_project):
        ordered = sorted(by_project[name].values(), key=lambda r: (r.created, r.order))
        summary, note = summarize_project(name, ordered, as_of, stalled_after_days)
        if note:
            mismatches.append(note)
        by_funnel.setdefault(summary.funnel, []).append(summary)
    # The main funnel first: the most projects, the default funnel on a tie.
    order = sorted(by_funnel, key=lambda g: (-len(by_funnel[g]), g != DEFAULT_FUNNEL, g))
    groups = [build_group(gates, by_funnel[gates]) for gates in order]
    if len(groups) > 1:
        main = groups[0]
        for group in groups[1:]:
            names = ", ".join(p.name for p in group.projects[:10])
            if len(group.projects) > 10:
                names += f" and {len(group.projects) - 10} more"
            mismatches.append(
                f"{len(group.projects)} project{'s' if len(group.projects) != 1 else ''} "
                f"use{'s' if len(group.projects) == 1 else ''} another funnel than "
                f"{', '.join(main.gates) or '(none)'}: {', '.join(group.gates) or '(none)'} "
                f"({names}); counted in a funnel of their own")
    return Portfolio(as_of=as_of, stalled_after_days=stalled_after_days, groups=groups,
                     problems=list(reading.problems), mismatches=mismatches,
                     files=len(reading.files), entries=len(reading.releases),
                     lines_skipped=reading.lines_skipped, later_than_as_of=later)


# ---------------------------------------------------------------------- JSON
def _iso(day: dt.date) -> str:
    return day.isoformat()


def project_dict(project: ProjectSummary, group: int) -> dict[str, Any]:
    return {
        "project": project.name,
        "funnel_group": group,
        "stage": project.stage,
        "reached": project.reached,
        "stopped_at": project.stopped_at,
        "since": _iso(project.since),
        "first_reached": _iso(project.first_reached),
        "days_in_stage": project.days_in_stage,
        "best_stage": project.best_stage,
        "best": project.best,
        "fell_back": project.fell_back,
        "stalled": project.stalled,
        "through": project.through,
        "releases": project.releases,
        "first_recorded": _iso(project.first_recorded),
        "last_recorded": _iso(project.last_recorded),
        "last_release": project.last_release,
        "days_to_pass": {project.funnel[level - 1]: days
                         for level, days in sorted(project.days_to_pass.items())},
        "timeline": [{"date": _iso(p.day), "release": p.release, "stage": p.stage}
                     for p in project.timeline],
        "sources": project.sources,
    }


def portfolio_dict(portfolio: Portfolio) -> dict[str, Any]:
    groups = []
    projects = []
    for index, group in enumerate(portfolio.groups):
        groups.append({
            "gates": list(group.gates),
            "default": group.default,
            "projects": len(group.projects),
            "not_started": group.steps[0].stopped_here if group.steps else len(group.projects),
            "through": group.through,
            "steps": [{
                "index": step.index,
                "gate": step.gate,
                "reached": step.reached,
                "from": step.previous,
                "conversion": None if step.conversion is None else round(step.conversion, 4),
                "ever_reached": step.ever_reached,
                "stopped_here": step.stopped_here,
                "stalled_here": step.stalled_here,
                "median_days_to_pass": step.median_days,
                "measured": step.measured,
            } for step in group.steps],
        })
        projects += [project_dict(p, index) for p in group.projects]
    return {
        "schema": PORTFOLIO_SCHEMA,
        "as_of": _iso(portfolio.as_of),
        "stalled_after_days": portfolio.stalled_after_days,
        "projects_total": len(projects),
        "stalled_total": sum(p["stalled"] for p in projects),
        "funnels": groups,
        "projects": projects,
        "mismatches": list(portfolio.mismatches),
        "problems": [{"path": p.path, "line": p.line, "message": p.message}
                     for p in portfolio.problems],
        "read": {"files": portfolio.files, "releases": portfolio.entries,
                 "skipped": portfolio.lines_skipped,
                 "after_as_of": portfolio.later_than_as_of},
    }


# ---------------------------------------------------------------------- options
_UNITS = {"d": 1, "day": 1, "days": 1, "w": 7, "week": 7, "weeks": 7}


def parse_days(text: str) -> int:
    """``90d``, ``90 days``, ``12w``, ``90`` -> whole days; ValueError with the reason."""
    cleaned = text.strip().lower()
    number = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = cleaned[len(number):].strip() or "d"
    if unit not in _UNITS:
        raise ValueError(f"expected a number of days or weeks like 90d or 12w, got {text!r}")
    if not number.isdigit() or len(number) > 6:
        raise ValueError(f"expected a number of days or weeks like 90d or 12w, got {text!r}")
    return int(number) * _UNITS[unit]


def parse_as_of(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected a date like 2026-11-29, got {text!r}") from None

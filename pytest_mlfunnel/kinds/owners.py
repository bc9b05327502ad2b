"""``owners``: the bus factor -- distinct owners named in CODEOWNERS (attested), or the
authors of recent commits counted from git (measured)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from pytest_mlfunnel.expectations import Expectation, format_duration
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    Duration,
    EvalContext,
    ExpectationField,
    PlanContext,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.release import git_env
from pytest_mlfunnel.sources.file_types import refuse_special_files

#: the longest a ``git log`` may take
GIT_TIMEOUT_S = 60

#: Where the forges look, first found wins: GitHub reads .github/, the root, docs/; GitLab the
#: root, docs/, .gitlab/ (and never .github/)
STANDARD_LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS",
                      ".gitlab/CODEOWNERS")
#: a comment runs from the first "#" not escaped (docs/\#notes.md is a path)
_COMMENT_RE = re.compile(r"(?<!\\)#.*$")
_TOKEN_SEP_RE = re.compile(r"(?<!\\)\s+")
_OWNER_RE = re.compile(r"^(@[\w.\-/]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")


class GitOwners(BaseModel):
    """``owners = { git = ">= 2", since = "180 days", paths = [...], truck_factor = ">= 2" }``"""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    git: ExpectationField
    since: Duration = 180 * 86400.0
    paths: list[str] = Field(default_factory=list)
    truck_factor: ExpectationField | None = None

    @field_validator("since", mode="wrap")
    @classmethod
    def _positive(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> float:
        seconds: float = handler(value)
        if seconds <= 0:  # no commit is ever in an empty window: a check that cannot pass
            raise ValueError("the window of commits must be longer than zero, got "
                             f"{value if isinstance(value, str) else format_duration(seconds)}")
        return seconds


def _owners_form(value: Any) -> str:
    # the tags start "function-" so config errors leave them out of the key path
    return "function-git" if isinstance(value, dict | GitOwners) else "function-expectation"


class OwnersConfig(CheckConfig):
    owners: Annotated[
        Annotated[ExpectationField, Tag("function-expectation")]
        | Annotated[GitOwners, Tag("function-git")],
        Discriminator(_owners_form)]
    file: str | None = None


def parse_owners(text: str) -> list[str]:
    """Distinct owners (``@user``, ``@org/team``, e-mails) in order of first appearance."""
    owners: dict[str, None] = {}
    for raw in text.splitlines():
        line = _COMMENT_RE.sub("", raw).strip()
        if not line:
            continue
        if line.startswith("[") or line.startswith("^["):  # GitLab section header
            line = re.sub(r"^\^?\[[^\]]*\](\[\d+\])?", "", line).strip()
            tokens = _TOKEN_SEP_RE.split(line)
        elif line.startswith("!"):  # GitHub has no negation and skips the line: no owners
            continue
        else:
            tokens = _TOKEN_SEP_RE.split(line)[1:]  # the path may hold "\ " (a space)
        for token in tokens:
            if _OWNER_RE.match(token):
                owners.setdefault(token.lower(), None)
    return list(owners)


def find_codeowners(rootdir: Path, given: str | None) -> Path:
    if given is not None:
        path = rootdir / given
        refuse_special_files([path], given, rootdir)
        if not path.is_file():
            raise CriterionError(f"{given}: owners file not found")
        return path
    for location in STANDARD_LOCATIONS:
        refuse_special_files([rootdir / location], location, rootdir)
        if (rootdir / location).is_file():
            return rootdir / location
    raise CriterionError(f"no CODEOWNERS file (looked in {', '.join(STANDARD_LOCATIONS)})")


class OwnersKind(CheckKind[OwnersConfig]):
    key = "owners"
    evidence = "attested"
    config_model = OwnersConfig

    def plan(self, check: OwnersConfig, ctx: PlanContext) -> list[Criterion]:
        if isinstance(check.owners, GitOwners):
            return git_criteria(check.owners)
        expectation: Expectation = check.owners

        def evaluate(ev: EvalContext) -> Outcome:
            try:
                path = find_codeowners(ev.rootdir, check.file)
            except CriterionError as exc:
                return Outcome.failed(f"{exc}: 0 owners, expected {expectation.text}", 0,
                                      expectation.text)
            owners = parse_owners(path.read_text(encoding="utf-8", errors="replace"))
            where = path.relative_to(ev.rootdir).as_posix()
            named = ", ".join(owners[:8]) + (" …" if len(owners) > 8 else "")
            words = (f"{len(owners)} distinct owner{'s' if len(owners) != 1 else ''} in "
                     f"{where} ({named or 'none'}), expected {expectation.text}")
            if expectation.holds(len(owners)):
                return Outcome.passed(len(owners), expectation.text, words, owners=owners)
            return Outcome.failed(words, len(owners), expectation.text, owners=owners)
        return [Criterion("bus-factor", evaluate, expected=expectation.text)]


# --------------------------------------------------------------------------- from git
def run_git(rootdir: Path, *args: str, allowed: tuple[int, ...] = ()) -> str:
    """stdout of a git command in rootdir; a CriterionError saying why it could not run (an
    exit status in ``allowed`` is an answer, not a failure)."""
    try:
        done = subprocess.run(["git", *args], cwd=rootdir, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=GIT_TIMEOUT_S,
                              check=False, env=git_env(), stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CriterionError("git is not installed: owners counted from git need it") from None
    except subprocess.TimeoutExpired:
        raise CriterionError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s") from None
    except OSError as exc:  # found but not runnable: no execute permission, a bad binary
        raise CriterionError(f"git could not be run ({exc.strerror or exc}): owners counted "
                             "from git need it") from None
    if done.returncode != 0 and done.returncode not in allowed:
        first = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
        if "not a git repository" in first:
            raise CriterionError(f"{rootdir} is not in a git repository: owners counted from "
                                 "git need the project's history")
        raise CriterionError(f"git {args[0]}: {first}")
    return done.stdout


@dataclass
class GitHistory:
    """What ``git log`` says of the project's commits."""

    #: email -> [name, commits]
    authors: dict[str, list[Any]] = field(default_factory=dict)
    #: the project's folder in the repository ("ml/churn/"), "" at its top
    folder: str = ""
    #: the current branch has no commit yet
    unborn: bool = False


def git_history(rootdir: Path, since: dt.datetime, paths: list[str]) -> GitHistory:
    """The authors of the commits since ``since`` touching ``paths`` (relative to rootdir,
    default: rootdir's folder) and where rootdir sits in the repository."""
    shallow, _, folder = run_git(rootdir, "rev-parse", "--is-shallow-repository",
                                 "--show-prefix").partition("\n")
    if shallow.strip() == "true":
        raise CriterionError(
            "the repository is a shallow clone, so its history cannot say who committed: "
            "fetch the full history (GitHub Actions: actions/checkout with fetch-depth: 0; "
            "GitLab: GIT_DEPTH: 0)")
    history = GitHistory(folder=folder.strip())
    if not run_git(rootdir, "rev-parse", "--verify", "-q", "HEAD", allowed=(1,)).strip():
        history.unborn = True
        return history
    for path in paths:  # before the log: a misspelt path would have it count nobody
        _known_path(rootdir, path)
    history.authors = commit_authors(rootdir, since, paths)
    return history


def _known_path(rootdir: Path, path: str) -> None:
    """A plain path (no glob, no ``:(magic)``) must be in the working tree or the history: a
    misspelt one would count no author at all, and fail for the wrong reason."""
    if path.startswith(":") or any(c in path for c in "*?[") or (rootdir / path).exists():
        return
    if not run_git(rootdir, "log", "-1", "--format=%H", "--", path).strip():
        raise CriterionError(f"paths: {path!r} is in neither the working tree nor the history "
                             "of the repository")


def commit_authors(rootdir: Path, since: dt.datetime, paths: list[str]) -> dict[str, list[Any]]:
    """email -> [name, commits] of the commits since ``since`` touching ``paths``, with
    names and e-mails mapped through .mailmap; from one ``git log``."""
    # Dates are filtered here, not with --since: git stops walking at the first older commit,
    # and a commit authored long ago can sit above recent ones (a rebase, a late merge).
    out = run_git(rootdir, "log", "--format=%at%x00%aE%x00%aN", "--no-merges", "--",
                  *(paths or ["."]))
    cutoff = since.timestamp()
    authors: dict[str, list[Any]] = {}
    for line in out.splitlines():
        stamp, _, rest = line.partition("\0")
        email, _, name = rest.partition("\0")
        if not stamp.strip().isdigit() or int(stamp) < cutoff:
            continue
        who = authors.setdefault(email.strip().lower() or name.strip(), [name.strip(), 0])
        who[1] += 1
    return authors


def _named(found: dict[str, list[Any]]) -> list[tuple[str, int]]:
    """(name, commits), the most active first; a name two authors share gets each one's
    e-mail, so neither the message nor the report merges two people."""
    names = [who[0] for who in found.values()]
    shown = [(f"{who[0]} <{email}>" if names.count(who[0]) > 1 else who[0], who[1])
             for email, who in found.items()]
    return sorted(shown, key=lambda who: (-who[1], who[0]))


def truck_factor(counts: list[int]) -> int:
    """The fewest authors whose commits cover at least half of all commits."""
    total = sum(counts)
    covered = 0
    for i, n in enumerate(sorted(counts, reverse=True), start=1):
        covered += n
        if 2 * covered >= total:
            return i
    return 0


def git_criteria(rule: GitOwners) -> list[Criterion]:
    window = f"in the last {format_duration(rule.since)}"

    def history(ev: EvalContext) -> GitHistory:
        found: GitHistory | CriterionError = ev.shared_value(
            ("owners-git", str(ev.rootdir), rule.since, tuple(rule.paths),
             ev.now.replace(second=0, microsecond=0)), lambda: _history_or_error(ev, rule))
        if isinstance(found, CriterionError):
            raise CriterionError(str(found))
        return found

    def authors(ev: EvalContext) -> dict[str, list[Any]]:
        return history(ev).authors

    def where(ev: EvalContext) -> str:
        """What the commits were counted in: the paths, else the project's folder."""
        if rule.paths:
            return ", ".join(rule.paths)
        return history(ev).folder or "the repository"

    def count(ev: EvalContext) -> Outcome:
        found = authors(ev)
        unborn = " (the current branch has no commits yet)" if history(ev).unborn else ""
        ranked = _named(found)
        names = ", ".join(f"{name} ({n})" for name, n in ranked[:8]) + (
            " …" if len(ranked) > 8 else "")
        commits = sum(n for _, n in ranked)
        words = (f"{len(found)} distinct author{'s' if len(found) != 1 else ''} of {commits} "
                 f"commit{'s' if commits != 1 else ''} to {where(ev)} {window}"
                 f"{f' ({names})' if names else ''}{unborn}, expected {rule.git.text}")
        commits_by = {name: n for name, n in ranked}
        if rule.git.holds(len(found)):
            return Outcome.passed(len(found), rule.git.text, words, authors=commits_by)
        return Outcome.failed(words, len(found), rule.git.text, authors=commits_by)

    criteria = [Criterion("git-authors", count, expected=rule.git.text, evidence="measured")]
    expectation = rule.truck_factor
    if expectation is not None:
        def truck(ev: EvalContext) -> Outcome:
            ranked = _named(authors(ev))
            commits = sum(n for _, n in ranked)
            factor = truck_factor([n for _, n in ranked])
            top = ranked[:factor]
            share = sum(n for _, n in top) / commits if commits else 0.0
            who = ", ".join(name for name, _ in top) or "nobody"
            words = (f"truck factor {factor}: {who} made {sum(n for _, n in top)} of {commits} "
                     f"commits ({share:.0%}) to {where(ev)} {window}, expected {expectation.text}")
            if expectation.holds(factor):
                return Outcome.passed(factor, expectation.text, words)
            return Outcome.failed(words, factor, expectation.text)
        criteria.append(Criterion("truck-factor", truck, expected=expectation.text,
                                  evidence="measured"))
    return criteria


def _history_or_error(ev: EvalContext, rule: GitOwners) -> GitHistory | CriterionError:
    try:
        since = ev.now - dt.timedelta(seconds=rule.since)
        return git_history(ev.rootdir, since, rule.paths)
    except CriterionError as exc:
        return exc

"""``coverage``: test coverage from coverage.py's data file or a Cobertura XML report.

    [tool.mlfunnel.model.tests]
    coverage = ">= 80%"            # the total coverage.py reports (lines, plus branches
    branch = ">= 70%"              #   where measured); optional: branches alone
    data_file = ".coverage"        # or "coverage.xml" (Cobertura, e.g. from another tool)
    include = ["src/*"]
    omit = ["*/tests/*"]

The data is written earlier in the pipeline (``coverage run -m pytest`` or ``pytest --cov``);
the funnel only reads it, through coverage.py's own API, so the number agrees with what
``coverage report`` prints for the same data, include/omit and ``[tool.coverage]`` settings.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import tempfile
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from pytest_mlfunnel.expectations import Expectation, format_value
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    EvalContext,
    Evaluate,
    ExpectationField,
    PlanContext,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.sources.file_types import refuse_special_files

HOW_TO_PRODUCE = ("produce it earlier in the pipeline: 'coverage run -m pytest' (add --branch "
                  "for branches) or 'pytest --cov', then 'coverage xml' for a Cobertura report")
_CONDITION_RE = re.compile(r"\((\d+)/(\d+)\)")
#: In the shared store when pytest-cov measures this run: its data file (an absolute path).
SAME_RUN_KEY = ("coverage", "pytest-cov data file")
#: How many measured files a message names
MISSING_SHOWN = 5


def share_expectation(value: Expectation, key: str) -> Expectation:
    """``">= 80%"`` or ``">= 0.8"``; ``">= 80"`` is almost surely meant as a percentage."""
    if value.unit == "duration" or value.uses_baseline:
        raise ValueError(f"{key}: expected a share such as '>= 80%', got {value.text!r}")
    if value.unit == "number" and not 0 <= value.value <= 1:
        raise ValueError(f"{key}: coverage is a share: write '{value.op} "
                         f"{format_value(value.value)}%' or '{value.op} "
                         f"{format_value(value.value / 100)}', not {value.text!r}")
    return value


class CoverageConfig(CheckConfig):
    coverage: ExpectationField
    branch: ExpectationField | None = None
    data_file: str = ".coverage"
    include: list[str] = Field(default_factory=list)
    omit: list[str] = Field(default_factory=list)

    @field_validator("coverage")
    @classmethod
    def _total_is_a_share(cls, value: Expectation) -> Expectation:
        return share_expectation(value, "coverage")

    @field_validator("branch")
    @classmethod
    def _branch_is_a_share(cls, value: Expectation | None) -> Expectation | None:
        return share_expectation(value, "branch") if value is not None else None

    @field_validator("include", "omit", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("data_file")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give the path of coverage.py's data file or a Cobertura XML")
        return value.strip()


@dataclass
class Totals:
    """Coverage counts; ``branches`` is None when branches were not measured."""

    statements: int
    covered_lines: int
    branches: int | None
    covered_branches: int | None
    files: int
    source: str  # how the numbers were read, for messages
    #: measured files not found here, so left out of the figures (relative to the rootdir)
    missing: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        """coverage.py's figure: covered lines and branches over all lines and branches."""
        branches = self.branches or 0
        covered = self.covered_branches or 0
        denominator = self.statements + branches
        return (self.covered_lines + covered) / denominator if denominator else 1.0

    @property
    def line_rate(self) -> float:
        return self.covered_lines / self.statements if self.statements else 1.0

    @property
    def branch_rate(self) -> float | None:
        if self.branches is None or self.covered_branches is None:
            return None
        return self.covered_branches / self.branches if self.branches else 1.0

    def breakdown(self) -> str:
        text = f"lines {self.covered_lines}/{self.statements}"
        if self.branches is not None:
            text += f", branches {self.covered_branches}/{self.branches}"
        text = f"{text} in {self.files} files"
        if self.missing:
            few = ", ".join(self.missing[:MISSING_SHOWN]) + (
                f" and {len(self.missing) - MISSING_SHOWN} more"
                if len(self.missing) > MISSING_SHOWN else "")
            text += (f"; {len(self.missing)} measured file is not here and is left out: {few}"
                     if len(self.missing) == 1 else f"; {len(self.missing)} measured files "
                     f"are not here and are left out: {few}")
        return text

    def as_extra(self) -> dict[str, Any]:
        return {"statements": self.statements, "covered_lines": self.covered_lines,
                "branches": self.branches, "covered_branches": self.covered_branches,
                "files": self.files, "line_rate": self.line_rate,
                "branch_rate": self.branch_rate, "missing_files": list(self.missing)}


def absolute_patterns(patterns: list[str], rootdir: Path) -> list[str]:
    """coverage.py anchors relative patterns at the current directory; ours mean the rootdir."""
    return [p if p.startswith("*") or os.path.isabs(p) else str(rootdir / p) for p in patterns]


def how_to_produce(path: Path, same_run: str | None, rootdir: Path) -> str:
    """Advice for a missing or empty data file; not 'pytest --cov' to who just ran it."""
    if same_run is None:
        return HOW_TO_PRODUCE
    if str(path.resolve()) == same_run:
        return ("pytest-cov measured no file in this run: does --cov name a package the tests "
                "import (e.g. --cov=mypackage)?")
    target = Path(same_run)
    shown = target.relative_to(rootdir.resolve()) if target.is_relative_to(
        rootdir.resolve()) else target
    return (f"this run's pytest-cov data goes to {shown.as_posix()}: write data_file = "
            f"\"{shown.as_posix()}\" to judge this run, or produce this file earlier in the "
            "pipeline")


def read_totals(check: CoverageConfig, rootdir: Path, same_run: str | None = None) -> Totals:
    """The totals of the check's data file; ``same_run``: pytest-cov's file in this run."""
    path = Path(check.data_file).expanduser()
    path = path if path.is_absolute() else rootdir / path
    how = how_to_produce(path, same_run, rootdir)
    refuse_special_files([path], check.data_file, rootdir)
    if not path.is_file():
        parallel = sorted(path.parent.glob(path.name + ".*")) if path.parent.is_dir() else []
        if parallel and path.suffix != ".xml":
            raise CriterionError(f"{check.data_file}: not found, but {len(parallel)} parallel "
                                 f"data files are ({parallel[0].name} ...): run 'coverage "
                                 "combine' first")
        raise CriterionError(f"{check.data_file}: no coverage data (expected at {path}); "
                             f"{how}")
    include = absolute_patterns(check.include, rootdir)
    omit = absolute_patterns(check.omit, rootdir)
    if path.suffix.lower() == ".xml":
        return read_cobertura(path, check.data_file, include, omit, rootdir, how)
    return read_coverage_data(path, check.data_file, include, omit, rootdir, how,
                              written=(check.include, check.omit))


def _config_file(rootdir: Path) -> str | bool:
    """The project's own coverage settings (exclusions, omit), as ``coverage report`` uses."""
    for name in (".coveragerc", "setup.cfg", "tox.ini", "pyproject.toml"):
        candidate = rootdir / name
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if name == ".coveragerc" or re.search(r"^\[(tool[.:])?coverage[.:]", text,
                                                  re.MULTILINE):
                return str(candidate)
    return False


def read_coverage_data(path: Path, label: str, include: list[str], omit: list[str],
                       rootdir: Path, how: str = HOW_TO_PRODUCE,
                       written: tuple[list[str], list[str]] | None = None) -> Totals:
    """Totals as ``coverage report`` gives them in the rootdir; ``written``: include and
    omit as the user wrote them, for messages."""
    import coverage
    from coverage.exceptions import CoverageException, NoDataError

    measured: list[str] = []
    # coverage.py reads relative paths (relative_files = true, a relative [run] source)
    # from the working directory: pytest may run from another one
    with contextlib.chdir(rootdir):
        try:
            cov = coverage.Coverage(data_file=str(path), config_file=_config_file(rootdir))
            cov.load()
            data = cov.get_data()
            measured = sorted(data.measured_files())
            if not measured:
                raise CriterionError(f"{label}: the data file holds no measured files; {how}")
            with tempfile.TemporaryDirectory(prefix="mlfunnel-coverage-") as scratch, \
                    warnings.catch_warnings():
                # files measured elsewhere are skipped (ignore_errors); we say so ourselves
                warnings.simplefilter("ignore")
                report = Path(scratch) / "coverage.json"
                cov.json_report(outfile=str(report), ignore_errors=True,
                                include=include or None, omit=omit or None)
                document = json.loads(report.read_text(encoding="utf-8"))
        except CriterionError:
            raise
        except NoDataError:
            document = {}
        except CoverageException as exc:
            raise CriterionError(f"{label}: coverage.py cannot read it: {exc}") from None
        wanted = [name for name in measured
                  if (not include or any(fnmatch.fnmatch(os.path.abspath(name), p)
                                         for p in include))
                  and not any(fnmatch.fnmatch(os.path.abspath(name), p) for p in omit)]
        missing = [_relative(name, rootdir) for name in wanted if not os.path.exists(name)]
    if not document.get("files"):
        if measured and not wanted:
            users_include, users_omit = written or (include, omit)
            few = ", ".join(_relative(name, rootdir) for name in measured[:MISSING_SHOWN])
            more = (f" and {len(measured) - MISSING_SHOWN} more"
                    if len(measured) > MISSING_SHOWN else "")
            raise CriterionError(f"{label}: no measured file matches include={users_include} "
                                 f"omit={users_omit} (measured: {few}{more})")
        where = f" matching include={include}" if include else ""
        raise CriterionError(
            f"{label}: no measured file{where} can be read here (recorded paths such as "
            f"{measured[0]} -- was the data written in another checkout? measure in this "
            "one, or give a Cobertura XML)")
    totals = document.get("totals", {})
    has_arcs = bool(data.has_arcs())
    return Totals(
        statements=int(totals.get("num_statements", 0)),
        covered_lines=int(totals.get("covered_lines", 0)),
        branches=int(totals.get("num_branches", 0)) if has_arcs else None,
        covered_branches=int(totals.get("covered_branches", 0)) if has_arcs else None,
        files=len(document.get("files", {})),
        source=label,
        missing=tuple(missing),
    )


def _relative(name: str, rootdir: Path) -> str:
    """A measured path as the user knows it: relative to the rootdir when inside it."""
    full = Path(os.path.abspath(name))
    return full.relative_to(rootdir).as_posix() if full.is_relative_to(rootdir) else name


def _number(element: ET.Element, name: str, label: str, whole: bool = True,
            of: str = "") -> float:
    """An attribute of the report read as a number, or an error naming it and its element."""
    text = element.get(name, "0") or "0"
    try:
        return int(text) if whole else float(text)
    except ValueError:
        where = f" of {of}" if of else ""
        raise CriterionError(f"{label}: {name}={text[:40]!r} on <{element.tag}>{where} is not "
                             f"a {'whole ' if whole else ''}number") from None


def read_cobertura(path: Path, label: str, include: list[str], omit: list[str],
                   rootdir: Path, how: str = HOW_TO_PRODUCE) -> Totals:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise CriterionError(f"{label}: not valid XML ({exc})") from None
    except OSError as exc:
        raise CriterionError(f"{label}: cannot read: {exc.strerror or exc}") from None
    if root.tag != "coverage":
        raise CriterionError(f"{label}: not a Cobertura coverage report (root element "
                             f"<{root.tag}>, expected <coverage>)")
    classes = root.findall(".//class")
    measured_branches = any(line.get("branch") == "true" for line in root.iter("line")) or (
        _number(root, "branch-rate", label, whole=False) > 0)
    if not include and not omit and root.get("lines-valid") is not None:
        statements = int(_number(root, "lines-valid", label))
        if not classes and not statements:  # as a data file with no measured file
            raise CriterionError(f"{label}: the report holds no measured files; {how}")
        return Totals(
            statements=statements,
            covered_lines=int(_number(root, "lines-covered", label)),
            branches=int(_number(root, "branches-valid", label)) if measured_branches else None,
            covered_branches=(int(_number(root, "branches-covered", label))
                              if measured_branches else None),
            files=len({c.get("filename") for c in classes}), source=label)
    sources = [Path(s.text.strip()) for s in root.iter("source") if s.text and s.text.strip()]
    statements = covered = branches = covered_branches = 0
    files: set[str] = set()
    for cls in classes:
        filename = cls.get("filename") or ""
        candidates = [str(base / filename) for base in sources] + [str(rootdir / filename),
                                                                 filename]
        if include and not any(fnmatch.fnmatch(c, p) for c in candidates for p in include):
            continue
        if any(fnmatch.fnmatch(c, p) for c in candidates for p in omit):
            continue
        files.add(filename)
        for line in cls.iter("line"):
            statements += 1
            covered += _number(line, "hits", label, of=filename) > 0
            condition = _CONDITION_RE.search(line.get("condition-coverage", ""))
            if condition:
                covered_branches += int(condition.group(1))
                branches += int(condition.group(2))
    if not files:
        if not classes:
            raise CriterionError(f"{label}: the report holds no measured files; {how}")
        raise CriterionError(f"{label}: no file in the report matches include={include} "
                             f"omit={omit}")
    return Totals(statements, covered, branches if measured_branches else None,
                  covered_branches if measured_branches else None, len(files), label)


class CoverageKind(CheckKind[CoverageConfig]):
    key = "coverage"
    evidence = "measured"
    config_model = CoverageConfig

    def plan(self, check: CoverageConfig, ctx: PlanContext) -> list[Criterion]:
        criteria = [Criterion("coverage", self._total(check), expected=check.coverage.text)]
        if check.branch is not None:
            criteria.append(Criterion("branch", self._branch(check, check.branch),
                                      expected=check.branch.text))
        return criteria

    @staticmethod
    def _totals(check: CoverageConfig, ctx: EvalContext) -> Totals:
        found = ctx.per_check(lambda: _read_or_message(
            check, ctx.rootdir, ctx.shared.get(SAME_RUN_KEY)))
        if isinstance(found, str):
            raise CriterionError(found)
        assert isinstance(found, Totals)
        return found

    def _total(self, check: CoverageConfig) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            totals = self._totals(check, ctx)
            expectation = check.coverage
            words = (f"{check.data_file}: coverage {format_value(totals.total, 'percent')} "
                     f"({totals.breakdown()}), expected {expectation.text}")
            if expectation.holds(totals.total):
                return Outcome.passed(totals.total, expectation.text, words, **totals.as_extra())
            return Outcome.failed(words, totals.total, expectation.text, None,
                                  **totals.as_extra())
        return evaluate

    def _branch(self, check: CoverageConfig, expectation: Expectation) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            totals = self._totals(check, ctx)
            rate = totals.branch_rate
            if rate is None:
                raise CriterionError(
                    f"{check.data_file}: branch coverage was not measured (run 'coverage run "
                    "--branch -m pytest', 'pytest --cov --cov-branch', or set [tool.coverage.run]"
                    " branch = true)")
            words = (f"{check.data_file}: branch coverage {format_value(rate, 'percent')} "
                     f"({totals.covered_branches}/{totals.branches} branches), expected "
                     f"{expectation.text}")
            if expectation.holds(rate):
                return Outcome.passed(rate, expectation.text, words, **totals.as_extra())
            return Outcome.failed(words, rate, expectation.text, None, **totals.as_extra())
        return evaluate


def _read_or_message(check: CoverageConfig, rootdir: Path, same_run: str | None
                     ) -> Totals | str:
    try:
        return read_totals(check, rootdir, same_run)
    except CriterionError as exc:
        return str(exc)

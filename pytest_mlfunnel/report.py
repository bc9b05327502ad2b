"""The one report object every renderer reads (schema ``mlfunnel-report/1``)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlfunnel.atomic import special_kind
from pytest_mlfunnel.atomic import write_atomic as write_atomic  # re-exported for renderers
from pytest_mlfunnel.funnel import CriterionResult, GateResult, Verdict
from pytest_mlfunnel.secrets import redact_data

SCHEMA = "mlfunnel-report/1"


@dataclass
class Report:
    project: str
    release: str | None
    commit: str | None
    created: str
    verdict: Verdict
    gates: list[GateResult]
    config_file: str = "pyproject.toml"
    previous: dict[str, Any] | None = None  # the last recorded release, when history exists
    notes: list[str] = field(default_factory=list)  # e.g. corrupt history lines skipped

    @property
    def funnel(self) -> list[str]:
        return self.verdict.funnel

    def to_dict(self, with_criteria: bool = True) -> dict[str, Any]:
        verdict = self.verdict
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "project": self.project,
            "release": self.release,
            "commit": self.commit,
            "created": self.created,
            "funnel": list(verdict.funnel),
            "required": verdict.required.text,
            "reached": verdict.reached,
            "stage": verdict.stage,
            "ok": verdict.ok,
            "partial": verdict.partial,
            "verdict": verdict.line(),
            "reasons": list(verdict.reasons),
            "gates": [],
        }
        for gate in self.gates:
            entry: dict[str, Any] = {
                "name": gate.name,
                "status": gate.status,
                "passed": gate.passed,
                "total": gate.total,
            }
            if with_criteria:
                entry["criteria"] = [criterion_dict(c) for c in gate.criteria]
            data["gates"].append(entry)
        # every file and page is written from this dict: the last look for secrets
        return dict(redact_data(data))

    def to_json(self, with_criteria: bool = True) -> str:
        return json.dumps(strict_json(self.to_dict(with_criteria)), indent=2, sort_keys=False,
                          default=str, allow_nan=False)


def strict_json(value: Any) -> Any:
    """``value`` with every infinite or NaN float written as a string (``"inf"``, ``"nan"``):
    ``json.dumps`` would write ``Infinity``, which is not JSON, and ``jq``, JavaScript's
    ``JSON.parse`` and CI expressions (``fromJSON``) refuse the whole report for it."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    return value


def criterion_dict(result: CriterionResult) -> dict[str, Any]:
    data = asdict(result)
    data.pop("gate", None)
    if not data["details"]:
        data.pop("details")
    if not data["extra"]:
        data.pop("extra")
    data["duration_s"] = round(float(data["duration_s"]), 6)
    return data


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


def output_problem(path: Path, relative_to: Path) -> str | None:
    """Why a file cannot be written at ``path``, when that can be known before trying."""

    def shown(folder: Path) -> str:
        try:
            return folder.relative_to(relative_to).as_posix()
        except ValueError:
            return str(folder)

    if path.is_dir():
        return "is a directory"
    try:
        what = special_kind(path.stat().st_mode)
    except OSError:
        what = None
    if what is not None:  # /dev/null, /dev/stdout, a FIFO: not replaced by a file of ours
        return f"is {what}, not a regular file (give the path of a file to write)"
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = None
    if mode is not None and not mode & 0o222:  # kept on purpose: root could rename over it
        return (f"is read-only (mode {mode:04o}): make it writable to replace it, or give "
                "another path")
    folder = path.parent
    for folder in path.parents:  # the nearest folder that exists; the rest will be made
        if folder.exists() or folder.is_symlink():
            break
    if not folder.is_dir():
        return f"{shown(folder)} is not a directory"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot create files in {shown(folder)} (not writable)"
    return None

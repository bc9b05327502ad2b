"""``owners``: the bus factor -- distinct owners named in CODEOWNERS."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    EvalContext,
    ExpectationField,
    PlanContext,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome

STANDARD_LOCATIONS = ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS",
                      ".gitlab/CODEOWNERS")
_OWNER_RE = re.compile(r"^(@[\w.\-/]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")


class OwnersConfig(CheckConfig):
    owners: ExpectationField
    file: str | None = None


def parse_owners(text: str) -> list[str]:
    """Distinct owners (``@user``, ``@org/team``, e-mails) in order of first appearance."""
    owners: dict[str, None] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("\\#") else raw
        if not line:
            continue
        if line.startswith("[") or line.startswith("^["):  # GitLab section header
            line = re.sub(r"^\^?\[[^\]]*\](\[\d+\])?", "", line).strip()
            tokens = line.split()
        else:
            tokens = line.split()[1:]
        for token in tokens:
            if _OWNER_RE.match(token):
                owners.setdefault(token.lower(), None)
    return list(owners)


def find_codeowners(rootdir: Path, given: str | None) -> Path:
    if given is not None:
        path = rootdir / given
        if not path.is_file():
            raise CriterionError(f"{given}: owners file not found")
        return path
    for location in STANDARD_LOCATIONS:
        if (rootdir / location).is_file():
            return rootdir / location
    raise CriterionError(f"no CODEOWNERS file (looked in {', '.join(STANDARD_LOCATIONS)})")


class OwnersKind(CheckKind):
    key = "owners"
    evidence = "attested"
    config_model = OwnersConfig

    def plan(self, check: OwnersConfig, ctx: PlanContext) -> list[Criterion]:
        def evaluate(ev: EvalContext) -> Outcome:
            try:
                path = find_codeowners(ev.rootdir, check.file)
            except CriterionError as exc:
                return Outcome.failed(f"{exc}: 0 owners, expected {check.owners.text}", 0,
                                      check.owners.text)
            owners = parse_owners(path.read_text(encoding="utf-8", errors="replace"))
            where = path.relative_to(ev.rootdir).as_posix()
            named = ", ".join(owners[:8]) + (" …" if len(owners) > 8 else "")
            words = (f"{len(owners)} distinct owner{'s' if len(owners) != 1 else ''} in "
                     f"{where} ({named or 'none'}), expected {check.owners.text}")
            if check.owners.holds(len(owners)):
                return Outcome.passed(len(owners), check.owners.text, words, owners=owners)
            return Outcome.failed(words, len(owners), check.owners.text, owners=owners)
        return [Criterion("bus-factor", evaluate, expected=check.owners.text)]

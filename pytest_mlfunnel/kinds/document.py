"""``document``: a Markdown document holds required, non-empty sections and sign-offs."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from pytest_mlfunnel.expectations import format_duration
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    Duration,
    EvalContext,
    Evaluate,
    PlanContext,
    slug,
)
from pytest_mlfunnel.kinds.files import last_changed, shallow_clone
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.sources.file_types import read_whole, refuse_special_files

#: The sections of "Model Cards for Model Reporting" (Mitchell et al., 2019).
MODEL_CARD_SECTIONS = [
    "Model Details", "Intended Use", "Factors", "Metrics", "Evaluation Data",
    "Training Data", "Quantitative Analyses", "Ethical Considerations",
    "Caveats and Recommendations",
]
SIGN_OFF_HEADINGS = ("sign-off", "sign-offs", "sign off", "sign offs", "signoff", "signoffs",
                     "approvals", "approval")

# the closing #s are stripped in Python: "(.*?)\s*#*\s*$" backtracked cubically over a long
# run of spaces (a heading padded with 2,000 spaces took minutes)
_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})\s+(.*)$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)\s*$")
#: a line no underline makes a heading of: a list item or a quote ("---" is a rule after it)
_BLOCK_START_RE = re.compile(r"^ {0,3}([-*+](\s|$)|\d{1,9}[.)](\s|$)|>)")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_DATE_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_PLACEHOLDER_RE = re.compile(
    r"^(todo|tbd|tba|tbc|fixme|xxx|placeholder|n/?a|none yet|coming soon|to be (written|"
    r"done|defined|decided|completed)|fill( this)? in|lorem ipsum.*|\.\.\.|…|<[^>]*>|"
    r"\[[^\]]*\]|\{[^}]*\}|-+|(pending|awaiting|not yet)\b.*)$",
    re.IGNORECASE,
)


class DocumentConfig(CheckConfig):
    document: str
    sections: list[str] | None = None
    sign_off: list[str] = Field(default_factory=list)
    max_age: Duration | None = None

    @field_validator("document")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give the path of a Markdown document")
        return value

    @field_validator("sections", "sign_off")
    @classmethod
    def _names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not v.strip() for v in value):
            raise ValueError("names must not be empty")
        return value


@dataclass
class Section:
    title: str
    level: int
    body: list[str]  # lines up to the next heading of the same or a higher level


def parse_sections(text: str) -> list[Section]:
    """Headings of any level (ATX and setext), outside fenced code blocks and HTML comments."""
    lines = text.splitlines()
    hidden = _hidden_lines(lines)
    headings: list[tuple[int, int, str]] = []  # (line index, level, title)
    for index, line in enumerate(lines):
        if index in hidden:
            continue
        match = _HEADING_RE.match(line)
        if match:
            headings.append((index, len(match.group(1)),
                             match.group(2).rstrip().rstrip("#").strip()))
        elif (index > 0 and _SETEXT_RE.match(line) and lines[index - 1].strip()
              and index - 1 not in hidden and not _HEADING_RE.match(lines[index - 1])
              and not _BLOCK_START_RE.match(lines[index - 1])
              and (not headings or headings[-1][0] != index - 1)):
            level = 1 if line.strip().startswith("=") else 2
            headings.append((index - 1, level, lines[index - 1].strip()))
    sections = []
    for position, (index, level, title) in enumerate(headings):
        end = len(lines)
        for later_index, later_level, _ in headings[position + 1:]:
            if later_level <= level:
                end = later_index
                break
        start = index + (2 if index + 1 < len(lines) and _SETEXT_RE.match(lines[index + 1])
                         and not _HEADING_RE.match(lines[index]) else 1)
        sections.append(Section(_clean_title(title), level, lines[start:end]))
    return sections


def _hidden_lines(lines: list[str], start: int = 0, comments: bool = True) -> set[int]:
    """Lines no heading can be on: fences and what they hold, and lines that start inside
    a closed ``<!-- ... -->`` (a template's commented-out heading is not a section)."""
    hidden: set[int] = set()
    fence: tuple[str, int] | None = None  # the opening fence's character and length
    opened_on: int | None = None  # the line of the comment open at this line's start
    for index in range(start, len(lines)):
        line = lines[index]
        if fence is not None:
            hidden.add(index)
            found = _FENCE_RE.match(line)
            # CommonMark: closed by the same character, at least as many, nothing after
            if found and found.group(1)[0] == fence[0] and len(found.group(1)) >= fence[1] \
                    and not found.group(2).strip():
                fence = None
            continue
        if opened_on is not None:
            hidden.add(index)
        else:
            found = _FENCE_RE.match(line)
            if found and not (found.group(1)[0] == "`" and "`" in found.group(2)):
                fence = (found.group(1)[0], len(found.group(1)))
                hidden.add(index)
                continue
        if comments and _comment_open_after(line, opened_on is not None):
            opened_on = index if opened_on is None else opened_on
        else:
            opened_on = None
    if opened_on is not None:
        # never closed: no later "-->" exists, so the rest is text (as without_comments
        # reads it), with only its fences to hide
        return {i for i in hidden if i <= opened_on} | _hidden_lines(lines, opened_on + 1,
                                                                     comments=False)
    return hidden


def _comment_open_after(line: str, open_before: bool) -> bool:
    """Whether a ``<!--`` is still open at the end of the line."""
    position = 0
    is_open = open_before
    while True:
        if is_open:
            end = line.find("-->", position)
            if end < 0:
                return True
            position, is_open = end + 3, False
        else:
            start = line.find("<!--", position)
            if start < 0:
                return False
            position, is_open = start + 4, True


def _clean_title(title: str) -> str:
    title = re.sub(r"[*_`]", "", title)
    title = re.sub(r"^\d+(\.\d+)*[.)]?\s+", "", title)  # "2. Stakeholders"
    return " ".join(title.split())


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def find_section(sections: list[Section], title: str) -> Section | None:
    wanted = _norm(title)
    for section in sections:
        if _norm(section.title) == wanted:
            return section
    return None


def without_comments(text: str) -> str:
    """The text without its ``<!-- ... -->`` comments, in one pass. (The regular expression
    ``<!--.*?-->`` scanned to the end of the text from every unclosed ``<!--``: a document
    with thousands of them took minutes.) An unclosed comment is left as it is."""
    kept: list[str] = []
    position = 0
    while True:
        start = text.find("<!--", position)
        if start < 0:
            break
        end = text.find("-->", start + 4)
        if end < 0:  # no later "<!--" can close either
            break
        kept.append(text[position:start])
        position = end + 3
    kept.append(text[position:])
    return "".join(kept)


def meaningful_lines(body: list[str]) -> list[str]:
    """Body lines that say something: no headings, comments, blanks or placeholders."""
    text = without_comments("\n".join(body))
    kept = []
    for line in text.splitlines():
        if _HEADING_RE.match(line) or _SETEXT_RE.match(line):
            continue
        stripped = re.sub(r"^\s*([-*+>]|\d+[.)])\s*", "", line).strip()
        stripped = stripped.strip("*_`|: ").strip()
        if not stripped or _PLACEHOLDER_RE.match(stripped):
            continue
        words = re.sub(r"\b(todo|tbd|fixme)\b[:\s]*", "", stripped, flags=re.IGNORECASE)
        if not words.strip(" .:-"):
            continue
        kept.append(stripped)
    return kept


@dataclass
class SignOff:
    role: str
    person: str
    date: dt.date | None
    raw: str


def parse_sign_offs(section: Section, roles: list[str], among: list[str] | None = None
                    ) -> dict[str, SignOff | None]:
    """Each role's sign-off line. ``among``: every role the check asks for, so that "Owner"
    does not take the line of "Product Owner"."""
    found: dict[str, SignOff | None] = {role: None for role in roles}
    longer = {role: [_norm(other) for other in (among or roles) if _norm(other) != _norm(role)
                     and re.search(rf"\b{re.escape(_norm(role))}\b", _norm(other))]
              for role in roles}
    for raw in without_comments("\n".join(section.body)).splitlines():
        line = raw.strip()
        if not line or set(line) <= set("|-: "):
            continue
        low = _norm(line)
        for role in roles:
            if found[role] is not None or not re.search(rf"\b{re.escape(_norm(role))}\b", low):
                continue
            if any(re.search(rf"\b{re.escape(other)}\b", low) for other in longer[role]):
                continue
            rest = re.sub(re.escape(role), " ", line, count=1, flags=re.IGNORECASE)
            date_match = _DATE_RE.search(rest)
            date = None
            if date_match:
                try:
                    date = dt.date.fromisoformat(date_match.group(1))
                except ValueError:
                    date = None
                rest = rest.replace(date_match.group(1), " ")
            person = re.sub(r"^\s*([-*+]|\d+[.)])\s+", "", rest)
            person = re.sub(r"\b(signed( off)?( by)?|approved( by)?|on)\b", " ", person,
                            flags=re.IGNORECASE)
            person = " ".join(re.sub(r"[|:*_`,()\[\]—–]+", " ", person).split()).strip(" -.")
            if _PLACEHOLDER_RE.match(person or "-"):
                person = ""
            found[role] = SignOff(role, person, date, line)
    return found


def _in_future(date: dt.date, ctx: EvalContext) -> bool:
    """Later than today anywhere on Earth (a day of slack for time zones ahead of UTC)."""
    return date > ctx.now.date() + dt.timedelta(days=1)


def default_sections(check: DocumentConfig) -> list[str]:
    """Model cards get the Model Cards paper's sections; other documents need only content."""
    if check.sections is not None:
        return check.sections
    name = _norm(Path(check.document).stem)
    return MODEL_CARD_SECTIONS if "model" in name and "card" in name else []


def read_document(check: DocumentConfig, rootdir: Path, ctx: EvalContext | None) -> str:
    path = rootdir / check.document
    def read() -> str:
        if not path.exists():
            raise CriterionError(f"{check.document}: document not found")
        if path.is_dir():
            raise CriterionError(f"{check.document}: is a directory, expected a Markdown file")
        refuse_special_files([path], check.document, rootdir)
        _refuse_links_out(check.document, rootdir)
        try:
            # utf-8-sig: an editor on Windows starts the file with a byte order mark, which
            # would hide the first heading
            return read_whole(path, check.document, "a document").decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CriterionError(f"{check.document}: not UTF-8 text") from None
        except OSError as exc:
            raise CriterionError(f"{check.document}: cannot read: {exc.strerror}") from None
    if ctx is None:
        return read()
    return str(ctx.shared_value(("document", str(path)), read))


def _refuse_links_out(document: str, rootdir: Path) -> None:
    """A document reached through a symbolic link must stay in the project: its headings and
    sign-offs go into reports, and a link committed as ``docs/model_card.md`` could lead to any
    file of the machine running CI. A path written outside the rootdir (``../docs/card.md``)
    is the config's own choice and stays allowed."""
    base = Path(os.path.realpath(rootdir))
    written = Path(os.path.normpath(base / document))
    real = Path(os.path.realpath(written))
    if real == written or real.is_relative_to(base):
        return
    raise CriterionError(f"{document}: a symbolic link that leads outside the project (to "
                         f"{real}); a document must be a file of the project")


class DocumentKind(CheckKind[DocumentConfig]):
    key = "document"
    evidence = "attested"
    config_model = DocumentConfig

    def plan(self, check: DocumentConfig, ctx: PlanContext) -> list[Criterion]:
        criteria = [Criterion("exists", lambda ev: self._exists(check, ev),
                              expected="exists, not empty")]
        for title in default_sections(check):
            criteria.append(Criterion(f"section-{slug(title.lower())}",
                                      self._section(check, title),
                                      expected=f"section '{title}' written"))
        for role in check.sign_off:
            criteria.append(Criterion(f"sign-off-{slug(role.lower())}",
                                      self._sign_off(check, role),
                                      expected=f"'{role}' signed with a name and a date"))
        if check.max_age is not None:
            criteria.append(Criterion("max-age", lambda ev: self._age(check, ev),
                                      expected=f"<= {format_duration(check.max_age)} old"))
        return criteria

    @staticmethod
    def _exists(check: DocumentConfig, ctx: EvalContext) -> Outcome:
        text = read_document(check, ctx.rootdir, ctx)
        if not meaningful_lines(text.splitlines()):
            return Outcome.failed(f"{check.document}: the document is empty or only "
                                  "placeholders", 0, "exists, not empty")
        return Outcome.passed(len(text.splitlines()), "exists, not empty",
                              f"{check.document}: {len(text.splitlines())} lines")

    @staticmethod
    def _section(check: DocumentConfig, title: str) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            sections = parse_sections(read_document(check, ctx.rootdir, ctx))
            section = find_section(sections, title)
            expected = f"section '{title}' written"
            if section is None:
                have = ", ".join(s.title for s in sections) or "no headings at all"
                return Outcome.failed(f"{check.document}: no section '{title}' (sections: "
                                      f"{have})", None, expected)
            content = meaningful_lines(section.body)
            if not content:
                visible = without_comments("\n".join(section.body))
                raw = " ".join(line.strip() for line in visible.splitlines() if line.strip())
                commented = visible != "\n".join(section.body)
                what = (f"only a placeholder ({raw[:40]})" if raw
                        else "empty (only an HTML comment)" if commented else "empty")
                return Outcome.failed(f"{check.document}: section '{section.title}' is {what}",
                                      0, expected)
            words = sum(len(line.split()) for line in content)
            return Outcome.passed(words, expected, f"section '{section.title}': {words} words")
        return evaluate

    @staticmethod
    def _sign_off(check: DocumentConfig, role: str) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            expected = f"'{role}' signed with a name and a date"
            sections = parse_sections(read_document(check, ctx.rootdir, ctx))
            section = next((s for s in sections if _norm(s.title) in
                            {_norm(h) for h in SIGN_OFF_HEADINGS}), None)
            if section is None:
                return Outcome.failed(f"{check.document}: no 'Sign-off' section (it should list "
                                      f"each role with a person and a date, e.g. "
                                      f"'- {role}: Jane Doe, 2026-11-02')", None, expected)
            signed = parse_sign_offs(section, [role], check.sign_off)[role]
            if signed is None:
                return Outcome.failed(f"{check.document}: no sign-off by '{role}' in section "
                                      f"'{section.title}'", None, expected)
            if not signed.person:
                return Outcome.failed(f"{check.document}: the '{role}' sign-off names no "
                                      f"person ({signed.raw!r})", None, expected)
            if signed.date is None:
                return Outcome.failed(f"{check.document}: the '{role}' sign-off has no ISO date "
                                      f"(YYYY-MM-DD) ({signed.raw!r})", signed.person, expected)
            if _in_future(signed.date, ctx):
                return Outcome.failed(f"{check.document}: the '{role}' sign-off is dated "
                                      f"{signed.date}, in the future ({signed.raw!r})",
                                      signed.person, expected)
            return Outcome.passed(f"{signed.person}, {signed.date}", expected,
                                  f"'{role}' signed by {signed.person} on {signed.date}")
        return evaluate

    @staticmethod
    def _age(check: DocumentConfig, ctx: EvalContext) -> Outcome:
        assert check.max_age is not None
        expected = f"<= {format_duration(check.max_age)} old"
        text = read_document(check, ctx.rootdir, ctx)
        dates: list[dt.date] = []
        section = next((s for s in parse_sections(text) if _norm(s.title) in
                        {_norm(h) for h in SIGN_OFF_HEADINGS}), None)
        if check.sign_off and section is not None:
            for signed in parse_sign_offs(section, check.sign_off).values():
                if signed is not None and signed.date is not None:
                    if _in_future(signed.date, ctx):  # else the age check could never fail
                        return Outcome.failed(
                            f"{check.document}: the sign-off by '{signed.role}' is dated "
                            f"{signed.date}, in the future, so the document's age cannot be "
                            f"told, expected {expected}", None, expected)
                    dates.append(signed.date)
        if dates:
            newest = max(dates)
            age = (ctx.now.date() - newest).days * 86400.0
            what = f"newest sign-off {newest}"
        else:
            changed = last_changed(ctx.rootdir / check.document, ctx.rootdir)
            seconds = changed.age(ctx.now)
            if seconds is None:  # else the age check could never fail
                return Outcome.failed(
                    f"{check.document}: {changed.in_the_future()}, so the document's age "
                    f"cannot be told, expected {expected}", None, expected)
            age = seconds
            if changed.at_least and age <= check.max_age:
                path = ctx.rootdir / check.document
                raise CriterionError(f"{check.document}: {shallow_clone([path], ctx.rootdir)}")
            what = f"last {changed.how} {changed.when.date()}" + (
                " or before (a shallow clone)" if changed.at_least else "")
        words = f"{check.document}: {what}, {format_duration(age)} ago, expected {expected}"
        if age <= check.max_age:
            return Outcome.passed(age / 86400.0, expected, words)
        return Outcome.failed(words, round(age / 86400.0, 2), expected)

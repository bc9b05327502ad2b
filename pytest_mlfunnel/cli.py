"""The ``mlfunnel`` command: scaffold a project, show its history, draw badges and reports.

Standard library only (plus this package's renderers), so ``mlfunnel --help`` is instant
and works where pytest's plugins are not loaded.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from pytest_mlfunnel import __version__
from pytest_mlfunnel.atomic import (
    BOM_IN_TOML,
    UTF8_BOM,
    cannot_write,
    not_utf8,
    overwrite_problem,
    read_regular,
    write_atomic,
)
from pytest_mlfunnel.history import DEFAULT_HISTORY, SCHEMA, History, count, read_history
from pytest_mlfunnel.jsontext import JsonTextError, parse_json
from pytest_mlfunnel.portfolio_command import add_portfolio_command
from pytest_mlfunnel.render.escape import one_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_BADGE = "funnel-badge.svg"
#: Files ``mlfunnel init`` writes besides the config: template name -> path in the project.
DOCUMENTS = {
    "problem.md": "docs/problem.md",
    "MODEL_CARD.md": "MODEL_CARD.md",
    "runbook.md": "docs/runbook.md",
}
_SECTION_HEADER_RE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
GATE_WORDS = {"passed": "pass", "warned": "warn", "failed": "FAIL", "empty": "empty",
              "not run": "n/run"}


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"mlfunnel: error: {message}{hint}\n")


# ---------------------------------------------------------------------- config lookup
def read_section(pyproject: Path) -> dict[str, Any] | None:
    """``[tool.mlfunnel]`` of a pyproject file, None when the file or section is absent."""
    blob = b""
    try:
        blob = read_regular(pyproject)  # a FIFO would wait for a writer forever
        document = tomllib.loads(blob.decode("utf-8"))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise CliError(f"{pyproject}: cannot read: {not_utf8(blob, exc)}") from None
    except OSError as exc:
        raise CliError(f"{pyproject}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # TOMLDecodeError is a ValueError
        problem = BOM_IN_TOML if blob.startswith(UTF8_BOM) else exc
        raise CliError(f"{pyproject}: cannot read: {problem}") from None
    except RecursionError:
        raise CliError(f"{pyproject}: cannot read: arrays or tables nested too deeply") from None
    tool = document.get("tool")
    section = tool.get("mlfunnel") if isinstance(tool, dict) else None
    return section if isinstance(section, dict) else None


def history_path(args: argparse.Namespace) -> Path:
    """--history, else ``history`` from [tool.mlfunnel] of --config, else the default."""
    if getattr(args, "history", None):
        return Path(args.history)
    pyproject = Path(args.config or "pyproject.toml")
    if args.config is not None and not pyproject.exists():
        # a mistyped --config would otherwise fall back to the default history silently
        raise CliError(f"{args.config}: file not found (--config)")
    section = read_section(pyproject) or {}
    configured = section.get("history", DEFAULT_HISTORY)
    if not isinstance(configured, str) or not configured.strip():
        configured = DEFAULT_HISTORY
    return pyproject.parent / configured


def load_history(path: Path, required: bool) -> History:
    try:
        history = read_history(path)
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if required and not history.lines:
        raise CliError(f"{path}: no history yet (record a run with "
                       "'pytest --funnel --funnel-record')")
    return history


def nothing_readable(history: History) -> str:
    """``<path>: no readable history entries``, with how many lines were skipped and why the
    first was: one line for a file that is no history at all, not a note per line."""
    skipped = [line for line in history.lines if line.problem is not None]
    if not skipped:
        return f"{history.path}: no readable history entries"
    first = skipped[0]
    return (f"{history.path}: no readable history entries ({len(skipped)} "
            f"line{'s' if len(skipped) != 1 else ''} skipped; line {first.number}: "
            f"{first.problem})")


def warn_skipped(history: History) -> None:
    if history.lines and not history.entries:
        print(f"mlfunnel: note: {nothing_readable(history)}", file=sys.stderr)
        return
    for note in history.notes():
        print(f"mlfunnel: note: {note}", file=sys.stderr)


def load_report(path: Path, checked: bool = True) -> dict[str, Any]:
    """A JSON report; ``checked`` validates it with the models the plugin writes it with."""
    try:
        data = parse_json(read_regular(path))
    except FileNotFoundError:
        raise CliError(f"{path}: file not found") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not JSON (not UTF-8: byte 0x{exc.object[exc.start]:02x} at "
                       f"position {exc.start})") from None
    except JsonTextError as exc:
        raise CliError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise CliError(f"{path}: not an mlfunnel report (schema {schema!r}, expected "
                       f"{SCHEMA!r}; write one with 'pytest --funnel "
                       "--funnel-json=PATH')")
    if not checked:
        return data
    from pytest_mlfunnel.schema import check_report

    problem = check_report(data)  # the models the plugin writes it with
    if problem is not None:
        raise CliError(f"{path}: {problem}")
    return data


def refuse_overwriting(outputs: Mapping[str, str | None],
                       inputs: Sequence[tuple[str, Path | None]]) -> None:
    clash = overwrite_problem(outputs, inputs)
    if clash is not None:
        raise CliError(": ".join(clash))


def write_text(target: str, text: str) -> None:
    if target == "-":
        sys.stdout.write(text)
        return
    try:
        # whole or not at all, and never into a FIFO (it would wait for a reader forever) or
        # over a device: the plugin's own writer
        write_atomic(Path(target), text)
    except OSError as exc:
        raise CliError(f"{target}: cannot write: {cannot_write(Path(target), exc)}") from None
    print(f"wrote {target}")


# ---------------------------------------------------------------------- init
def _write_file(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")  # line endings as given
    except FileExistsError as exc:  # a file where a folder of the path should be
        raise CliError(f"{path}: cannot write: {exc.filename} is not a directory") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _check_writable(root: Path, target: Path) -> None:
    """A CliError when ``target`` (under ``root``) is a folder or under a file."""
    if target.is_dir():
        raise CliError(f"{target}: cannot write: it is a directory")
    folder = root
    for part in target.relative_to(root).parts[:-1]:
        folder = folder / part
        if folder.exists() and not folder.is_dir():
            raise CliError(f"{target}: cannot write: {folder} is not a directory")


def template(name: str) -> str:
    return resources.files("pytest_mlfunnel").joinpath("templates", name).read_text(
        encoding="utf-8")


def without_section(text: str) -> str:
    """``text`` with every ``[tool.mlfunnel...]`` table removed (for ``init --force``)."""
    kept: list[str] = []
    dropping = False
    for line in text.splitlines(keepends=True):
        header = _SECTION_HEADER_RE.match(line)
        if header:
            name = re.sub(r"\s+", "", header.group(1)).replace('"', "").replace("'", "")
            dropping = name == "tool.mlfunnel" or name.startswith("tool.mlfunnel.")
        if not dropping:
            kept.append(line)
    return "".join(kept)


def command_init(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise CliError(f"{root}: not a directory")
    pyproject = root / "pyproject.toml"
    starter = template("mlfunnel.toml")
    # every place is checked before anything is written: a half-written project (the section
    # in, the documents not) would make the next 'mlfunnel init' refuse the section
    for target in (root / relative for relative in DOCUMENTS.values()):
        if not target.exists() or args.force:
            _check_writable(root, target)
    if pyproject.exists():
        section = read_section(pyproject)  # first: it says why a file cannot be read
        # undecoded line endings: a CRLF file stays CRLF, not one changed line per line
        existing = pyproject.read_bytes().decode("utf-8")
        newline = "\r\n" if "\r\n" in existing else "\n"
        starter = starter.replace("\n", newline)
        if section is not None:
            if not args.force:
                raise CliError(f"{pyproject} already has a [tool.mlfunnel] section (use "
                               "--force to replace it)")
            existing = without_section(existing)
            try:
                tomllib.loads(existing)
            except tomllib.TOMLDecodeError:
                raise CliError(f"{pyproject}: cannot remove the [tool.mlfunnel] section "
                               "safely; remove it by hand") from None
            if "mlfunnel" in (tomllib.loads(existing).get("tool") or {}):
                raise CliError(f"{pyproject}: [tool.mlfunnel] is written as dotted keys; "
                               "remove it by hand")
        text = (existing.rstrip("\r\n") + newline + starter if existing.strip()
                else starter.lstrip())
        _write_file(pyproject, text)
        print(f"wrote {pyproject} ([tool.mlfunnel] section)")
    else:
        _write_file(pyproject, starter.lstrip())
        print(f"wrote {pyproject}")
    for name, relative in DOCUMENTS.items():
        target = root / relative
        if target.exists() and not args.force:
            print(f"kept {target} (it exists; --force overwrites it)")
            continue
        _write_file(target, template(name))
        print(f"wrote {target}")
    print("next: fill in the TODOs, then run 'pytest --funnel'")
    return 0


# ---------------------------------------------------------------------- history
def history_table(entries: Sequence[Mapping[str, Any]], funnel: Sequence[str]) -> list[str]:
    """Releases x gates, one row per recorded release, as fixed-width text."""
    header = ["release", "date", "stage"] + [f"{i} {g}" for i, g in enumerate(funnel, 1)]
    rows = [header]
    for entry in entries:
        gates = {g.get("name"): g for g in entry.get("gates") or ()}
        total = len(entry.get("funnel") or funnel)
        row = [str(entry.get("release")), str(entry.get("created") or "")[:10],
               f"{entry.get('reached') or 'none'} {entry.get('stage')}/{total}"
               + ("" if entry.get("ok") else " ✗")]
        for name in funnel:
            gate = gates.get(name)
            if gate is None:
                row.append("-")
            else:
                word = GATE_WORDS.get(str(gate.get("status")), str(gate.get("status")))
                row.append(f"{word} {count(gate.get('passed'))}/{count(gate.get('total'))}")
        rows.append(row)
    # release and gate names come from a file anyone may have edited: an escape sequence in
    # one would recolour or retitle the terminal, a newline would break the table
    rows = [[one_line(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def command_history(args: argparse.Namespace) -> int:
    path = history_path(args)
    refuse_overwriting({"--html": args.html}, _read_by(args, history=path))
    history = load_history(path, required=True)
    entries = history.entries
    if not entries:
        raise CliError(nothing_readable(history))
    warn_skipped(history)
    if args.last is not None:
        entries = entries[-args.last:]
    latest = entries[-1]
    funnel = [str(g) for g in latest.get("funnel") or ()]
    if args.html:
        from pytest_mlfunnel.render.html import render_html

        previous = history.previous_to(latest.get("release"))
        write_text(args.html, render_html(latest, entries, previous=previous,
                                          current_label=None))
        return 0
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    for line in history_table(entries, funnel):
        try:
            line.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            line = line.replace("✗", "x")
        print(line)
    return 0


def _read_by(args: argparse.Namespace, history: Path | None = None,
             report: Path | None = None) -> list[tuple[str, Path | None]]:
    """What a history/badge/report command reads, by name, for refuse_overwriting."""
    return [("report", report), ("history file", history),
            ("config file", Path(args.config or "pyproject.toml"))]


# ---------------------------------------------------------------------- badge
def command_badge(args: argparse.Namespace) -> int:
    from pytest_mlfunnel.render.badge import render_badge

    refuse_overwriting({"-o": args.output}, _read_by(
        args, report=Path(args.report) if args.report else None,
        history=None if args.report else history_path(args)))
    if args.report:
        data = load_report(Path(args.report))
    else:
        history = load_history(history_path(args), required=True)
        latest = history.latest()
        if latest is None:
            raise CliError(nothing_readable(history))
        warn_skipped(history)
        data = latest
    write_text(args.output, render_badge(data, label=args.label))
    return 0


# ---------------------------------------------------------------------- report
def command_report(args: argparse.Namespace) -> int:
    data = load_report(Path(args.report))
    if not args.html and not args.markdown:
        raise CliError("give --html OUT and/or --markdown OUT")
    history = History(Path(DEFAULT_HISTORY))
    path = history_path(args)
    refuse_overwriting({"--html": args.html, "--markdown": args.markdown}, _read_by(
        args, report=Path(args.report), history=None if args.no_history else path))
    if not args.no_history and (args.history or path.exists()):
        history = load_history(path, required=False)
        warn_skipped(history)
    previous = history.previous_to(data.get("release"))
    if args.html:
        from pytest_mlfunnel.render.html import render_html

        write_text(args.html, render_html(data, history.entries, previous=previous))
    if args.markdown:
        from pytest_mlfunnel.render.markdown import render_markdown

        write_text(args.markdown, render_markdown(data, previous))
    return 0


# ---------------------------------------------------------------------- compare
def command_compare(args: argparse.Namespace) -> int:
    from pytest_mlfunnel.compare import ReportShapeError, compare_reports
    from pytest_mlfunnel.render import comparison as render

    # compare names what it needs of each side itself (ReportShapeError)
    base = load_report(Path(args.base), checked=False)
    head = load_report(Path(args.head), checked=False)
    refuse_overwriting({"--markdown": args.markdown},
                       [("report", Path(args.base)), ("report", Path(args.head))])
    try:
        result = compare_reports(base, head, args.base, args.head)
    except ReportShapeError as exc:
        raise CliError(str(exc)) from None
    if args.markdown:
        write_text(args.markdown, render.render_markdown(result))
    if args.markdown != "-":
        sys.stdout.write(render.render_text(result))
    return 1 if args.fail_on_regress and result.worse else 0


# ---------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlfunnel", description="pytest-mlfunnel: scaffold the funnel, "
                     "show its history, write badges and reports. Run the funnel itself with "
                     "'pytest --funnel'.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def where(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", default=None, metavar="PATH",
                         help="pyproject.toml whose [tool.mlfunnel] names the history file "
                              "(default: ./pyproject.toml)")
        sub.add_argument("--history", metavar="PATH", default=None,
                         help=f"the history file (default: from the config, else "
                              f"{DEFAULT_HISTORY})")

    init = commands.add_parser(
        "init", help="write a starter [tool.mlfunnel] and document templates",
        description="Write a starter [tool.mlfunnel] for the 8 gates into pyproject.toml "
                    "(appended when the file exists) and templates for docs/problem.md, "
                    "MODEL_CARD.md and docs/runbook.md. Existing files are kept.")
    init.add_argument("--dir", default=".", metavar="DIR", help="project root (default: .)")
    init.add_argument("--force", action="store_true",
                      help="replace an existing [tool.mlfunnel] and overwrite the documents")
    init.set_defaults(run=command_init)

    history = commands.add_parser(
        "history", help="table of recorded releases x gates",
        description="Show the recorded releases (pytest --funnel --funnel-record) gate by "
                    "gate.")
    where(history)
    history.add_argument("--html", metavar="OUT", help="write the history as an HTML page")
    history.add_argument("--last", type=_positive, metavar="N", help="only the last N releases")
    history.set_defaults(run=command_history)

    badge = commands.add_parser(
        "badge", help="write an SVG badge of the stage reached",
        description="Write an SVG badge ('funnel | model 3/8') from the latest recorded "
                    "release, or from a JSON report.")
    where(badge)
    badge.add_argument("--report", metavar="REPORT.json",
                       help="read a JSON report (pytest --funnel-json) instead of the history")
    badge.add_argument("-o", "--output", default=DEFAULT_BADGE, metavar="OUT",
                       help=f"where to write the SVG ('-' for stdout; default: {DEFAULT_BADGE})")
    badge.add_argument("--label", default="funnel", help="left-hand text (default: funnel)")
    badge.set_defaults(run=command_badge)

    report = commands.add_parser(
        "report", help="render a saved JSON report as HTML or Markdown",
        description="Render a JSON report written by 'pytest --funnel --funnel-json=PATH'; "
                    "the history file, when there is one, adds the chart over releases.")
    report.add_argument("report", metavar="REPORT.json")
    where(report)
    report.add_argument("--html", metavar="OUT", help="write a self-contained HTML page")
    report.add_argument("--markdown", metavar="OUT", help="write the Markdown funnel table")
    report.add_argument("--no-history", action="store_true",
                        help="leave the history out of the page")
    report.set_defaults(run=command_report)
    add_portfolio_command(commands)

    compare = commands.add_parser(
        "compare", help="what changed between two JSON reports (e.g. a PR and its base)",
        description="Compare two JSON reports (pytest --funnel --funnel-json): the stage "
                    "reached before and after, every gate whose status changed, every "
                    "criterion that newly fails or newly passes with both observed values.")
    compare.add_argument("base", metavar="BASE.json")
    compare.add_argument("head", metavar="HEAD.json")
    compare.add_argument("--markdown", metavar="OUT",
                         help="also write the comparison as Markdown for a PR comment or the "
                              "job summary ('-' for stdout instead of the text)")
    compare.add_argument("--fail-on-regress", action="store_true",
                         help="exit 1 when HEAD is worse: a lower stage, an OK verdict lost, "
                              "or a blocking criterion newly failing")
    compare.set_defaults(run=command_compare)
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)
    parser.set_defaults(commands=commands.choices)
    parser.add_argument("--version", action="version", version=f"mlfunnel {__version__}")
    return parser


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    commands = parser.get_default("commands")
    return commands if isinstance(commands, dict) else {}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    for token in arguments:  # argparse would only say that COMMAND is missing
        if not token.startswith("-") or token == "--":
            break
        if token.split("=", 1)[0] not in ("-h", "--help", "--version"):
            name = token.split("=", 1)[0]
            known = any(re.search(rf"\[{re.escape(name)}[\] ]", sub.format_usage())
                        for sub in _commands(parser).values())
            hint = f" (options go after the command: 'mlfunnel COMMAND {name} ...')" \
                if known else ""
            parser.error(f"unrecognized arguments: {token}{hint}")
    args, unknown = parser.parse_known_args(arguments)
    if unknown:  # named by the command's own parser, so the hint shows the right --help
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"mlfunnel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``mlfunnel portfolio PATH...``: the funnel of many projects, from their histories.

Standard library only, like the rest of the ``mlfunnel`` command. Inputs that cannot be
read are noted on stderr with their path and skipped; the command fails (exit 2) only
when nothing at all could be read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from pytest_mlfunnel.atomic import cannot_write, overwrite_problem, write_atomic
from pytest_mlfunnel.portfolio import (
    DEFAULT_STALLED_AFTER_DAYS,
    parse_as_of,
    parse_days,
    read_paths,
    summarize,
)


class _OutputError(Exception):
    pass


def _days(text: str) -> int:
    try:
        return parse_days(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _date(text: str) -> dt.date:
    try:
        return parse_as_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_portfolio_command(commands: Any) -> None:
    """Register the subcommand on the ``mlfunnel`` parser's subparsers."""
    sub = commands.add_parser(
        "portfolio", help="the funnel of many projects: how many passed each gate",
        description="Summarize many projects' histories: per gate how many projects reached "
                    "it, the conversion from the gate before, the median days before passing "
                    "it, where projects stop and which have stalled. PATH is a history file "
                    "(.mlfunnel/history.jsonl), a JSON report (pytest --funnel-json), or a "
                    "folder searched for .mlfunnel/history.jsonl.")
    sub.add_argument("paths", nargs="+", metavar="PATH",
                     help="history files, JSON reports (*.json) or folders")
    sub.add_argument("--html", metavar="OUT", help="write a self-contained HTML page")
    sub.add_argument("--markdown", metavar="OUT", help="write Markdown ('-' for stdout)")
    sub.add_argument("--json", metavar="OUT",
                     help="write JSON, schema mlfunnel-portfolio/1 ('-' for stdout)")
    sub.add_argument("--stalled-after", type=_days, default=DEFAULT_STALLED_AFTER_DAYS,
                     metavar="DAYS", help="a project whose stage has not changed for longer "
                     f"is stalled: 90d, 12w (default: {DEFAULT_STALLED_AFTER_DAYS}d)")
    sub.add_argument("--as-of", type=_date, default=None, metavar="DATE",
                     help="count days up to this date (YYYY-MM-DD) and leave out releases "
                          "recorded after it (default: today, UTC)")
    sub.set_defaults(run=command_portfolio)


def _write(target: str, text: str, report_to: Any) -> None:
    # UTF-8 whatever the terminal's encoding; a lone surrogate (a "\ud800" escape in a
    # history) is written as that escape rather than failing the write.
    data = text.encode("utf-8", "backslashreplace")
    if target == "-":
        sys.stdout.flush()
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            sys.stdout.write(data.decode("utf-8"))
        return
    try:
        write_atomic(Path(target), data)  # whole or not at all; never into a FIFO or device
    except OSError as exc:
        raise _OutputError(f"{target}: cannot write: {cannot_write(Path(target), exc)}"
                           ) from None
    print(f"wrote {target}", file=report_to)


def command_portfolio(args: argparse.Namespace) -> int:
    reading = read_paths(args.paths)
    for problem in reading.problems:
        print(f"mlfunnel: note: {_printable(str(problem))} (skipped)", file=sys.stderr)
    if not reading.releases:
        given = len(args.paths)
        print(f"mlfunnel: error: nothing could be read from the {given} "
              f"path{'s' if given != 1 else ''} given: no history entry or report "
              "(see the notes above)", file=sys.stderr)
        return 2
    as_of = args.as_of or dt.datetime.now(dt.timezone.utc).date()
    portfolio = summarize(reading, as_of, args.stalled_after)
    if not portfolio.groups:
        print(f"mlfunnel: error: all {portfolio.entries} releases read were recorded after "
              f"{as_of.isoformat()} (--as-of)", file=sys.stderr)
        return 2
    clash = overwrite_problem({"--json": args.json, "--markdown": args.markdown,
                               "--html": args.html},
                              [("report" if name.endswith(".json") else "history file",
                                Path(name)) for name in reading.files])
    if clash is not None:
        print(f"mlfunnel: error: {_printable(': '.join(clash))}", file=sys.stderr)
        return 2
    # With an output on stdout, stdout carries that output alone.
    to_stdout = "-" in (args.json, args.markdown, args.html)
    if not to_stdout:
        from pytest_mlfunnel.render.portfolio_terminal import render_portfolio_terminal

        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        for line in render_portfolio_terminal(portfolio, encoding):
            print(line)
    report_to = sys.stderr if to_stdout else sys.stdout
    try:
        if args.json:
            import json

            _write(args.json, json.dumps(portfolio.to_dict(), indent=2, ensure_ascii=False)
                   + "\n", report_to)
        if args.markdown:
            from pytest_mlfunnel.render.portfolio_markdown import render_portfolio_markdown

            _write(args.markdown, render_portfolio_markdown(portfolio), report_to)
        if args.html:
            from pytest_mlfunnel.render.portfolio_html import render_portfolio_html

            _write(args.html, render_portfolio_html(portfolio), report_to)
    except _OutputError as exc:
        print(f"mlfunnel: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)

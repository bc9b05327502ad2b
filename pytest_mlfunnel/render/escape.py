"""Text from outside -- a data value, a metric name, an HTTP reason phrase -- made safe to show.

A terminal obeys control characters (ESC sequences recolour it, OSC sequences retitle the
window or forge links, BEL rings) and GitHub renders Markdown in a step summary (an image
from anywhere, a link, emphasis). Each renderer escapes once, at its boundary, with one of
these functions.
"""

from __future__ import annotations

import html
import re

# C0 controls but the newline, DEL, the C1 controls, and the bidirectional formatting
# characters: an override (U+202E) in an author's name turns the rest of the line around in a
# terminal or a browser
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# ... and lone surrogates: JSON may spell one ("\\ud800"), and no UTF-8 output can hold it
_CONTROL_RE = re.compile(f"[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f{_BIDI}\\ud800-\\udfff]")
# what can start a Markdown construct in the middle of a line (GitHub flavour: ~ for
# strikethrough, $ for maths); < > & are HTML-escaped first
_MARKDOWN_RE = re.compile(r"([\\`*_\[\]~$|])")
_CODE_UNSAFE_RE = re.compile(f"[`|<>&\\\\\\x00-\\x1f\\x7f-\\x9f{_BIDI}\\ud800-\\udfff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def controls(text: str) -> str:
    """Control characters written visibly (``\\x1b``, ``\\x07``, ``\\u202e``); newlines
    kept."""
    return _CONTROL_RE.sub(_visible, text)


def one_line(text: str) -> str:
    """Text for one line of a terminal table: every character that is not printable (controls,
    newlines, line separators) written as its escape (``\\x1b``, ``\\n``, ``\\u2028``)."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def markdown(text: str) -> str:
    """One line of Markdown that renders as the text it holds: no image, link, emphasis,
    HTML or table cell break can come out of it."""
    flat = " ".join(controls(text).split())
    return _MARKDOWN_RE.sub(r"\\\1", html.escape(flat, quote=False))


def markdown_code(text: str) -> str:
    """A code span of the text, or the escaped text where a code span could not hold it
    (a backtick, a pipe, HTML, a control character: code spans show escapes as written)."""
    if _CODE_UNSAFE_RE.search(text):
        return markdown(text)
    return f"`{text}`"

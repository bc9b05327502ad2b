"""Text from outside -- a data value, a metric name, an HTTP reason phrase -- made safe to show.

A terminal obeys control characters (ESC sequences recolour it, OSC sequences retitle the
window or forge links, BEL rings) and GitHub renders Markdown in a step summary (an image
from anywhere, a link, emphasis). Each renderer escapes once, at its boundary, with one of
these functions.
"""

from __future__ import annotations

import html
import re

# C0 controls but the newline, DEL, and the C1 controls
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# what can start a Markdown construct in the middle of a line (GitHub flavour: ~ for
# strikethrough, $ for maths); < > & are HTML-escaped first
_MARKDOWN_RE = re.compile(r"([\\`*_\[\]~$|])")
_CODE_UNSAFE_RE = re.compile(r"[`|<>&\\\x00-\x1f\x7f-\x9f]")


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group(0)):02x}"


def controls(text: str) -> str:
    """Control characters written visibly (``\\x1b``, ``\\x07``); newlines kept."""
    return _CONTROL_RE.sub(_visible, text)


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

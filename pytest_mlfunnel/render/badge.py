"""An SVG badge of the stage reached (``funnel | model 3/8``), coloured by the verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pytest_mlfunnel.history import count

COLOURS = {
    "ok": "#2e7d32",  # reached the required gate (or report only)
    "complete": "#1b5e20",  # ok, and every gate passed
    "failed": "#c62828",
    "partial": "#6d6d6d",
}
# Widths of 11px Verdana glyphs (what the badge asks for), so the text fits its box.
_NARROW = set("fijlrt.,:;|!'()[] ")
_WIDE = set("mwMW@%")
_HEIGHT = 20


def text_width(text: str) -> int:
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 4.0
        elif char in _WIDE:
            width += 10.5
        elif char.isupper() or char.isdigit():
            width += 7.5
        else:
            width += 6.8
    return round(width)


def badge_message(report: Mapping[str, Any]) -> str:
    total = len(report.get("funnel") or report.get("gates") or ())
    return f"{report.get('reached') or 'none'} {count(report.get('stage'))}/{total}"


def badge_colour(report: Mapping[str, Any]) -> tuple[str, str]:
    """(colour, word): the word goes in the title, for readers who do not see colour."""
    if report.get("partial"):
        return COLOURS["partial"], "partial run"
    if not report.get("ok"):
        return COLOURS["failed"], "failing"
    total = len(report.get("funnel") or ())
    if total and count(report.get("stage")) == total:
        return COLOURS["complete"], "every gate passed"
    return COLOURS["ok"], "ok"


def render_badge(report: Mapping[str, Any], label: str = "funnel") -> str:
    message = badge_message(report)
    colour, word = badge_colour(report)
    left = text_width(label) + 12
    right = text_width(message) + 12
    width = left + right
    title = f"{label}: {message} ({word})"
    text_y = 14
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_HEIGHT}" \
role="img" aria-label={quoteattr(title)}>
<title>{escape(title)}</title>
<linearGradient id="shine" x2="0" y2="100%">
<stop offset="0" stop-color="#fff" stop-opacity=".12"/>
<stop offset="1" stop-opacity=".12"/>
</linearGradient>
<clipPath id="round"><rect width="{width}" height="{_HEIGHT}" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#round)">
<rect width="{left}" height="{_HEIGHT}" fill="#555"/>
<rect x="{left}" width="{right}" height="{_HEIGHT}" fill="{colour}"/>
<rect width="{width}" height="{_HEIGHT}" fill="url(#shine)"/>
</g>
<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" \
font-size="11">
<text x="{left / 2:.1f}" y="{text_y + 1}" fill="#010101" fill-opacity=".3">{escape(label)}</text>
<text x="{left / 2:.1f}" y="{text_y}">{escape(label)}</text>
<text x="{left + right / 2:.1f}" y="{text_y + 1}" fill="#010101" \
fill-opacity=".3">{escape(message)}</text>
<text x="{left + right / 2:.1f}" y="{text_y}">{escape(message)}</text>
</g>
</svg>
"""

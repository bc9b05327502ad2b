"""JSON text from files anyone may have written (metrics, reports, history lines), read with
one error for every way it can be unreadable.

``json.loads`` raises three things on hostile text: ``JSONDecodeError`` for a syntax error,
``RecursionError`` for arrays or objects nested a few thousand deep, and a bare
``ValueError`` for an integer of more digits than Python converts. A caller that catches only
the first lets the other two escape as a traceback. Standard library only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_DIGITS_RE = re.compile(r"\((\d+) digits\).*?has (\d+) digits")


class JsonTextError(ValueError):
    """Why a text is not JSON that can be read, in words: ``reason`` (``Expecting value``),
    and ``line``/``column`` when the text breaks at one place."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None,
                 too_deep: bool = False) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        #: valid JSON, perhaps, but nested deeper than Python's decoder goes
        self.too_deep = too_deep
        super().__init__(self.describe())

    def describe(self, with_line: bool = True) -> str:
        """``line 3: Expecting value at column 9`` (``with_line=False`` for one-line texts)."""
        if self.column is None:
            return self.reason
        where = f"line {self.line}: " if with_line and self.line is not None else ""
        return f"{where}{self.reason} at column {self.column}"


def parse_json(text: str | bytes,
               object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """``json.loads`` that raises only ``JsonTextError`` (or ``UnicodeDecodeError`` for bytes
    that are not UTF-8); ``object_pairs_hook`` as ``json.loads`` takes it."""
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as exc:
        # some of json's messages end in "at" ("Unterminated string starting at"): say it once
        raise JsonTextError(exc.msg.removesuffix(" at"), exc.lineno, exc.colno) from None
    except RecursionError:
        raise JsonTextError("arrays or objects nested too deeply to read", too_deep=True
                            ) from None
    except UnicodeDecodeError:
        raise
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string ..."
        found = _DIGITS_RE.search(str(exc))
        if found is None:
            raise JsonTextError(str(exc)) from None
        raise JsonTextError(f"an integer of {found.group(2)} digits (at most "
                            f"{found.group(1)} are read)") from None

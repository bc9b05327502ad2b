"""Did-you-mean: the allowed name nearest to a misspelled one. Pure Python."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word``, or None when nothing is close enough."""
    options = [c for c in dict.fromkeys(choices) if c != word]
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if found:
        return found[0]
    folded = {c.lower(): c for c in options}  # 'Model' for 'model'
    return folded.get(word.lower())


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'dataset'?"``, or "" when no allowed name is close."""
    found = nearest(word, choices)
    return f"; did you mean {found!r}?" if found else ""

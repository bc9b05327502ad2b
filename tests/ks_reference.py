"""Reference KS computations the tests compare the drift kind's cell walk with (scipy is the
oracle for these; the package computes KS from cells, ``kinds.drift.comparison``)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _proportions(counts: Sequence[float]) -> list[float]:
    total = math.fsum(counts)
    return [c / total for c in counts]


def ks_statistic(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Two-sample KS statistic from counts in the same ordered bins: the largest gap between
    the two empirical CDFs at the bin edges.

    Exact when every distinct value has its own bin; otherwise it can be low by at most the
    largest share of either sample in one bin (see ``ks_binning_error``).
    """
    if len(reference_counts) != len(current_counts):
        raise ValueError("ks_statistic needs the same bins on both sides")
    ref = _proportions(reference_counts)
    cur = _proportions(current_counts)
    gap = 0.0
    cum_ref = cum_cur = 0.0
    for r, c in zip(ref, cur, strict=True):
        cum_ref += r
        cum_cur += c
        gap = max(gap, abs(cum_ref - cum_cur))
    return min(gap, 1.0)


def ks_binning_error(reference_counts: Sequence[float], current_counts: Sequence[float],
                     spread: Sequence[bool] | None = None) -> float:
    """Bound on how far the binned KS statistic can be below the exact one: the largest share
    of either sample in one bin. ``spread`` marks the bins that may hold more than one distinct
    value; a bin holding a single value hides nothing (default: every bin may)."""
    ref = _proportions(reference_counts)
    cur = _proportions(current_counts)
    wide = spread if spread is not None else [True] * len(ref)
    return max((max(r, c) for r, c, w in zip(ref, cur, wide, strict=True) if w), default=0.0)


def ks_exact_statistic(reference: Sequence[float], current: Sequence[float]) -> float:
    """KS statistic from raw values."""
    merged = sorted(set(reference) | set(current))
    ref_sorted, cur_sorted = sorted(reference), sorted(current)
    gap = 0.0
    i = j = 0
    for value in merged:
        while i < len(ref_sorted) and ref_sorted[i] <= value:
            i += 1
        while j < len(cur_sorted) and cur_sorted[j] <= value:
            j += 1
        gap = max(gap, abs(i / len(ref_sorted) - j / len(cur_sorted)))
    return gap

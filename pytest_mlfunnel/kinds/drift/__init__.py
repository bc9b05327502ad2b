"""``drift``: current data still looks like the reference data, column by column.

One criterion per column and statistic (``age.psi``, ``plan.chi2_p``). Numeric columns
(int, float) are counted in fine cells (``CellGrid``: about 0.1% of |x| wide, finer where
a cell holds too much) and compared in PSI/JS bins made of runs of cells that cut the
reference at its deciles, and by KS at every cell boundary; categorical columns (string,
bool) by their values. ``categorical = [...]`` / ``numeric = [...]`` override the type.
Date and time columns are left out of the default column list (time moves on, so they
always drift).

Passes over the data (each a GROUP BY per column, so each column is read once): the
reference once (twice when a cell holds more than 1/KS_BINS of it and is split), the
current data once, in the reference's cells. The reference summary -- cells, counts and
bins -- is saved under ``.mlfunnel/cache/`` keyed by the reference files' paths, sizes
and content hashes and by the binning, so a later run reads only the current data.

The parts: ``config`` (the check's keys, which columns), ``summary`` (the reference's
cells and bins), ``cache`` (the saved summary), ``comparison`` (the statistics per column),
``kind`` (the criteria).
"""

from __future__ import annotations

from pytest_mlfunnel.engines.protocol import Cell
from pytest_mlfunnel.kinds.drift.comparison import (
    ColumnDrift,
    DriftResult,
    compute_drift,
    ks_from_cells,
)
from pytest_mlfunnel.kinds.drift.config import ColumnType, DriftConfig
from pytest_mlfunnel.kinds.drift.kind import DriftKind
from pytest_mlfunnel.kinds.drift.summary import ColumnSummary

__all__ = ["Cell", "ColumnDrift", "ColumnSummary", "ColumnType", "DriftConfig", "DriftKind",
           "DriftResult", "compute_drift", "ks_from_cells"]

"""CPU seconds of one row-bootstrap comparison at its cap: average_precision and median_ae
against the baseline resample BOOTSTRAP_ROWS (2,000) rows BOOTSTRAP_DRAWS (2,000) times in
pure Python. CPU seconds, not wall time: the load moves them less; the load is printed beside.

    python bench/row_bootstrap.py
"""

from __future__ import annotations

import os
import random
import time

from pytest_mlfunnel.paired import (
    BOOTSTRAP_DRAWS,
    BOOTSTRAP_ROWS,
    RankedScores,
    SortedValues,
    row_bootstrap,
)


def main() -> None:
    rng = random.Random(1)
    m = BOOTSTRAP_ROWS
    y = [rng.random() < 0.3 for _ in range(m)]
    a = [min(1.0, max(0.0, 0.3 * v + 0.7 * rng.random())) for v in y]
    b = [round(min(1.0, max(0.0, 0.2 * v + 0.8 * rng.random())), 2) for v in y]
    model, base = RankedScores(a, y), RankedScores(b, y)
    start = time.process_time()
    row_bootstrap(0.0, 0.0, m, lambda c: model.average_precision(c) - base.average_precision(c),
                  m, "average_precision")
    precision = time.process_time() - start
    errors, other = SortedValues([abs(rng.gauss(0, 1)) for _ in range(m)]), SortedValues(
        [abs(rng.gauss(0, 1.2)) for _ in range(m)])
    start = time.process_time()
    row_bootstrap(0.0, 0.0, m, lambda c: errors.median(c) - other.median(c), m, "median_ae")
    median = time.process_time() - start
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{m} rows x {BOOTSTRAP_DRAWS} resamples: average_precision {precision:.2f} s CPU, "
          f"median_ae {median:.2f} s CPU (load {load})")


if __name__ == "__main__":
    main()

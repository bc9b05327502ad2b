"""Write the example's live data and KPI table: what the model sees, and what it changed.

    python scripts/make_live.py      # data/live/*.parquet, data/kpi.csv

``data/live/`` holds two weeks of scored customers with the feature columns of
``data/customers.parquet`` (drawn the same way, by ``make_data.customers``), except that one
feature has drifted: after a billing outage customers call support more often, so
``support_calls`` moves from Poisson(1.6) to Poisson(2.8). The maintenance gate's drift check
fails on ``support_calls`` and on nothing else.

``data/kpi.csv`` is the effectiveness evidence: one row per region and week, the weekly churn
rate in percent, 12 weeks before the retention team started calling the model's list and 12
weeks after. Churn fell by about a sixth -- a real, significant decrease.

Seeded: every run writes the same rows (dates move with today, like ``make_data.py``).
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_data  # the training data's own generator, so only the drift differs

HERE = Path(__file__).resolve().parent.parent
DATA = HERE / "data"
LIVE = DATA / "live"
REGIONS = 40
WEEKS = 12
CHURN_BEFORE = 2.4  # weekly churn, percent
CHURN_AFTER = 2.0


def live(rng: np.random.Generator, now: dt.datetime) -> pa.Table:
    table = make_data.customers(rng, now).drop_columns(["churned"])  # no labels yet
    calls = np.minimum(rng.poisson(2.8, table.num_rows), 12)
    index = table.schema.get_field_index("support_calls")
    return table.set_column(index, "support_calls", pa.array(calls, pa.int64()))


def kpi(rng: np.random.Generator, today: dt.date) -> list[dict[str, object]]:
    region_level = rng.normal(0.0, 0.35, REGIONS)
    start = today - dt.timedelta(weeks=2 * WEEKS)
    rows: list[dict[str, object]] = []
    for week in range(2 * WEEKS):
        period = "before" if week < WEEKS else "after"
        mean = CHURN_BEFORE if period == "before" else CHURN_AFTER
        for region in range(REGIONS):
            rate = max(0.0, mean + region_level[region] + rng.normal(0.0, 0.45))
            rows.append({"region": f"R{region + 1:02d}",
                         "week": (start + dt.timedelta(weeks=week)).isoformat(),
                         "period": period, "churn_rate_pct": round(rate, 3)})
    return rows


def main() -> None:
    rng = np.random.default_rng(20261205)
    now = dt.datetime.now().replace(microsecond=0)
    LIVE.mkdir(parents=True, exist_ok=True)
    table = live(rng, now)
    half = table.num_rows // 2
    for old in LIVE.glob("*.parquet"):
        old.unlink()
    for name, part in (("week-1", table.slice(0, half)), ("week-2", table.slice(half))):
        pq.write_table(part, LIVE / f"{name}.parquet", compression="zstd")
    with (DATA / "kpi.csv").open("w", newline="", encoding="utf-8") as handle:
        rows = kpi(rng, now.date())
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    calls = pc.mean(table["support_calls"]).as_py()
    print(f"data/live: {table.num_rows} customers in 2 files (support_calls mean {calls:.2f})")
    print(f"data/kpi.csv: {len(rows)} region-weeks")


if __name__ == "__main__":
    main()

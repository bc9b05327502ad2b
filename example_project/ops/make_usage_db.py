"""Write ops/usage.db: four weeks of the churn model's request log, as the service keeps it.

    python ops/make_usage_db.py            # seeded: the same file every time

One row per request to /predict: when, which retention agent asked (user_id), for which
customer, the status code and the latency. Adoption grows week over week, the way the usage
gate hopes to see it. The log ends at a fixed moment so the file is reproducible; the usage
gate's query measures the week up to the newest entry (see the [tool.mlfunnel.sources] usage
query in pyproject.toml).
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from pathlib import Path

HERE = Path(__file__).resolve().parent
END = dt.datetime(2026, 11, 27, 18, 0, 0)
#: Requests and active agents in each of the four weeks before END (oldest first).
WEEKS = [(310, 9), (520, 14), (760, 19), (910, 23)]


def main(path: Path = HERE / "usage.db") -> None:
    rng = random.Random(20261127)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("""
            create table calls (
                ts          text    not null,   -- UTC, ISO 8601
                user_id     integer not null,   -- the retention agent who asked
                customer_id integer not null,
                status      integer not null,
                latency_ms  real    not null
            )""")
        rows = []
        for week, (requests, agents) in enumerate(WEEKS):
            start = END - dt.timedelta(days=7 * (len(WEEKS) - week))
            for _ in range(requests):
                at = start + dt.timedelta(seconds=rng.uniform(0, 7 * 86400))
                status = 200 if rng.random() > 0.004 else rng.choice([422, 503])
                rows.append((at.isoformat(sep=" ", timespec="seconds"),
                             rng.randint(1, agents), rng.randint(10_000, 60_000), status,
                             round(rng.lognormvariate(1.6, 0.35), 2)))
        rows.sort()
        conn.executemany("insert into calls values (?, ?, ?, ?, ?)", rows)
        conn.execute("create index calls_ts on calls (ts)")
    conn.close()
    print(f"wrote {path.relative_to(HERE.parent)}: {len(rows)} requests over "
          f"{len(WEEKS)} weeks up to {END:%Y-%m-%d %H:%M}")


if __name__ == "__main__":
    main()

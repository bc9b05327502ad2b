"""Write the example's data: customers, their reviews and their click sessions.

    python scripts/make_data.py   # data/customers.parquet, reviews.csv, sessions.parquet

Seeded, so every run writes the same rows; only the dates move: they are stamped relative to
today, so the freshness check of the data gate (``signup_date`` within 30 days) holds on the
day the data is made. Re-run it before running the funnel on another day.

Churn is learnable on purpose: it rises with support calls and falls with tenure, so the
model gate has something honest to measure.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent.parent
DATA = HERE / "data"
CUSTOMERS = 5000
PLANS = np.array(["basic", "pro", "team"])
PAGES = np.array(["home", "pricing", "plans", "account", "billing", "support", "cancel",
                  "docs", "invoice", "upgrade"])
GOOD = ["Works well for our team", "Fast and reliable", "Support solved it quickly",
        "Great value", "Easy to set up", "Does what we need"]
BAD = ["Too expensive for what it does", "Support never answered", "Keeps logging me out",
       "Missing the export we need", "Slow since the last update", "Thinking of leaving"]


def customers(rng: np.random.Generator, now: dt.datetime) -> pa.Table:
    ids = rng.permutation(np.arange(100_001, 100_001 + CUSTOMERS))
    plan = rng.choice(PLANS, CUSTOMERS, p=[0.55, 0.30, 0.15])
    tenure = np.minimum(rng.exponential(18, CUSTOMERS).astype(int), 96)
    support = np.minimum(rng.poisson(1.6, CUSTOMERS), 12)
    base = np.select([plan == "basic", plan == "pro"], [19.0, 49.0], 119.0)
    spend = np.round(base * rng.uniform(0.85, 1.3, CUSTOMERS), 2)
    age = rng.integers(18, 80, CUSTOMERS)
    age_missing = rng.random(CUSTOMERS) < 0.03
    logit = -3.0 + 2.0 * (support - 1.6) - 0.16 * (tenure - 18) - 0.004 * (spend - 45)
    churned = (rng.random(CUSTOMERS) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    days = tenure * 30.4 + rng.uniform(0, 30, CUSTOMERS)
    signup = [now - dt.timedelta(days=float(d)) for d in days]
    return pa.table({
        "customer_id": pa.array(ids, pa.int64()),
        "age": pa.array(age, pa.int64(), mask=age_missing),
        "plan": pa.array(plan.astype(str)),
        "tenure_months": pa.array(tenure, pa.int64()),
        "monthly_spend": pa.array(spend, pa.float64()),
        "support_calls": pa.array(support, pa.int64()),
        "signup_date": pa.array(signup, pa.timestamp("us")),
        "churned": pa.array(churned, pa.int64()),
    })


def reviews(rng: np.random.Generator, table: pa.Table) -> pa.Table:
    ids = table["customer_id"].to_numpy()
    churned = table["churned"].to_numpy()
    who = rng.choice(len(ids), 1800, replace=False)
    customer = ids[who]
    # Reviews imported from the old help desk carry its ids, which do not join.
    unknown = rng.random(len(who)) < 0.05
    customer = np.where(unknown, rng.integers(900_000, 999_999, len(who)), customer)
    unhappy = churned[who] == 1
    rating = np.clip(np.where(unhappy, rng.integers(1, 4, len(who)),
                              rng.integers(3, 6, len(who))), 1, 5)
    text = [str(rng.choice(BAD if r <= 2 else GOOD)) for r in rating]
    return pa.table({"customer_id": pa.array(customer, pa.int64()),
                     "rating": pa.array(rating, pa.int64()), "text": pa.array(text)})


def sessions(rng: np.random.Generator, table: pa.Table, now: dt.datetime) -> pa.Table:
    ids = table["customer_id"].to_numpy()
    rows: dict[str, list[object]] = {"session_id": [], "customer_id": [], "step": [], "ts": []}
    for session in range(3000):
        customer = int(rng.choice(ids))
        start = now - dt.timedelta(days=float(rng.uniform(0, 28)))
        length = 1 + int(rng.poisson(3.2))
        for step in range(length):
            rows["session_id"].append(f"s{session:05d}")
            rows["customer_id"].append(customer)
            rows["step"].append(str(rng.choice(PAGES)))
            rows["ts"].append(start + dt.timedelta(seconds=20 * step
                                                   + float(rng.uniform(0, 40))))
    return pa.table({"session_id": pa.array(rows["session_id"]),
                     "customer_id": pa.array(rows["customer_id"], pa.int64()),
                     "step": pa.array(rows["step"]),
                     "ts": pa.array(rows["ts"], pa.timestamp("us"))})


def main() -> None:
    rng = np.random.default_rng(20261128)
    now = dt.datetime.now().replace(microsecond=0)
    DATA.mkdir(exist_ok=True)
    table = customers(rng, now)
    pq.write_table(table, DATA / "customers.parquet", compression="zstd")
    pacsv.write_csv(reviews(rng, table), DATA / "reviews.csv")
    pq.write_table(sessions(rng, table, now), DATA / "sessions.parquet", compression="zstd")
    for path in sorted(DATA.iterdir()):
        print(f"{path.relative_to(HERE)}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

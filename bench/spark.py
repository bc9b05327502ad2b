"""Spark: the dataset pass in Spark SQL against a hand-written PySpark job computing the same.

    pip install -e '.[spark]' numpy pyarrow        # and Java 17
    python bench/spark.py                          # 2,000,000 rows; --rows N, --repeat R

Writes (seeded) N rows x 7 columns as Parquet under bench/data/ (git-ignored, kept between
runs), starts one pyspark ``local[2]`` session (shuffle partitions 2, UI off) and measures,
as ratios to a baseline measured in the same run, the two run in turn in every round:

  profile      the funnel's one pass for a dataset check: rows, nulls of every column,
               min/max of the numeric ones, allowed values of the categorical ones, through
               the code the ``dataset`` kind calls (``open_table`` + planned aggregates on a
               ``{ spark = "events" }`` source), against the same aggregates written as one
               ``DataFrame.agg`` by hand
  + dup/unique the same plus duplicate rows and an exact distinct count of the key, against
               the hand-written job doing the same (``agg`` with ``countDistinct`` and a
               ``distinct().count()``)

Only the data part is timed: the session, the Parquet scan's schema and the plan are made
once; each round opens the table afresh (no cached answers) and computes. Figures are the
medians over rounds, the ratio the median of the per-round ratios; the machine's load average
is printed beside them (a shared machine's figures move with it; the ratio is the one to read).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
NUMERIC = ["key", "age", "calls", "spend"]
CATEGORIES = {"plan": ["basic", "pro", "team", "enterprise"],
              "country": [f"c{i:02d}" for i in range(20)]}
COLUMNS = ["key", "age", "calls", "spend", "plan", "country", "ts"]
TARGET = 1.3


def generate(rows: int, path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(42)
    key = np.arange(rows, dtype=np.int64)
    repeat = rng.random(rows) < 0.001  # some repeated keys
    key[repeat] = rng.integers(0, rows, int(repeat.sum()))

    def with_nulls(values: Any, share: float) -> Any:
        return pa.array(values, mask=rng.random(rows) < share)

    table = pa.table({
        "key": key,
        "age": with_nulls(rng.integers(18, 90, rows), 0.02),
        "calls": rng.poisson(3, rows).astype(np.int64),
        "spend": with_nulls(rng.gamma(2.0, 30.0, rows).round(2), 0.01),
        "plan": with_nulls(rng.choice(CATEGORIES["plan"], rows), 0.01),
        "country": rng.choice(CATEGORIES["country"], rows),
        "ts": pa.array(np.datetime64("2026-01-01") + rng.integers(0, 86400 * 300, rows)
                       .astype("timedelta64[s]")),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=256_000)


def start_spark() -> Any:
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("mlfunnel-bench")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "2g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def profile_aggs(extra: bool) -> list[Any]:
    from pytest_mlfunnel.engines.protocol import Agg

    aggs = [Agg("rows")] + [Agg("nulls", c) for c in COLUMNS]
    aggs += [Agg(op, c) for c in NUMERIC for op in ("min", "max")]
    aggs += [Agg("not_in", c, values) for c, values in CATEGORIES.items()]
    if extra:
        aggs += [Agg("duplicate_rows"), Agg("count", "key"), Agg("distinct", "key")]
    return aggs


def funnel_pass(spark: Any, extra: bool) -> list[Any]:
    """What the dataset kind does for a check with these constraints: plan, then one pass."""
    from pytest_mlfunnel.context import EvalContext
    from pytest_mlfunnel.sources.spec import SourceSpec
    from pytest_mlfunnel.sources.tabular import open_table, plan_aggregates

    spec = SourceSpec(spark="events")
    shared: dict[Any, Any] = {}
    aggs = profile_aggs(extra)
    plan_aggregates(shared, spec, aggs)
    table = open_table(spec, EvalContext(rootdir=HERE, fixtures={
        "mlfunnel_spark_session": spark}, shared=shared))
    return table.aggregate(aggs)


def by_hand(spark: Any, extra: bool) -> list[Any]:
    """The same aggregates as a PySpark job written for them: one ``agg`` over the frame."""
    from pyspark.sql import functions as F

    frame = spark.table("events")
    columns = [F.count(F.lit(1))]
    columns += [F.count(F.when(F.col(c).isNull(), 1)) for c in COLUMNS]
    columns += [f(F.col(c)) for c in NUMERIC for f in (F.min, F.max)]
    columns += [F.count(F.when(~F.col(c).isin(values), 1)) for c, values in CATEGORIES.items()]
    if extra:
        columns += [F.count("key"), F.countDistinct("key")]
    row = list(frame.agg(*columns).collect()[0])
    if extra:
        row.append(row[0] - frame.distinct().count())
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import figure_line, header, rounds

    path = DATA / f"spark_events_{args.rows}.parquet"
    if not path.exists():
        generate(args.rows, path)
    spark = start_spark()
    spark.read.parquet(str(path)).createOrReplaceTempView("events")
    print(header(f"{args.rows:,} rows x {len(COLUMNS)} columns", "pyspark local[2]",
                 f"median of {args.repeat} rounds"))
    for extra, label in ((False, "profile"), (True, "+ duplicate rows, exact unique")):
        mine, theirs = funnel_pass(spark, extra), by_hand(spark, extra)  # warm-up, and a check
        if extra:
            assert theirs[-1] == mine[-3], (theirs[-1], mine[-3])
        assert mine[0] == theirs[0] == args.rows
        base, measured = rounds(args.repeat, lambda e=extra: by_hand(spark, e),
                                lambda e=extra: funnel_pass(spark, e))
        ratio = statistics.median(m / b for b, m in zip(base, measured, strict=True))
        print(figure_line(f"{label}: hand-written PySpark", statistics.median(base)))
        print(figure_line(f"{label}: funnel pass (Spark SQL)", statistics.median(measured),
                          ratio, f"target <= {TARGET}x"))
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

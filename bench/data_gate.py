"""Data gate speed: the dataset kind's one pass against the cost of reading the data.

    python -m venv bench/.venv-data
    bench/.venv-data/bin/pip install -e . -r bench/requirements-data.txt
    bench/.venv-data/bin/python bench/data_gate.py            # 10M rows; --rows N to change

Writes (seeded) N rows x 11 columns as Parquet and CSV under bench/data/ (git-ignored, kept
between runs), then measures in one run, as ratios to baselines measured in the same run:

  floor        pyarrow.parquet.read_table of the whole Parquet file
  (a) profile  rows, nulls on all columns, min/max on numerics, allowed values on categoricals
  (b) + unique (a) plus an exact distinct count of the key
  (c) CSV      (a) from the CSV file, against one DuckDB parse of that file
  (d) RSS      peak resident memory of (a) in a fresh process, against the Arrow size of the
               columns it touches (and the same process doing nothing but imports)
  (e) pandera  pandera's polars backend validating the same checks on the Parquet file

Timings are the best of ``--repeat`` rounds with a warm file cache; the two sides of each
ratio alternate within every round, so both see the same load. (a)-(c) go through the
same code the ``dataset`` kind calls (``open_table`` + planned aggregates).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
NUMERIC = ["key", "age", "tenure", "calls", "spend", "score", "balance"]
FLOATS = ["spend", "score", "balance"]
CATEGORIES = {
    "plan": ["basic", "pro", "team", "enterprise"],
    "country": [f"c{i:02d}" for i in range(20)],
    "device": ["ios", "android", "web", "desktop", "tv"],
}
COLUMNS = ["key", "age", "tenure", "calls", "spend", "score", "balance", "plan", "country",
           "device", "ts"]


def generate(rows: int, parquet: Path, csv: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(42)
    key = np.arange(rows, dtype=np.int64)
    repeat = rng.random(rows) < 0.001  # some duplicated keys
    key[repeat] = rng.integers(0, rows, int(repeat.sum()))
    columns: dict[str, Any] = {
        "key": key,
        "age": rng.integers(18, 90, rows),
        "tenure": rng.integers(0, 120, rows),
        "calls": rng.poisson(1.5, rows).astype(np.int64),
    }
    for i, name in enumerate(FLOATS):
        values = rng.normal(50 * (i + 1), 10, rows)
        columns[name] = pa.array(values, mask=rng.random(rows) < 0.02 * (i + 1))
    for name, values in CATEGORIES.items():
        columns[name] = pa.array(np.asarray(values)[rng.integers(0, len(values), rows)])
    start = np.datetime64("2026-01-01T00:00:00", "s")
    columns["ts"] = start + rng.integers(0, 300 * 86400, rows).astype("timedelta64[s]")
    table = pa.table(columns)
    DATA.mkdir(exist_ok=True)
    pq.write_table(table, parquet, row_group_size=1_000_000)
    pacsv.write_csv(table, csv)


def profile_aggs(unique: bool) -> list[Any]:
    from pytest_mlfunnel.engines.protocol import Agg

    aggs = [Agg("rows")] + [Agg("nulls", c) for c in COLUMNS]
    aggs += [Agg(op, c) for c in NUMERIC for op in ("min", "max")]
    aggs += [Agg("not_in", c, values) for c, values in CATEGORIES.items()]
    if unique:
        aggs += [Agg("count", "key"), Agg("distinct", "key")]
    return aggs


def run_profile(path: Path, unique: bool) -> list[Any]:
    """What the dataset kind does for a check with these constraints: plan, then one pass."""
    from pytest_mlfunnel.kinds.base import EvalContext
    from pytest_mlfunnel.sources.spec import SourceSpec
    from pytest_mlfunnel.sources.tabular import open_table, plan_aggregates

    spec = SourceSpec(path=str(path))
    shared: dict[Any, Any] = {}
    aggs = profile_aggs(unique)
    plan_aggregates(shared, spec, aggs)
    table = open_table(spec, EvalContext(rootdir=HERE, fixtures={}, shared=shared))
    return table.aggregate(aggs)


def read_floor(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(path).num_rows


def duckdb_parse(path: Path) -> Any:
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"CREATE TEMP TABLE parsed AS SELECT * FROM read_csv('{path}')")
    return connection.execute("SELECT count(*) FROM parsed").fetchone()


def pandera_validate(path: Path, rows: int) -> Any:
    """The same checks, written as a pandera schema for its polars backend."""
    os.environ["PANDERA_VALIDATION_DEPTH"] = "SCHEMA_AND_DATA"
    import pandera.polars as pa
    import polars as pl

    def null_share_at_most(share: float) -> Any:
        return pa.Check(lambda data: data.lazyframe.select(
            pl.col(data.key).null_count() <= share * pl.len()), name="null_share")

    columns: dict[str, Any] = {}
    for name in COLUMNS:
        checks = [null_share_at_most(0.10)]
        if name in NUMERIC:
            checks.append(pa.Check.in_range(-1e12, 1e12))
        if name in CATEGORIES:
            checks.append(pa.Check.isin(CATEGORIES[name]))
        columns[name] = pa.Column(nullable=True, checks=checks)
    schema = pa.DataFrameSchema(columns, checks=[pa.Check(
        lambda data: data.lazyframe.select(pl.len() >= rows // 2), name="rows")])
    return schema.validate(pl.scan_parquet(path), lazy=True).collect().height


def best_of(repeat: int, *actions: Callable[[], Any]) -> list[float]:
    """Best time of each action over ``repeat`` rounds, the actions interleaved in every
    round so that a ratio compares runs made under the same load."""
    best = [float("inf")] * len(actions)
    for _ in range(repeat):
        for i, action in enumerate(actions):
            started = time.perf_counter()
            action()
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def peak_rss(mode: str, path: Path) -> int:
    """Peak RSS (bytes) of a fresh process doing one thing."""
    code = (f"import sys; sys.path.insert(0, {str(HERE.parent)!r}); import bench.data_gate as b;"
            f" b.child({mode!r}, {str(path)!r})")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["rss"])


def child(mode: str, path: str) -> None:
    import duckdb  # noqa: F401  (the imports are part of the idle baseline)

    import pytest_mlfunnel.engines.sql  # noqa: F401

    if mode == "profile":
        run_profile(Path(path), unique=False)
    elif mode == "floor":
        read_floor(Path(path))
    # VmHWM, not ru_maxrss: Linux carries a parent's ru_maxrss into its children.
    status = Path("/proc/self/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmHWM:"))
    print(json.dumps({"rss": peak_kib * 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    parquet = DATA / f"rows{args.rows}.parquet"
    csv = DATA / f"rows{args.rows}.csv"
    if not parquet.exists() or not csv.exists():
        print(f"generating {args.rows:,} rows x {len(COLUMNS)} columns ...", flush=True)
        generate(args.rows, parquet, csv)
    import duckdb
    import pyarrow.parquet as pq

    print(f"{args.rows:,} rows x {len(COLUMNS)} columns · Parquet "
          f"{parquet.stat().st_size / 2**20:.0f} MiB · CSV {csv.stat().st_size / 2**20:.0f} MiB"
          f" · {os.cpu_count()} cores · duckdb {duckdb.__version__} · "
          f"{dt.date.today().isoformat()}")
    check = run_profile(parquet, unique=True)
    assert check[0] == args.rows, check[0]

    def show(label: str, seconds: float, ratio: float | None = None, target: str = "") -> None:
        shown = f"{ratio:5.2f}x" if ratio is not None else "      "
        print(f"{label:<40} {seconds:7.3f} s  {shown}  {target}", flush=True)

    print()
    floor, profile, unique = best_of(args.repeat, lambda: read_floor(parquet),
                                     lambda: run_profile(parquet, unique=False),
                                     lambda: run_profile(parquet, unique=True))
    show("floor: pyarrow.parquet.read_table", floor)
    show("(a) profile criteria, Parquet", profile, profile / floor, "target <= 1.0x floor")
    show("(b) (a) + exact unique key", unique, unique / floor, "target <= 1.6x floor")
    parse, from_csv = best_of(args.repeat, lambda: duckdb_parse(csv),
                              lambda: run_profile(csv, unique=False))
    show("    one DuckDB parse of the CSV", parse)
    show("(c) (a) from CSV", from_csv, from_csv / parse, "target <= 1.2x one parse")
    arrow_touched = pq.read_table(parquet, columns=COLUMNS).nbytes  # (a) touches every column
    rss_profile = peak_rss("profile", parquet)
    rss_idle = peak_rss("idle", parquet)
    rss_floor = peak_rss("floor", parquet)
    print()
    print(f"(d) peak RSS of (a)                      {rss_profile / 2**20:7.0f} MiB  "
          f"{rss_profile / arrow_touched:5.2f}x  target <= 1.0x Arrow size of touched columns "
          f"({arrow_touched / 2**20:.0f} MiB)")
    print(f"    same process, imports only           {rss_idle / 2**20:7.0f} MiB")
    print(f"    pyarrow read_table (the floor)       {rss_floor / 2**20:7.0f} MiB", flush=True)
    try:
        pandera_time, profile = best_of(args.repeat,
                                        lambda: pandera_validate(parquet, args.rows),
                                        lambda: run_profile(parquet, unique=False))
    except ModuleNotFoundError as exc:
        print(f"(e) pandera: not installed ({exc.name}); see bench/requirements-data.txt")
        return
    import pandera

    print(f"(e) pandera {pandera.__version__} (polars), same checks {pandera_time:7.3f} s  "
          f"{pandera_time / profile:5.2f}x the time of (a)  target >= 2x")


if __name__ == "__main__":
    main()

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

Named scenarios (``--scenario NAME``) measure other shapes, each against pyarrow's
``read_table`` of the whole file as the floor, as the median over rounds of the paired ratio
(bench/measure.py), with the peak RSS of a fresh process against the file's Arrow size:

  keys     50M x 3 (a random 64-bit key, a float with nulls, a 4-value string; 0.01% of the
           rows repeat an earlier row whole): profile; + exact unique key; + duplicates;
           + both with approx = true; polars doing the same profile with each exact
           stage, for scale, when polars is installed
  wide     2M x 120 (60 floats with NaN and nulls, 30 ints, 20 low-cardinality strings, 10
           UUID strings): profile; + duplicates + unique on a UUID column; the profile
           in a fresh process against pandera-polars and Great Expectations 1.x (``--tools``)
  funnel   1M x 120 (60 floats with NaN and nulls, 40 ints, 20 low-cardinality strings): the
           whole ``pytest --funnel`` against pandera-polars with data checks on
           (PANDERA_VALIDATION_DEPTH=SCHEMA_AND_DATA) and Great Expectations 1.x, same checks;
           each fresh process's CPU seconds beside the wall-time ratio (GX's rounds capped
           at ``--gx-repeat``, 1 by default: minutes per run)
  drift    3M x 40 per side (30 numeric, 10 categorical, one with 50k values), PSI+KS+JS,
           against reading both files
  growth   the keys shape at 1M, 4M, 16M, 50M rows, profile + unique + duplicates: the
           least-squares slope (seconds per million rows) against the floor's
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import (  # noqa: E402
    MIB,
    alternating,
    figure_line,
    header,
    memory_line,
    paired,
    peak_rss,
)

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


def child(mode: str, path: str) -> None:
    import duckdb  # noqa: F401  (the imports are part of the idle baseline)

    import pytest_mlfunnel.engines.sql  # noqa: F401

    if mode == "profile":
        run_profile(Path(path), unique=False)
    elif mode == "floor":
        read_floor(Path(path))


# --------------------------------------------------------------------------- scenarios
KEY_ROWS = 50_000_000


def keys_file(rows: int) -> Path:
    """rows x 3: a random 64-bit key, a lognormal float with 2% nulls, a 4-value string;
    0.01% of the rows copy an earlier row whole (so the key repeats there too)."""
    path = DATA / f"keys{rows}.parquet"
    if path.exists():
        return path
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"generating {rows:,} rows x 3 ...", flush=True)
    rng = np.random.default_rng(7)
    key = rng.integers(-2**63, 2**63 - 1, rows, dtype=np.int64)
    amount = rng.lognormal(3, 1, rows)
    plan = np.array(["basic", "pro", "team", "enterprise"])[rng.integers(0, 4, rows)]
    copies = rng.choice(rows, rows // 10000, replace=False)
    source = rng.integers(0, rows, copies.size)
    key[copies], amount[copies], plan[copies] = key[source], amount[source], plan[source]
    nulls = rng.random(rows) < 0.02
    nulls[copies] = nulls[source]
    DATA.mkdir(exist_ok=True)
    pq.write_table(pa.table({"key": key, "amount": pa.array(amount, mask=nulls),
                             "plan": pa.array(plan)}), path, row_group_size=1_000_000)
    return path


def wide_file(rows: int, uuids: int, ints: int) -> Path:
    """rows x 120: 60 floats (1% NaN, 2% nulls), ``ints`` integer columns, 20 strings of 5-50
    values, ``uuids`` UUID strings (the first unique, the others from a pool with repeats)."""
    path = DATA / f"wide{rows}-{uuids}.parquet"
    if path.exists():
        return path
    import uuid

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"generating {rows:,} rows x 120 ...", flush=True)
    rng = np.random.default_rng(11)
    columns: dict[str, Any] = {}
    for i in range(60):
        values = rng.normal(i, 1 + i % 7, rows)
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"f{i}"] = pa.array(values, mask=rng.random(rows) < 0.02)
    for i in range(ints):
        columns[f"i{i}"] = rng.integers(0, 10 ** (2 + i % 6), rows)
    for i in range(20):
        labels = np.array([f"v{i}_{k}" for k in range(5 + 45 * (i % 2))])
        columns[f"s{i}"] = pa.array(labels[rng.integers(0, labels.size, rows)])
    for i in range(uuids):
        count = rows if i == 0 else rows // 4
        pool = np.array([str(uuid.UUID(int=int(v))) for v in
                         rng.integers(0, 2**63, count, dtype=np.int64)], dtype=object)
        columns[f"u{i}"] = pa.array(pool if i == 0 else pool[rng.integers(0, count, rows)])
    DATA.mkdir(exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=500_000)
    return path


def profile_of(path: Path, unique: str | None = None, duplicates: bool = False,
               approx: bool = False) -> list[Any]:
    """The profile of any file: rows, nulls of every column, min/max of numbers, allowed
    values of strings with few values; then the exact (or estimated) unique and duplicates."""
    from pytest_mlfunnel.engines.protocol import Agg

    schema = file_schema(path)
    aggs = [Agg("rows")] + [Agg("nulls", c) for c in schema]
    aggs += [Agg(op, c) for c, t in schema.items() if t in ("int", "float")
             for op in ("min", "max")]
    aggs += [Agg("not_in", c, ["basic", "pro", "team", "enterprise"] if c == "plan" else
                 [f"v{c[1:]}_{k}" for k in range(50)])
             for c, t in schema.items() if t == "string" and (c == "plan" or c[0] == "s")]
    if unique:
        aggs += [Agg("count", unique), Agg("approx_distinct" if approx else "distinct", unique)]
    if duplicates:
        aggs.append(Agg("approx_duplicate_rows" if approx else "duplicate_rows"))
    return aggs


def file_schema(path: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    kinds = {"int64": "int", "double": "float", "string": "string", "large_string": "string"}
    return {f.name: kinds.get(str(f.type), "other") for f in pq.read_schema(path)}


def run_aggs(path: Path, aggs: list[Any]) -> list[Any]:
    from pytest_mlfunnel.kinds.base import EvalContext
    from pytest_mlfunnel.sources.spec import SourceSpec
    from pytest_mlfunnel.sources.tabular import open_table, plan_aggregates

    spec = SourceSpec(path=str(path))
    shared: dict[Any, Any] = {}
    plan_aggregates(shared, spec, aggs)
    return open_table(spec, EvalContext(rootdir=HERE, fixtures={}, shared=shared)
                      ).aggregate(aggs)


VARIANTS = {
    "profile": {},
    "+ unique": {"unique": True},
    "+ duplicates": {"duplicates": True},
    "+ unique + duplicates": {"unique": True, "duplicates": True},
    "+ both, approx": {"unique": True, "duplicates": True, "approx": True},
}


def rss_child(path: str, variant: str, unique: str) -> None:
    """What the RSS lines measure in a fresh process: one variant's pass, or the floor."""
    if variant == "floor":
        read_floor(Path(path))
    elif variant != "idle":
        options = dict(VARIANTS[variant])
        run_aggs(Path(path), profile_of(Path(path), unique=unique if options.pop(
            "unique", False) else None, **options))


def measure_variants(path: Path, unique: str, variants: list[str], repeat: int,
                     targets: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    """Each variant against the floor (paired rounds), then its peak RSS: name -> (seconds,
    ratio, rss)."""
    import pyarrow.parquet as pq

    arrow = pq.read_table(path).nbytes
    print(header(f"{path.name}", f"Arrow size {arrow / MIB:.0f} MiB"), flush=True)
    found: dict[str, tuple[float, float, int]] = {}
    for name in variants:
        options = dict(VARIANTS[name])
        aggs = profile_of(path, unique=unique if options.pop("unique", False) else None,
                          **options)
        result = paired(repeat, lambda: read_floor(path), lambda a=aggs: run_aggs(path, a))
        rss = peak_rss(rss_child, str(path), name, unique)
        found[name] = (result.measured, result.ratio, rss)
        print(figure_line(f"{name}", result.measured, result.ratio,
                          f"x floor ({result.baseline:.2f} s)  {targets.get(name, '')}"))
        print(memory_line("   peak RSS", rss, rss / arrow, "x Arrow size"), flush=True)
    return found


def scenario_keys(args: argparse.Namespace) -> None:
    path = keys_file(args.rows or KEY_ROWS)
    run_aggs(path, profile_of(path, unique="key", duplicates=True))  # warm the file cache
    measure_variants(path, "key", list(VARIANTS), args.repeat, {
        "profile": "target <= 1.0x", "+ unique": "target <= 1.6x",
        "+ duplicates": "target <= 2.0x, RSS <= 1.0x"})
    try:
        import polars  # noqa: F401
    except ModuleNotFoundError:
        print("polars: not installed, no peer for the exact stages")
        return
    for name in ("+ unique", "+ duplicates"):
        options = dict(VARIANTS[name])
        aggs = profile_of(path, unique="key" if options.pop("unique", False) else None,
                          **options)
        peer = polars_keys(path, name)
        floor = paired(args.repeat, lambda: read_floor(path), peer)
        print(figure_line(f"polars, {name[2:]}", floor.measured, floor.ratio,
                          f"x floor ({floor.baseline:.2f} s)"), flush=True)
        ours = paired(args.repeat, lambda a=aggs: run_aggs(path, a), peer)
        print(figure_line(f"polars, {name[2:]}, against ours", ours.measured, ours.ratio,
                          f"x ours ({ours.baseline:.2f} s)"), flush=True)
        theirs = cpu_seconds(peer, children=False)
        mine = cpu_seconds(lambda a=aggs: run_aggs(path, a), children=False)
        print(f"   CPU seconds: polars {theirs:.2f}, ours {mine:.2f}: {theirs / mine:.2f}x  "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)


def polars_keys(path: Path, variant: str) -> Callable[[], Any]:
    """The keys scenario's profile and one exact stage in polars, for scale: the same rows,
    null counts, bounds and allowed values in one lazy query, with the key's exact distinct
    count (``n_unique``) or the rows that repeat an earlier row whole (``is_duplicated``,
    which flags every copy: its count is not the funnel's, the work is the same)."""
    import polars as pl

    def run() -> Any:
        frame = pl.scan_parquet(path)
        exprs = [pl.len()] + [pl.col(c).null_count().alias(f"n_{c}")
                             for c in ("key", "amount", "plan")]
        exprs += [pl.col("key").min().alias("lo_key"), pl.col("key").max().alias("hi_key"),
                  pl.col("amount").min().alias("lo"), pl.col("amount").max().alias("hi"),
                  (~pl.col("plan").is_in(["basic", "pro", "team", "enterprise"])).sum()
                  .alias("outside")]
        if variant == "+ unique":
            exprs.append(pl.col("key").n_unique().alias("distinct"))
        else:
            exprs.append(pl.struct(pl.all()).is_duplicated().sum().alias("duplicates"))
        return frame.select(exprs).collect()
    return run


def scenario_wide(args: argparse.Namespace) -> None:
    path = wide_file(args.rows or 2_000_000, uuids=10, ints=30)
    run_aggs(path, profile_of(path))
    measure_variants(path, "u0", ["profile", "+ unique + duplicates"], args.repeat,
                     {"+ unique + duplicates": "target <= 1.6x"})
    compile_package()
    compare_tools(args, path, tool_process("ours_wide", path),
                  "the profile (fresh process)")


def compile_package() -> None:
    """The package's bytecode, as a pip install writes it: an editable checkout run with
    PYTHONDONTWRITEBYTECODE would compile every module of it in each fresh process."""
    import compileall

    compileall.compile_dir(str(HERE.parent / "pytest_mlfunnel"), quiet=1)


def ours_wide(path: str) -> None:
    """The wide scenario's profile as a CI step runs it: imports, plan, one pass."""
    run_aggs(Path(path), profile_of(Path(path)))


def compare_tools(args: argparse.Namespace, path: Path, ours: Callable[[], Any],
                  label: str) -> None:
    """Each tool of ``--tools`` against ``ours`` in paired rounds of fresh processes, with
    the CPU seconds of one more run of each (children's user + system)."""
    tools = {"pandera": ("pandera-polars (SCHEMA_AND_DATA)", "pandera_wide", args.repeat),
             # minutes per run: its rounds are capped at --gx-repeat
             "gx": ("Great Expectations 1.x (pandas)", "gx_wide", args.gx_repeat)}
    for name in args.tools.split(","):
        title, function, repeat = tools[name]
        try:
            tool_process(function, path)()
        except subprocess.CalledProcessError as exc:
            print(f"{title}: cannot run: {exc.stderr.decode()[-300:]}")
            continue
        result = paired(repeat, ours, tool_process(function, path))
        print(figure_line(f"{title} vs {label}", result.measured, result.ratio,
                          f"x ours ({result.baseline:.2f} s)  target >= 2x"), flush=True)
        theirs, mine = cpu_seconds(tool_process(function, path)), cpu_seconds(ours)
        print(f"   CPU seconds: {title.split(' ')[0]} {theirs:.2f}, ours {mine:.2f}: "
              f"{theirs / mine:.2f}x  (load {os.getloadavg()[0]:.2f})", flush=True)


def cpu_seconds(action: Callable[[], Any], children: bool = True) -> float:
    """User + system seconds of the children ``action`` runs (fresh processes), or with
    ``children=False`` of this process's own threads while it runs."""
    before = os.times()
    action()
    after = os.times()
    if not children:
        return after.user - before.user + after.system - before.system
    return (after.children_user - before.children_user
            + after.children_system - before.children_system)


def drift_files(rows: int) -> tuple[Path, Path]:
    """rows x 40 per side: 10 lognormal, 8 bimodal floats, 10 integer counts with ties, a
    constant float and a constant integer, 10 strings (one of 50k values, Zipf-like); the
    current side drifts in some of each."""
    reference, current = DATA / f"drift40-ref-{rows}.parquet", DATA / f"drift40-cur-{rows}.parquet"
    if reference.exists() and current.exists():
        return reference, current
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"generating 2 x {rows:,} rows x 40 ...", flush=True)
    for path, seed, shift in ((reference, 3, 0.0), (current, 4, 0.2)):
        rng = np.random.default_rng(seed)
        columns: dict[str, Any] = {}
        for i in range(10):
            columns[f"n{i}"] = rng.lognormal(i % 5 + (shift if i < 3 else 0), 1.0, rows)
        for i in range(8):
            mode = rng.random(rows) < 0.5 + (shift if i < 2 else 0)
            columns[f"b{i}"] = np.where(mode, rng.normal(0, 1, rows),
                                        rng.normal(10 + i, 0.5, rows))
        for i in range(10):
            columns[f"t{i}"] = (rng.poisson(1 + i, rows) if i < 5 else
                                rng.integers(0, 5000 * (i - 3), rows)).astype(np.int64)
        columns["const_f"] = np.full(rows, 1.5)
        columns["const_i"] = np.full(rows, 7, dtype=np.int64)
        weights = 1 / np.arange(1, 50_001) ** (1.1 + shift)
        big = np.array([f"item{k:05d}" for k in range(50_000)])
        columns["k0"] = pa.array(big[rng.choice(50_000, rows, p=weights / weights.sum())])
        for i in range(1, 10):
            labels = np.array([f"l{i}_{k}" for k in range(3 + 20 * i)])
            columns[f"k{i}"] = pa.array(labels[rng.integers(0, labels.size, rows)])
        DATA.mkdir(exist_ok=True)
        pq.write_table(pa.table(columns), path, row_group_size=1_000_000)
    return reference, current


def run_wide_drift(reference: str, current: str) -> None:
    from pytest_mlfunnel.kinds.base import EvalContext
    from pytest_mlfunnel.kinds.drift import DriftConfig, compute_drift

    check = DriftConfig.model_validate(
        {"drift": {"reference": reference, "current": current},
         "expect": {"psi": "<= 0.2", "ks": "<= 0.1", "js": "<= 0.1"}, "cache": False},
        context={"sources": {}, "key_path": "bench.drift"})
    result = compute_drift(check, EvalContext(rootdir=DATA, fixtures={}, shared={}))
    errors = {c: d.error for c, d in result.columns.items() if d.error}
    assert not errors, errors


def drift_parts(reference: str, current: str) -> dict[str, float]:
    """One run of the wide drift with each query timed: wall seconds per part (the reference's
    cells, its split cells, its categorical counts, the same for the current side, and the
    rest: footers, Python's statistics)."""
    import time

    from pytest_mlfunnel.engines.sql import SqlEngine

    parts: dict[str, float] = {}
    original = SqlEngine.run

    def timed(engine: SqlEngine, sql: str, purpose: str) -> list[tuple[Any, ...]]:
        side = "reference" if Path(engine.display).name == Path(reference).name else "current"
        part = {"cells": "cells", "aggregate": "categorical counts",
                "value_counts": "categorical counts"}.get(purpose, "other")
        if part == "cells" and f"{side} cells" in parts:
            part = "split cells"
        started = time.perf_counter()
        try:
            return original(engine, sql, purpose)
        finally:
            key = f"{side} {part}"
            parts[key] = parts.get(key, 0.0) + time.perf_counter() - started

    SqlEngine.run = timed  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        run_wide_drift(reference, current)
        total = time.perf_counter() - started
    finally:
        SqlEngine.run = original  # type: ignore[method-assign]
    parts["rest (footers, Python)"] = total - sum(parts.values())
    parts["total"] = total
    return parts


def scenario_drift(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    reference, current = drift_files(args.rows or 3_000_000)
    arrow = pq.read_table(reference).nbytes + pq.read_table(current).nbytes
    print(header(f"{reference.name} + {current.name}", f"Arrow size {arrow / MIB:.0f} MiB"))
    run_wide_drift(str(reference), str(current))
    result = paired(args.repeat, lambda: (read_floor(reference), read_floor(current)),
                    lambda: run_wide_drift(str(reference), str(current)))
    print(figure_line("PSI + KS + JS on 40 columns, no saved summary", result.measured,
                      result.ratio, f"x reading both ({result.baseline:.2f} s)  target <= 2.5x"))
    rss = peak_rss(run_wide_drift, str(reference), str(current))
    print(memory_line("   peak RSS", rss, rss / arrow, "x Arrow size"), flush=True)
    print("where the time goes (one more run, each query timed):")
    for part, seconds in drift_parts(str(reference), str(current)).items():
        print(figure_line(f"   {part}", seconds), flush=True)


def wide_rules(path: Path) -> dict[str, dict[str, Any]]:
    """The funnel scenario's checks, per column: nulls share, a range on numbers, allowed
    values on strings (the same for every tool)."""
    rules: dict[str, dict[str, Any]] = {}
    for column, dtype in file_schema(path).items():
        rule: dict[str, Any] = {"nulls": 0.10}
        if dtype in ("int", "float"):
            rule.update(min=-1e12, max=1e12)
        elif column.startswith("s"):
            rule["values"] = [f"v{column[1:]}_{k}" for k in range(50)]
        rules[column] = rule
    return rules


def funnel_project(path: Path, folder: Path) -> Path:
    # [tool.pytest.ini_options] makes this folder the rootdir (the repository's is above it)
    lines = ["[tool.pytest.ini_options]", "", "[tool.mlfunnel.data.wide]",
             f'dataset = "{path}"', 'rows = ">= 1"']
    for column, rule in wide_rules(path).items():
        parts = [f'nulls = "<= {rule["nulls"]:.0%}"']
        if "min" in rule:
            parts += [f"min = {rule['min']:.0f}", f"max = {rule['max']:.0f}"]
        if "values" in rule:
            parts.append("values = [" + ", ".join(f'"{v}"' for v in rule["values"]) + "]")
        lines.append(f"columns.{column} = {{ {', '.join(parts)} }}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return folder


def range_or_nan(low: float, high: float) -> Callable[[Any], Any]:
    """A pandera-polars check: within [low, high], or NaN (a null to the funnel)."""
    import polars as pl

    def check(data: Any) -> Any:
        return data.lazyframe.select(pl.col(data.key).is_between(low, high)
                                     | pl.col(data.key).is_nan())
    return check


def pandera_wide(path: str) -> None:
    """The funnel scenario's checks as a pandera schema (polars backend, data checks on)."""
    os.environ["PANDERA_VALIDATION_DEPTH"] = "SCHEMA_AND_DATA"
    import pandera.polars as pa
    import polars as pl

    def null_share(share: float) -> Any:
        return pa.Check(lambda data: data.lazyframe.select(
            pl.col(data.key).null_count() <= share * pl.len()), name="null_share")

    columns: dict[str, Any] = {}
    for column, rule in wide_rules(Path(path)).items():
        checks = [null_share(rule["nulls"])]
        if "min" in rule and column.startswith("f"):
            # NaN is a null to the funnel; in_range would fail it
            checks.append(pa.Check(range_or_nan(rule["min"], rule["max"]),
                                   name="range_or_nan"))
        elif "min" in rule:
            checks.append(pa.Check.in_range(rule["min"], rule["max"]))
        if "values" in rule:
            checks.append(pa.Check.isin(rule["values"]))
        columns[column] = pa.Column(nullable=True, checks=checks)
    schema = pa.DataFrameSchema(columns, checks=[pa.Check(
        lambda data: data.lazyframe.select(pl.len() >= 1), name="rows")])
    schema.validate(pl.scan_parquet(path), lazy=True).collect()


def gx_wide(path: str) -> None:
    """The funnel scenario's checks as a Great Expectations 1.x suite on a pandas frame."""
    import great_expectations as gx
    import pandas as pd

    frame = pd.read_parquet(path)
    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("bench").add_dataframe_asset("wide")
             .add_batch_definition_whole_dataframe("all").get_batch(
                 batch_parameters={"dataframe": frame}))
    suite = gx.ExpectationSuite(name="wide")
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    for column, rule in wide_rules(Path(path)).items():
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(
            column=column, mostly=1 - rule["nulls"]))
        if "min" in rule:
            suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(
                column=column, min_value=rule["min"], max_value=rule["max"]))
        if "values" in rule:
            suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(
                column=column, value_set=rule["values"]))
    batch.validate(suite)


def tool_process(function: str, path: Path) -> Callable[[], Any]:
    """A fresh process doing one tool's whole job (imports included), as a CI step would."""
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import data_gate; "
            f"data_gate.{function}({str(path)!r})")
    return lambda: subprocess.run([sys.executable, "-c", code], check=True, timeout=1800,
                                  capture_output=True)


def scenario_funnel(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    path = wide_file(args.rows or 1_000_000, uuids=0, ints=40)
    project = funnel_project(path, DATA / "funnel-project")
    print(header(f"{path.name}", f"Arrow size {pq.read_table(path).nbytes / MIB:.0f} MiB"),
          flush=True)

    # pytest rewrites the asserts of a plugin's modules and keeps the result beside their
    # bytecode: a first run in a fresh environment pays for it once (about 0.2 s of CPU
    # here), every later run reads it, unless the environment forbids writing bytecode
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def funnel() -> None:
        # typeguard's pytest plugin is in this environment only as pandera's dependency
        found = subprocess.run([sys.executable, "-m", "pytest", "--funnel", "-q",
                                "-p", "no:cacheprovider", "-p", "no:typeguard"], cwd=project,
                               timeout=1800, capture_output=True, text=True, env=environment)
        assert found.returncode == 0, found.stdout[-2000:]

    compile_package()
    funnel()
    compare_tools(args, path, funnel, "pytest --funnel")


def scenario_growth(args: argparse.Namespace) -> None:
    sizes = [1_000_000, 4_000_000, 16_000_000, 50_000_000]
    floors, ours = [], []
    for rows in sizes:
        path = keys_file(rows)
        aggs = profile_of(path, unique="key", duplicates=True)
        run_aggs(path, aggs)
        result = paired(args.repeat, lambda p=path: read_floor(p),
                        lambda p=path, a=aggs: run_aggs(p, a))
        floors.append(result.baseline)
        ours.append(result.measured)
        print(figure_line(f"{rows:>12,} rows: ours (floor {result.baseline:.2f} s)",
                          result.measured, result.ratio, "x floor"), flush=True)

    def slope(ys: list[float]) -> float:
        xs = [r / 1e6 for r in sizes]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs)

    print(f"slope: ours {slope(ours) * 1000:.1f} ms per million rows, floor "
          f"{slope(floors) * 1000:.1f} ms: {slope(ours) / slope(floors):.2f}x; per row at 50M "
          f"vs at 1M: ours {ours[-1] / 50 / ours[0]:.2f}x, floor {floors[-1] / 50 / floors[0]:.2f}x"
          f"  (load {os.getloadavg()[0]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tools", default="pandera,gx",
                        help="funnel, wide: the tools compared (pandera, gx), comma-separated")
    parser.add_argument("--gx-repeat", type=int, default=1,
                        help="rounds with Great Expectations (minutes each on 1M x 120)")
    parser.add_argument("--scenario", default="bench",
                        choices=["bench", "keys", "wide", "funnel", "drift", "growth"])
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    scenarios: dict[str, Callable[[argparse.Namespace], None]] = {
        "keys": scenario_keys, "wide": scenario_wide, "growth": scenario_growth,
        "drift": scenario_drift, "funnel": scenario_funnel}
    if args.scenario != "bench":
        scenarios[args.scenario](args)
        return
    args.rows = args.rows or 10_000_000
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
    floor, profile, unique = alternating(args.repeat, lambda: read_floor(parquet),
                                     lambda: run_profile(parquet, unique=False),
                                     lambda: run_profile(parquet, unique=True))
    show("floor: pyarrow.parquet.read_table", floor)
    show("(a) profile criteria, Parquet", profile, profile / floor, "target <= 1.0x floor")
    show("(b) (a) + exact unique key", unique, unique / floor, "target <= 1.6x floor")
    parse, from_csv = alternating(args.repeat, lambda: duckdb_parse(csv),
                              lambda: run_profile(csv, unique=False))
    show("    one DuckDB parse of the CSV", parse)
    show("(c) (a) from CSV", from_csv, from_csv / parse, "target <= 1.2x one parse")
    arrow_touched = pq.read_table(parquet, columns=COLUMNS).nbytes  # (a) touches every column
    rss_profile = peak_rss(child, "profile", parquet)
    rss_idle = peak_rss(child, "idle", parquet)
    rss_floor = peak_rss(child, "floor", parquet)
    print()
    print(f"(d) peak RSS of (a)                      {rss_profile / 2**20:7.0f} MiB  "
          f"{rss_profile / arrow_touched:5.2f}x  target <= 1.0x Arrow size of touched columns "
          f"({arrow_touched / 2**20:.0f} MiB)")
    print(f"    same process, imports only           {rss_idle / 2**20:7.0f} MiB")
    print(f"    pyarrow read_table (the floor)       {rss_floor / 2**20:7.0f} MiB", flush=True)
    try:
        pandera_time, profile = alternating(args.repeat,
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

"""Drift speed: the drift kind's passes against the cost of reading the data, and evidently.

    python bench/drift.py                      # 5M rows per side; --rows N to change
    # the evidently comparison needs its own environment (it pins an older pandas):
    python -m venv bench/.venv-evidently
    bench/.venv-evidently/bin/pip install -r bench/requirements-drift.txt
    python bench/drift.py                      # now also runs (e)

Writes (seeded) a reference and a current Parquet file of N rows x 8 columns (6 numeric,
2 categorical; the current one has drifted in two columns) under bench/data/ (git-ignored,
kept between runs), then measures, as ratios to baselines measured in the same run:

  floor        pyarrow.parquet.read_table of both files
  (a) cold     PSI + KS + JS on every column (KS on the numeric ones), no saved summary:
               quantiles and bin counts of the reference, bin counts of the current;
               and PSI + JS alone (10 bins per column instead of the ~1000 KS reads)
  (b) warm     the same with the reference summary saved by an earlier run: reads only the
               current file (against read_table of the current file alone)
  (c) RSS      peak resident memory of (a) in a fresh process, against the Arrow size of
               the columns (and the same process doing nothing but imports)
  (d) evidently DataDriftPreset on the first --evidently-rows rows of the same data, in
               bench/.venv-evidently, against (a) on files of that many rows

Timings are the best of ``--repeat`` runs with a warm file cache; a ratio is the median over
rounds that run the baseline and the measured code in turn (bench/measure.py); each line ends
with the load average, as the machine may be shared. (a) and (b) call the code
the ``drift`` kind runs (``compute_drift``), configured as a check would be.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from measure import MIB, best_of, figure_line, header, memory_line, paired, peak_rss

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
EVIDENTLY_PYTHON = HERE / ".venv-evidently" / "bin" / "python"
NUMERIC = ["age", "tenure", "calls", "spend", "score", "balance"]
CATEGORIES = {"plan": ["basic", "pro", "team", "enterprise"],
              "country": [f"c{i:02d}" for i in range(20)]}
COLUMNS = NUMERIC + list(CATEGORIES)
EXPECT = {"psi": "<= 0.2", "ks": "<= 0.1", "js": "<= 0.1"}
EXPECT_BINNED = {"psi": "<= 0.2", "js": "<= 0.1"}  # no KS: only the PSI/JS bins are counted


def generate(rows: int, path: Path, drifted: bool, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {
        "age": rng.integers(18, 90, rows),
        "tenure": rng.integers(0, 120, rows),
        "calls": rng.poisson(2.4 if drifted else 1.5, rows).astype(np.int64),
        "spend": pa.array(rng.gamma(3.0, 15.0 if drifted else 12.0, rows),
                          mask=rng.random(rows) < 0.02),
        "score": rng.normal(0.0, 1.0, rows),
        "balance": rng.lognormal(6.0, 1.0, rows),
    }
    for name, values in CATEGORIES.items():
        shares = np.linspace(2.0, 1.0, len(values))
        if drifted and name == "plan":
            shares = shares[::-1]
        columns[name] = pa.array(np.asarray(values)[rng.choice(
            len(values), rows, p=shares / shares.sum())])
    DATA.mkdir(exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=1_000_000)


def files(rows: int) -> tuple[Path, Path]:
    reference = DATA / f"drift-reference-{rows}.parquet"
    current = DATA / f"drift-current-{rows}.parquet"
    if not reference.exists() or not current.exists():
        print(f"generating 2 x {rows:,} rows x {len(COLUMNS)} columns ...", flush=True)
        generate(rows, reference, drifted=False, seed=1)
        generate(rows, current, drifted=True, seed=2)
    return reference, current


def run_drift(reference: Path, current: Path, cache: bool,
              expect: dict[str, str] = EXPECT) -> dict[str, Any]:
    """What the drift kind does for ``drift = { reference, current }`` on every column."""
    from pytest_mlfunnel.kinds.base import EvalContext
    from pytest_mlfunnel.kinds.drift import DriftConfig, compute_drift

    check = DriftConfig.model_validate(
        {"drift": {"reference": str(reference), "current": str(current)}, "expect": expect,
         "cache": cache}, context={"sources": {}, "key_path": "bench.drift"})
    result = compute_drift(check, EvalContext(rootdir=DATA, fixtures={}, shared={}))
    errors = {c: d.error for c, d in result.columns.items() if d.error}
    assert not errors, errors
    return {c: d.values for c, d in result.columns.items()}


def read_tables(*paths: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_table(path).num_rows for path in paths)


def child(mode: str, reference: str, current: str) -> None:
    """What (c) measures in a fresh process: the drift pass, the floor, or the imports alone."""
    import duckdb  # noqa: F401  (the imports are part of the idle baseline)

    import pytest_mlfunnel.engines.sql
    import pytest_mlfunnel.kinds.drift  # noqa: F401

    if mode == "drift":
        run_drift(Path(reference), Path(current), cache=False)
    elif mode == "floor":
        read_tables(Path(reference), Path(current))


EVIDENTLY_CHILD = """
import json, sys, time
import pandas as pd
try:
    from evidently import Report
    from evidently.presets import DataDriftPreset
    def run(reference, current):
        return Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
except ImportError:  # evidently < 0.7
    from evidently.report import Report
    from evidently.metric_preset import DataDriftPreset
    def run(reference, current):
        report = Report(metrics=[DataDriftPreset()])
        report.run(reference_data=reference, current_data=current)
        return report
import evidently
reference, current, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = time.perf_counter()
ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
read = time.perf_counter() - started
best = min(
    (lambda s: (run(ref, cur), time.perf_counter() - s)[1])(time.perf_counter())
    for _ in range(repeat))
print(json.dumps({"version": evidently.__version__, "read": read, "run": best}))
"""


def evidently(reference: Path, current: Path, repeat: int) -> dict[str, Any] | None:
    if not EVIDENTLY_PYTHON.exists():
        return None
    out = subprocess.run([str(EVIDENTLY_PYTHON), "-c", EVIDENTLY_CHILD, str(reference),
                          str(current), str(repeat)], check=True, capture_output=True,
                         text=True, timeout=3600).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--evidently-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reference, current = files(args.rows)
    import duckdb
    import pyarrow.parquet as pq

    size = (reference.stat().st_size + current.stat().st_size) / MIB
    print(header(f"2 x {args.rows:,} rows x {len(COLUMNS)} columns ({len(NUMERIC)} numeric, "
                 f"{len(CATEGORIES)} categorical)", f"Parquet {size:.0f} MiB",
                 f"duckdb {duckdb.__version__}"))
    values = run_drift(reference, current, cache=False)
    drifted = sorted(c for c, v in values.items() if v["psi"] > 0.2)
    print(f"columns over psi 0.2: {', '.join(drifted)}")

    def show(label: str, seconds: float, ratio: float | None = None, target: str = "") -> None:
        print(figure_line(label, seconds, ratio, target), flush=True)

    print()
    cold = paired(args.repeat, lambda: read_tables(reference, current),
                  lambda: run_drift(reference, current, cache=False))
    show("floor: pyarrow.parquet.read_table, both", cold.baseline)
    show("(a) psi + ks + js, all columns, cold", cold.measured, cold.ratio,
         "target <= 2.5x floor")
    binned = paired(args.repeat, lambda: read_tables(reference, current),
                    lambda: run_drift(reference, current, False, EXPECT_BINNED))
    show("    psi + js only (no KS), cold", binned.measured, binned.ratio)
    shutil.rmtree(DATA / ".mlfunnel", ignore_errors=True)
    run_drift(reference, current, cache=True)  # saves the reference summary
    warm = paired(args.repeat, lambda: read_tables(current),
                  lambda: run_drift(reference, current, cache=True))
    show("    pyarrow.parquet.read_table, current", warm.baseline)
    show("(b) the same, reference summary saved", warm.measured, warm.ratio,
         "of reading the current file")
    arrow_size = (pq.read_table(reference, columns=COLUMNS).nbytes
                  + pq.read_table(current, columns=COLUMNS).nbytes)
    rss_drift = peak_rss(child, "drift", reference, current)
    rss_idle = peak_rss(child, "idle", reference, current)
    rss_floor = peak_rss(child, "floor", reference, current)
    print()
    print(memory_line("(c) peak RSS of (a)", rss_drift, rss_drift / arrow_size,
                      f"target <= 1.0x Arrow size of the columns ({arrow_size / MIB:.0f} MiB)"))
    print(memory_line("    same process, imports only", rss_idle))
    print(memory_line("    pyarrow read_table of both (the floor)", rss_floor), flush=True)
    print()
    small_ref, small_cur = files(args.evidently_rows)
    ours = best_of(args.repeat, lambda: run_drift(small_ref, small_cur, cache=False))
    show(f"(d) (a) at {args.evidently_rows:,} rows", ours)
    found = evidently(small_ref, small_cur, args.repeat)
    if found is None:
        print(f"    evidently: no {EVIDENTLY_PYTHON.relative_to(HERE.parent)}; see "
              "bench/requirements-drift.txt")
        return
    show(f"    evidently {found['version']} DataDriftPreset", found["run"],
         found["run"] / ours, "the time of (d), target >= 50x (its Parquet read not counted: "
         f"{found['read']:.2f} s)")

if __name__ == "__main__":
    main()

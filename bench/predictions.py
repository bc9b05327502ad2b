"""Predictions speed: the predictions kind against reading the file, and against sklearn.

    python bench/predictions.py                       # 10M rows
    python bench/predictions.py --rows 1000000 10000000 --repeat 5

Writes (seeded) one Parquet file of N prediction rows under bench/data/ (git-ignored, kept
between runs): a binary target, the model's label and probability (about one distinct score
per row), the production model's label and probability, and a slice column of 20 values. Then
measures, for each N:

  floor     pyarrow.parquet.read_table of the columns used
  (a)       the ``predictions`` kind on the file: accuracy, f1, roc_auc, log_loss and ece
            overall and per slice (20 slices), plus f1 and roc_auc against the production
            columns with their paired 95% intervals (multinomial bootstrap, DeLong); every
            criterion evaluated as the kind does
  (a')      the same without roc_auc: what the grouped counts and sums cost, apart from the
            ranking of scores
  (b) RSS   peak resident memory of (a) in a fresh process, against the Arrow size of the
            columns used (and the same process doing nothing but imports), and its CPU
            seconds (all threads, steadier than wall time under load)
  (b')      the same without the bound on the ranking's sort memory
            (MLFUNNEL_DUCKDB_SORT_MEMORY=none)
  (c)       sklearn computing the same point values on the pandas frame already in memory
            (accuracy_score, f1_score, roc_auc_score, log_loss, and the ECE from
            calibration_curve, overall and per slice, for the model and the baseline; sklearn
            has no paired interval), against (a); the pandas read is reported apart

Times are the medians of ``--repeat`` rounds that run the baseline and the measured code in
turn (bench/measure.py), with a warm file cache; a ratio is the median of the per-round ratios.
The machine may be shared: the load average is printed beside every figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from measure import MIB, figure_line, header, memory_line, peak_rss, rounds

HERE = Path(__file__).resolve().parent
#: the bound on the memory of the ranking's sort (pytest_mlfunnel.engines.sql)
SORT_MEMORY_ENV = "MLFUNNEL_DUCKDB_SORT_MEMORY"
DATA = HERE / "data"
SLICES = 20
COLUMNS = ["churned", "pred", "proba", "prod_pred", "prod_proba", "segment"]
METRICS = ("accuracy", "f1", "roc_auc", "log_loss", "ece")


def generate(rows: int, path: Path, seed: int = 1) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    segment = rng.integers(0, SLICES, rows)
    y = (rng.random(rows) < 0.2 + 0.01 * segment).astype(np.int8)
    signal = rng.normal(0, 1, rows)
    proba = 1 / (1 + np.exp(-(1.6 * y - 1.2 + 0.9 * signal)))  # ~10M distinct scores
    prod = 1 / (1 + np.exp(-(1.1 * y - 1.0 + 0.9 * (0.6 * signal + 0.8 * rng.normal(0, 1,
                                                                                 rows)))))
    DATA.mkdir(exist_ok=True)
    pq.write_table(pa.table({
        "churned": y, "pred": (proba >= 0.5).astype(np.int8), "proba": proba,
        "prod_pred": (prod >= 0.5).astype(np.int8), "prod_proba": prod,
        "segment": pa.array(np.char.add("s", segment.astype(str))),
    }), path, row_group_size=1_000_000)


def data_file(rows: int) -> Path:
    path = DATA / f"predictions-{rows}.parquet"
    if not path.exists():
        print(f"generating {rows:,} prediction rows ...", flush=True)
        generate(rows, path)
    return path


def run_kind(path: Path, ranked: bool = True) -> dict[str, Any]:
    """Every criterion of the check, evaluated as the kind evaluates them (without roc_auc
    when not ``ranked``)."""
    sys.path.insert(0, str(HERE.parent))
    from pytest_mlfunnel.context import EvalContext, PlanContext
    from pytest_mlfunnel.kinds.predictions import PredictionsConfig, PredictionsKind

    metrics = [m for m in METRICS if ranked or m != "roc_auc"]
    expect = {m: ">= 0" for m in metrics} | {f"slices.segment.*.{m}": ">= 0" for m in metrics}
    expect |= {"f1": ">= baseline"} | ({"roc_auc": ">= baseline"} if ranked else {})
    check = PredictionsConfig.model_validate(
        {"predictions": str(path), "task": "binary", "target": "churned", "prediction": "pred",
         "score": "proba", "slices": ["segment"], "significance": 0.05,
         "baseline": {"prediction": "prod_pred", "score": "prod_proba"}, "expect": expect},
        context={"sources": {}, "key_path": "bench.predictions"})
    shared: dict[Any, Any] = {}
    plan = PredictionsKind().plan(check, PlanContext(rootdir=DATA, config_path=DATA / "x",
                                                     gate="model", check="bench",
                                                     key_path="bench.predictions",
                                                     shared=shared))
    ctx = EvalContext(rootdir=DATA, fixtures={}, shared=shared)
    found = {c.name: c.evaluate(ctx) for c in plan}
    bad = {n: o.message for n, o in found.items() if o.status == "error"}
    assert not bad, bad
    return {n: o.observed for n, o in found.items()}


def read_columns(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_table(path, columns=COLUMNS).num_rows)


def sklearn_metrics(frame: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics
    from sklearn.calibration import calibration_curve

    def ece(y: Any, p: Any) -> float:
        true, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
        counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p), minlength=10)
        return float(np.sum(counts[counts > 0] * np.abs(true - predicted)) / len(y))

    def all_of(rows: Any, label: str, score: str) -> dict[str, float]:
        y, p, s = rows["churned"].to_numpy(), rows[label].to_numpy(), rows[score].to_numpy()
        return {"accuracy": metrics.accuracy_score(y, p), "f1": metrics.f1_score(y, p),
                "roc_auc": metrics.roc_auc_score(y, s), "log_loss": metrics.log_loss(y, s),
                "ece": ece(y, s)}

    found = {f"model.{k}": v for k, v in all_of(frame, "pred", "proba").items()}
    found |= {f"baseline.{k}": v for k, v in all_of(frame, "prod_pred", "prod_proba").items()
              if k in ("f1", "roc_auc")}
    for value, rows in frame.groupby("segment"):
        found |= {f"{value}.{k}": v for k, v in all_of(rows, "pred", "proba").items()}
    return found


def in_turn(repeat: int, baseline: Callable[[], Any], action: Callable[[], Any]
            ) -> tuple[float, float, float]:
    """(median baseline, median action, median of the per-round ratios), run in turn."""
    base, mine = rounds(repeat, baseline, action)
    return (statistics.median(base), statistics.median(mine),
            statistics.median(m / b for b, m in zip(base, mine, strict=True)))


def peak_rss_and_cpu(function: Callable[..., Any], *args: object) -> tuple[int, float]:
    """``peak_rss`` and the CPU seconds (user + system, every thread) of the fresh process:
    CPU time moves far less than wall time on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = peak_rss(function, *args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return rss, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_line(label: str, seconds: float, width: int = 44) -> str:
    return f"{label:<{width}} {seconds:7.2f} s CPU  (load {os.getloadavg()[0]:.2f})"


def kind_in_child(path: str) -> None:
    """What (b) measures in a fresh process."""
    run_kind(Path(path))


def floor_in_child(path: str) -> None:
    read_columns(Path(path))


def imports_in_child() -> None:
    sys.path.insert(0, str(HERE.parent))
    import duckdb  # noqa: F401  (the imports are part of the idle baseline)

    import pytest_mlfunnel.engines.sql
    import pytest_mlfunnel.kinds.predictions  # noqa: F401


def measure(rows: int, repeat: int) -> None:
    import duckdb
    import pyarrow.parquet as pq

    path = data_file(rows)
    print(header(f"{rows:,} rows", f"{SLICES} slices",
                 f"Parquet {path.stat().st_size / MIB:.0f} MiB", f"duckdb {duckdb.__version__}"))
    observed = run_kind(path)
    print(f"f1 {observed['f1']:.4f} · roc_auc {observed['roc_auc']:.4f} · "
          f"log_loss {observed['log_loss']:.4f} · ece {observed['ece']:.4f}")
    floor, ours, ratio = in_turn(repeat, lambda: read_columns(path), lambda: run_kind(path))
    print(figure_line("floor: pyarrow read_table, columns used", floor))
    print(figure_line("(a) predictions kind, all criteria", ours, ratio,
                      "target <= 2.5x floor"))
    _, unranked, ratio = in_turn(repeat, lambda: read_columns(path),
                                lambda: run_kind(path, ranked=False))
    print(figure_line("(a') the same without roc_auc", unranked, ratio), flush=True)
    arrow_size = pq.read_table(path, columns=COLUMNS).nbytes
    rss_kind, cpu_kind = peak_rss_and_cpu(kind_in_child, path)
    print(memory_line("(b) peak RSS of (a)", rss_kind, rss_kind / arrow_size,
                      f"target <= 1.0x Arrow size of the columns ({arrow_size / MIB:.0f} MiB)"))
    print(cpu_line("    CPU seconds of that process", cpu_kind))
    os.environ[SORT_MEMORY_ENV] = "none"
    try:
        rss_free, cpu_free = peak_rss_and_cpu(kind_in_child, path)
    finally:
        os.environ.pop(SORT_MEMORY_ENV)
    print(memory_line("(b') the same, the sort's memory unbounded", rss_free,
                      rss_free / arrow_size, f"{SORT_MEMORY_ENV}=none"))
    print(cpu_line("    CPU seconds of that process", cpu_free))
    print(memory_line("    same process, imports only", peak_rss(imports_in_child)))
    print(memory_line("    pyarrow read_table of the columns", peak_rss(floor_in_child, path)),
          flush=True)
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_parquet(path, columns=COLUMNS)
    read = time.perf_counter() - started
    reference = sklearn_metrics(frame)
    for name in METRICS:
        assert abs(reference[f"model.{name}"] - observed[name]) < 1e-9, name
    _, sk_time, ratio = in_turn(repeat, lambda: run_kind(path), lambda: sklearn_metrics(frame))
    print(figure_line("(c) sklearn on the pandas frame in memory", sk_time, ratio,
                      f"of (a); its pd.read_parquet not counted: {read:.2f} s"))
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("The machine may be shared: read the ratios, and the load beside each line.\n")
    for rows in args.rows:
        measure(rows, args.repeat)


if __name__ == "__main__":
    main()

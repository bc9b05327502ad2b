"""How ``mlfunnel portfolio`` scales: read + summarize time against the number of history lines.

    python bench/portfolio.py                       # 250 ... 2,000 projects x 50 releases
    python bench/portfolio.py --criteria 100        # longer lines (the example project's size)

Writes (once, under a temporary directory) one ``.mlfunnel/history.jsonl`` per project, each
line shaped as ``--funnel-record`` writes it (8 gates, a status and a measured value per
criterion), then times ``read_paths`` + ``summarize`` in this process, best of ``--repeat``
rounds, for each size. Prints wall-clock and CPU time per size, the time per line, the
least-squares slope and intercept of wall time against lines, and the load average: on a
shared, loaded machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mlfunnel.history import summary_line  # noqa: E402
from pytest_mlfunnel.portfolio import read_paths, summarize  # noqa: E402

FUNNEL = ["data", "problem", "model", "organization", "deployment", "usage", "effectiveness",
          "maintenance"]
AS_OF = dt.date(2026, 11, 29)


def report(project: str, release: int, day: dt.date, stage: int, criteria: int) -> dict:
    per_gate = max(criteria // len(FUNNEL), 1)
    gates = []
    for index, gate in enumerate(FUNNEL, start=1):
        status = "passed" if index <= stage else "failed"
        gates.append({"name": gate, "status": status, "passed": per_gate, "total": per_gate,
                      "criteria": [{"id": f"pyproject.toml::{gate}::check{c}::metric_{c}",
                                    "status": "passed" if index <= stage else "failed",
                                    "evidence": "measured", "observed": 0.8125 + c / 1000}
                                   for c in range(per_gate)]})
    return {"schema": "mlfunnel-report/1", "project": project, "release": f"v1.{release}.0",
            "commit": f"{release:07x}", "created": f"{day.isoformat()}T10:00:00Z",
            "funnel": FUNNEL, "required": "model", "reached": FUNNEL[stage - 1] if stage else None,
            "stage": stage, "ok": stage >= 3, "partial": False,
            "verdict": f"stage reached: {FUNNEL[stage - 1] if stage else 'none'} ({stage}/8)",
            "reasons": [], "gates": gates}


def write_projects(root: Path, projects: int, releases: int, criteria: int) -> int:
    """``projects`` histories; returns the bytes written. Deterministic."""
    size = 0
    start = dt.date(2023, 1, 2)
    for p in range(projects):
        lines = []
        for r in range(releases):
            day = start + dt.timedelta(days=7 * r + p % 7)
            stage = min(8, (r * (1 + p % 5)) // 12) if (p + r) % 11 else max(0, r // 12 - 1)
            lines.append(summary_line(report(f"project-{p:05d}", r, day, stage, criteria)))
        path = root / f"project-{p:05d}" / ".mlfunnel" / "history.jsonl"
        path.parent.mkdir(parents=True)
        blob = b"\n".join(lines) + b"\n"
        path.write_bytes(blob)
        size += len(blob)
    return size


def measure(paths: list[Path], repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds of ``repeat`` rounds."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        portfolio = summarize(read_paths(paths), AS_OF)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
        assert portfolio.entries and not portfolio.problems
    return best_wall, best_cpu


def least_squares(points: list[tuple[float, float]]) -> tuple[float, float]:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x, _ in points))
    return slope, mean_y - slope * mean_x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000,2000",
                        help="numbers of projects (default: 250,500,1000,2000)")
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--criteria", type=int, default=40,
                        help="criteria per history line (default: 40)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="mlfunnel-bench-portfolio-") as tmp:
        root = Path(tmp) / "repos"
        total = write_projects(root, max(sizes), args.releases, args.criteria)
        folders = sorted(root.iterdir())
        line_bytes = total / (max(sizes) * args.releases)
        print(f"{args.releases} releases per project, {args.criteria} criteria per line, "
              f"{line_bytes:,.0f} bytes per line; best of {args.repeat}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"({os.cpu_count()} cores)")
        rows = []
        for projects in sizes:
            # The files, not folders, so the timing is reading and summarizing, not a walk.
            paths = [f / ".mlfunnel" / "history.jsonl" for f in folders[:projects]]
            seconds, cpu = measure(paths, args.repeat)
            lines = projects * args.releases
            rows.append((lines, seconds, cpu))
            print(f"{projects:>6,} projects  {lines:>8,} lines  {seconds:7.3f} s wall  "
                  f"{cpu:7.3f} s cpu  {1e6 * seconds / lines:6.1f} µs per line (wall)")
        walk, walk_cpu = measure([root], args.repeat)
        print(f"the same {max(sizes):,} projects found by searching their folder: {walk:.3f} s "
              f"wall, {walk_cpu:.3f} s cpu")
        for label, column in (("wall", 1), ("cpu", 2)):
            slope, intercept = least_squares([(r[0], r[column]) for r in rows])
            first, last = rows[0], rows[-1]
            print(f"{label:>4}: least squares {slope * 1e6:.2f} µs per line, intercept "
                  f"{intercept * 1000:+.1f} ms; time per line at the largest size / at the "
                  f"smallest: {(last[column] / last[0]) / (first[column] / first[0]):.2f}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Config load at scale: collecting N checks against collecting N plain parametrized tests.

    python bench/config_scale.py              # N = 4000
    python bench/config_scale.py --checks 5000 --repeat 5

Writes two throwaway projects under a temporary directory: one whose ``[tool.mlfunnel]`` holds
N ``files`` checks (each one criterion, each in its own ``[tool.mlfunnel.maintenance.cN]``
table), one with a test module of N parametrized cases. Both are collected with
``pytest --collect-only -q -p no:cacheprovider`` in a fresh process; the figure is the best of
``--repeat`` rounds of each, alternating, so both sides see the same machine load. Prints the
ratio (funnel / plain) and the load average beside it: the machine this runs on may be shared.

The target is a ratio within 2x: reading the config (which locates every check's line in the
file for the failure reports) must stay linear in the number of checks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def funnel_project(root: Path, checks: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "runbook.md").write_text("# Runbook\n")
    tables = "".join(f'[tool.mlfunnel.maintenance.c{i}]\nfiles = "docs/runbook.md"\n\n'
                     for i in range(checks))
    (root / "pyproject.toml").write_text(f"[tool.mlfunnel]\nrequire = \"none\"\n\n{tables}")


def plain_project(root: Path, tests: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (root / "test_many.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('i', range({tests}))\n"
        "def test_case(i):\n    assert i >= 0\n")


def collect(root: Path, *extra: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *extra], cwd=root, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"collection failed in {root}:\n{result.stdout[-2000:]}"
                         f"{result.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlfunnel-config-scale-") as scratch:
        funnel_root, plain_root = Path(scratch) / "funnel", Path(scratch) / "plain"
        funnel_project(funnel_root, args.checks)
        plain_project(plain_root, args.checks)
        funnel_times, plain_times = [], []
        for _ in range(args.repeat):
            plain_times.append(collect(plain_root))
            funnel_times.append(collect(funnel_root, "--funnel"))
    funnel, plain = min(funnel_times), min(plain_times)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"checks: {args.checks}  funnel collect: {funnel:.2f} s  plain collect: {plain:.2f} s"
          f"  ratio: {funnel / plain:.2f}  (best of {args.repeat}; load average {load})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

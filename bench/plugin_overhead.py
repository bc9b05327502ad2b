"""Benchmark: what the plugin costs when it is off, and when it is on.

    python bench/plugin_overhead.py [--runs 15]

(a) plugin off: `pytest --collect-only` on a generated 500-test project with the plugin
    installed, against the same run with `-p no:mlfunnel`. Target: <= 1.01x.
(b) plugin on: 1,000 `metrics` criteria (100 checks x 10 metrics) against 1,000 plain test
    functions doing the same comparison on the same JSON file. Target: <= 1.5x.

Each run is a fresh `python -m pytest` process; the two sides alternate so machine noise hits
both, and the median is compared. Prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHECKS, METRICS_PER_CHECK = 100, 10


def make_collect_project(root: Path) -> None:
    (root / "tests").mkdir()
    for module in range(50):
        body = "\n".join(f"def test_{module}_{i}():\n    assert {i} + 1 > {i}\n"
                         for i in range(10))
        (root / "tests" / f"test_m{module}.py").write_text(body)
    (root / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.pytest.ini_options]
        testpaths = ["tests"]
        [tool.mlfunnel]
        require = "model"
        [tool.mlfunnel.model.quality]
        metrics = "eval.json"
        expect = { accuracy = ">= 0.8" }
    """))


def make_criteria_project(root: Path) -> None:
    metrics = {f"check{c}": {f"m{i}": 0.5 + i / 100 for i in range(METRICS_PER_CHECK)}
               for c in range(CHECKS)}
    (root / "eval.json").write_text(json.dumps(metrics))
    lines = ["[tool.mlfunnel]", 'funnel = ["model"]', 'require = "model"']
    for c in range(CHECKS):
        expect = ", ".join(f'"check{c}.m{i}" = ">= 0.4"' for i in range(METRICS_PER_CHECK))
        lines += [f"[tool.mlfunnel.model.c{c}]", 'metrics = "eval.json"',
                  f"expect = {{ {expect} }}"]
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    plain = root / "plain"
    plain.mkdir()
    (plain / "conftest.py").write_text(textwrap.dedent("""
        import json, pathlib, pytest
        @pytest.fixture(scope="session")
        def metrics():
            return json.loads((pathlib.Path(__file__).parent.parent / "eval.json").read_text())
    """))
    tests = [
        f"@pytest.mark.parametrize('check', [f'check{{c}}' for c in range({CHECKS})])\n"
        f"@pytest.mark.parametrize('name', [f'm{{i}}' for i in range({METRICS_PER_CHECK})])\n"
        "def test_metric(metrics, check, name):\n"
        "    assert metrics[check][name] >= 0.4\n"
    ]
    (plain / "test_metrics.py").write_text("import pytest\n\n" + "\n".join(tests))


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        raise SystemExit(f"pytest {' '.join(args)} exited {done.returncode}:\n"
                         f"{done.stdout[-2000:]}")
    return elapsed


def compare(label: str, cwd: Path, base: list[str], other: list[str], runs: int) -> float:
    base_times, other_times = [], []
    timed(base, cwd), timed(other, cwd)  # warm the file system and bytecode caches
    for _ in range(runs):
        base_times.append(timed(base, cwd))
        other_times.append(timed(other, cwd))
    base_median, other_median = statistics.median(base_times), statistics.median(other_times)
    ratio = other_median / base_median
    print(f"{label}: baseline {base_median * 1000:.0f} ms, measured {other_median * 1000:.0f} ms, "
          f"ratio {ratio:.3f}x")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "collect"
        root.mkdir()
        make_collect_project(root)
        off = compare("(a) plugin off, --collect-only on 500 tests", root,
                      ["--collect-only", "-q", "-p", "no:mlfunnel", "-p", "no:cacheprovider"],
                      ["--collect-only", "-q", "-p", "no:cacheprovider"], args.runs)
        root = Path(tmp) / "criteria"
        root.mkdir()
        make_criteria_project(root)
        on = compare("(b) plugin on, 1,000 metrics criteria vs 1,000 plain tests", root,
                     ["-q", "-p", "no:cacheprovider", "plain"],
                     ["-q", "-p", "no:cacheprovider", "--funnel", "pyproject.toml"], args.runs)
    print(f"ratios: plugin off {off:.3f}x (target <= 1.01x), plugin on {on:.3f}x "
          f"(target <= 1.5x)")


if __name__ == "__main__":
    main()

"""The benches' shared measuring helpers (bench/measure.py), and the benches that use them
still run, at a small size, as a person runs them."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


measure = load(BENCH / "measure.py")


def test_rounds_run_the_actions_in_turn_within_every_round() -> None:
    order: list[str] = []
    times = measure.rounds(3, lambda: order.append("base"), lambda: order.append("mine"))
    assert order == ["base", "mine"] * 3
    assert [len(t) for t in times] == [3, 3]
    assert all(t >= 0 for row in times for t in row)


def test_rounds_refuse_zero_repeats_and_no_action() -> None:
    with pytest.raises(ValueError, match="repeat >= 1 and at least one action"):
        measure.rounds(0, lambda: None)
    with pytest.raises(ValueError, match="repeat >= 1 and at least one action"):
        measure.rounds(2)


def test_a_slower_action_has_a_ratio_above_one_against_a_faster_baseline() -> None:
    found = measure.paired(3, lambda: time.sleep(0.001), lambda: time.sleep(0.1))
    assert found.baseline >= 0.001
    assert found.measured >= 0.1
    assert found.ratio > 1


def test_best_and_median_of_alternating_rounds_come_one_per_action() -> None:
    slow, fast = measure.alternating(2, lambda: time.sleep(0.05), lambda: None)
    assert slow >= 0.05 > fast
    slow, fast = measure.medians(3, lambda: time.sleep(0.05), lambda: None)
    assert slow >= 0.05 > fast
    assert measure.best_of(2, lambda: time.sleep(0.02)) >= 0.02


def write_child(folder: Path) -> ModuleType:
    path = folder / "rss_child.py"
    path.write_text(
        "def allocate(mib):\n"
        "    global kept\n"
        "    kept = b'x' * (int(mib) * 2**20)  # written, so every page is resident\n"
        "\n"
        "def broken(why):\n"
        "    raise SystemExit(f'cannot measure: {why}')\n")
    return load(path)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS reads /proc")
def test_peak_rss_of_a_fresh_process_counts_what_it_allocates(tmp_path: Path) -> None:
    child = write_child(tmp_path)
    idle = measure.peak_rss(child.allocate, 0)
    busy = measure.peak_rss(child.allocate, 96)
    assert busy - idle >= 80 * 2**20, (idle, busy)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS reads /proc")
def test_peak_rss_names_the_function_and_the_error_when_the_child_fails(
        tmp_path: Path) -> None:
    child = write_child(tmp_path)
    with pytest.raises(RuntimeError) as raised:
        measure.peak_rss(child.broken, "no data")
    assert str(raised.value).startswith("peak_rss: rss_child.broken('no data',) exited 1:")
    assert "cannot measure: no data" in str(raised.value)


def test_a_figure_line_aligns_label_seconds_ratio_and_target_and_ends_with_the_load() -> None:
    line = measure.figure_line("(a) cold", 1.23456, 2.5, "target <= 2.5x", width=12)
    assert line.startswith("(a) cold       1.235 s    2.50x  target <= 2.5x  (load ")
    bare = measure.figure_line("floor", 0.5, width=12)
    assert bare.startswith("floor          0.500 s  (load ")
    assert measure.memory_line("(c) peak RSS", 300 * 2**20, 0.75, "target", width=14) == (
        "(c) peak RSS       300 MiB    0.75x  target")


def test_the_header_names_the_data_then_the_machine() -> None:
    parts = measure.header("5,000 rows", "duckdb 1.2").split(" · ")
    assert parts[:2] == ["5,000 rows", "duckdb 1.2"]
    assert parts[2].endswith(" cores")
    assert parts[4].startswith("load average ")
    assert len(parts[4].split()) == 5


def run_bench(folder: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(folder / script), *args], capture_output=True,
                          text=True, timeout=300, cwd=folder)


@pytest.fixture
def bench_copy(tmp_path: Path) -> Path:
    """The bench folder copied, so its generated data stays out of the checkout."""
    folder = tmp_path / "bench"
    shutil.copytree(BENCH, folder, ignore=shutil.ignore_patterns("data", ".venv*",
                                                                  "__pycache__"))
    return folder


def test_the_drift_bench_prints_its_usage(bench_copy: Path) -> None:
    result = run_bench(bench_copy, "drift.py", "--help")
    assert result.returncode == 0, result.stderr
    assert "Drift speed: the drift kind's passes" in result.stdout
    assert "--evidently-rows" in result.stdout


def test_the_drift_bench_runs_at_a_small_size(bench_copy: Path) -> None:
    result = run_bench(bench_copy, "drift.py", "--rows", "3000", "--evidently-rows", "2000",
                       "--repeat", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("generating 2 x 3,000 rows x 8 columns")
    assert any("2 x 3,000 rows x 8 columns" in line and "load average" in line
               for line in lines)
    assert "columns over psi 0.2: calls, plan" in lines
    for label in ("(a) psi + ks + js, all columns, cold", "(b) the same, reference summary",
                  "(c) peak RSS of (a)", "(d) (a) at 2,000 rows"):
        assert any(line.startswith(label) for line in lines), (label, result.stdout)
    assert lines[-1] == ("    evidently: no bench/.venv-evidently/bin/python; see "
                         "bench/requirements-drift.txt")

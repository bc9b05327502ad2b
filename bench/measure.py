"""How every bench measures, so that one figure reads like another.

A bench script imports what it needs from here (``from measure import paired, ...``: run as
``python bench/x.py``, this folder is first on ``sys.path``):

  rounds(repeat, *actions)     each action's wall times, the actions run in turn in every round
  best_of(repeat, action)      the best of ``repeat`` runs (a warm-cache figure)
  alternating(repeat, *a)      each action's best, the actions run in turn in every round
  medians(repeat, *actions)    each action's median, the actions run in turn in every round
  paired(repeat, base, action) Paired(baseline, measured, ratio): the two bests and the median
                               of the per-round ratios
  peak_rss(function, *args)    peak resident memory (VmHWM) of a fresh process that imports the
                               function's module and calls it
  load_average(), header(...)  the machine's load and a first line for the figures
  figure_line(...), memory_line(...)
                               one aligned line: label, figure, ratio, target, load

Running the actions in turn within every round means a machine that speeds up or slows down
mid-run moves both sides of a ratio: on a shared machine the ratio is the figure to read, and
the load average is printed beside it.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

MIB = 2**20


def rounds(repeat: int, *actions: Callable[[], Any]) -> list[list[float]]:
    """Wall seconds of each action in each of ``repeat`` rounds: ``times[action][round]``.
    Within a round the actions run one after the other, in the order given."""
    if repeat < 1 or not actions:
        raise ValueError("rounds needs repeat >= 1 and at least one action")
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(repeat):
        for action, out in zip(actions, times, strict=True):
            started = time.perf_counter()
            action()
            out.append(time.perf_counter() - started)
    return times


def best_of(repeat: int, action: Callable[[], Any]) -> float:
    """The best wall time of ``repeat`` runs of one action."""
    return min(rounds(repeat, action)[0])


def alternating(repeat: int, *actions: Callable[[], Any]) -> list[float]:
    """The best wall time of each action, the actions run in turn in every round."""
    return [min(times) for times in rounds(repeat, *actions)]


def medians(repeat: int, *actions: Callable[[], Any]) -> list[float]:
    """The median wall time of each action, the actions run in turn in every round."""
    return [statistics.median(times) for times in rounds(repeat, *actions)]


class Paired(NamedTuple):
    """A measured action against its baseline, run in turn round after round."""

    baseline: float  # best seconds of the baseline
    measured: float  # best seconds of the measured action
    ratio: float  # median over rounds of measured / baseline, each round's pair compared


def paired(repeat: int, baseline: Callable[[], Any], action: Callable[[], Any]) -> Paired:
    base, mine = rounds(repeat, baseline, action)
    ratio = statistics.median(m / b for b, m in zip(base, mine, strict=True))
    return Paired(min(base), min(mine), ratio)


# The child reads VmHWM, not ru_maxrss: Linux carries a parent's ru_maxrss into its children.
_CHILD = """
import importlib, json, sys
folder, module, function = sys.argv[1:4]
sys.path.insert(0, folder)
getattr(importlib.import_module(module), function)(*sys.argv[4:])
status = open("/proc/self/status").read().splitlines()
print(json.dumps({"rss": 1024 * next(int(line.split()[1]) for line in status
                                     if line.startswith("VmHWM:"))}))
"""


def peak_rss(function: Callable[..., Any], *args: object, timeout: float = 1800) -> int:
    """Peak resident memory (bytes) of a fresh Python process that imports ``function``'s
    module from its file's folder and calls ``function(*args)``, the arguments passed as
    strings. The imports count: call a function that does nothing beyond them for the idle
    figure. Linux only (``/proc/self/status``)."""
    source = Path(inspect.getfile(function)).resolve()
    found = subprocess.run(
        [sys.executable, "-c", _CHILD, str(source.parent), source.stem, function.__name__,
         *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if found.returncode != 0:
        raise RuntimeError(f"peak_rss: {source.stem}.{function.__name__}{args!r} exited "
                           f"{found.returncode}:\n{found.stderr.strip()}")
    return int(json.loads(found.stdout.strip().splitlines()[-1])["rss"])


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def header(*parts: str) -> str:
    """One line naming the data and the machine: the parts given, then the cores, the date
    and the load average."""
    machine = [f"{os.cpu_count()} cores", dt.date.today().isoformat(),
               f"load average {load_average()}"]
    return " · ".join([*parts, *machine])


def _ratio(ratio: float | None) -> str:
    return f"{ratio:6.2f}x" if ratio is not None else " " * 7


def figure_line(label: str, seconds: float, ratio: float | None = None, target: str = "",
                *, width: int = 44) -> str:
    """``label  seconds  ratio  target  (load now)``, aligned for a column of figures."""
    return (f"{label:<{width}} {seconds:7.3f} s  {_ratio(ratio)}  {target}".rstrip()
            + f"  (load {os.getloadavg()[0]:.2f})")


def memory_line(label: str, size: int, ratio: float | None = None, target: str = "",
                *, width: int = 44) -> str:
    """The same line for a size in bytes, shown in MiB."""
    return f"{label:<{width}} {size / MIB:7.0f} MiB  {_ratio(ratio)}  {target}".rstrip()

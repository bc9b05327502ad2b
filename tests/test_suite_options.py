"""The suite's own option: xdist variants run where xdist matters, all of them on request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collected(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/test_timing_kind.py", "tests/test_html_report.py", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_only_tests_where_xdist_matters_get_their_xdist_variant_by_default() -> None:
    ids = collected()
    assert "tests/test_timing_kind.py::test_a_known_sleep_is_measured_and_judged[plain]" in ids
    assert not any("test_timing_kind" in i and i.endswith("[xdist]") for i in ids)
    assert "tests/test_html_report.py::test_the_page_is_one_self_contained_file[xdist]" in ids


def test_xdist_variants_adds_the_xdist_variant_of_every_test() -> None:
    default = collected()
    ids = collected("--xdist-variants")
    assert "tests/test_timing_kind.py::test_a_known_sleep_is_measured_and_judged[xdist]" in ids
    plain = [i for i in default if i.endswith("[plain]")]
    assert sorted(set(ids) - set(default)) == sorted(
        i.replace("[plain]", "[xdist]") for i in plain
        if i.replace("[plain]", "[xdist]") not in default)

"""The suite's own option: xdist variants run where xdist matters, all of them on request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collected(*args: str, files: tuple[str, ...] = ("tests/test_timing_kind.py",
                                                    "tests/test_html_report.py")) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *files, *args],
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


def test_a_test_marked_without_xdist_also_runs_with_xdist_not_loaded() -> None:
    ids = collected(files=("tests/test_services.py",))
    name = "tests/test_services.py::test_a_service_starts_once_for_its_criteria_and_is_stopped_at_the_end"
    assert [i for i in ids if i.startswith(name + "[")] == [
        f"{name}[plain]", f"{name}[xdist]", f"{name}[no-xdist]"]
    ctrl_c = [i for i in ids if "test_ctrl_c_stops_the_service" in i]
    assert ctrl_c == ["tests/test_services.py::test_ctrl_c_stops_the_service[plain]",
                      "tests/test_services.py::test_ctrl_c_stops_the_service[xdist]"]

"""``coverage`` criteria judge the run pytest-cov measures: ``pytest --funnel --cov=pkg``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_coverage_kind import SCORE  # the same small package, measured in the same run

pytest.importorskip("pytest_cov")


#: Tests in two files, so that under -n 2 each worker measures a part of the package.
TESTS_BAND = '''
from churn.score import band

def test_high():
    assert band(0.9) == "high"

def test_low():
    assert band(0.1) == "low"
'''
TESTS_EXPLAIN = '''
from churn.score import explain

def test_explain():
    assert explain(0.6) == ["above 0.2", "above 0.5"]
'''


def project(pytester: pytest.Pytester, checks: str) -> None:
    (pytester.path / "churn").mkdir()
    (pytester.path / "churn" / "__init__.py").write_text("")
    (pytester.path / "churn" / "score.py").write_text(SCORE)
    pytester.makepyfile(test_band=TESTS_BAND, test_explain=TESTS_EXPLAIN)
    pytester.makepyprojecttoml('[tool.mlfunnel]\nfunnel = ["model"]\nrequire = "model"\n\n'
                               + checks)


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].split("::", 2)[2]: c for g in data["gates"] for c in g["criteria"]}


def reference(root: Path) -> dict[str, float]:
    """coverage.py's own totals of the data file pytest-cov left (``coverage json``)."""
    subprocess.run([sys.executable, "-m", "coverage", "json", "-o", "reference.json"],
                   cwd=root, check=True, capture_output=True, text=True, timeout=60)
    return dict(json.loads((root / "reference.json").read_text())["totals"])


CHECKS = '''
[tool.mlfunnel.model.tests]
coverage = ">= 60%"
branch = ">= 50%"

[tool.mlfunnel.model.strict]
coverage = ">= 95%"
'''


@pytest.mark.xdist_matters  # pytest-cov combines the workers' data
def test_coverage_criteria_judge_the_data_pytest_cov_measures_in_the_same_run(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    project(pytester, CHECKS)
    result = pytester.runpytest_subprocess("--funnel", "--cov=churn", "--cov-branch",
                                           "--funnel-json=report.json", "-v", *xdist_args,
                                           timeout=300)
    result.assert_outcomes(passed=5, failed=1)
    assert result.ret == 1
    totals = reference(pytester.path)
    found = criteria(pytester)
    assert found["tests::coverage"]["status"] == "passed"
    assert found["tests::coverage"]["observed"] == pytest.approx(
        totals["percent_covered"] / 100)
    assert found["tests::branch"]["observed"] == pytest.approx(
        totals["covered_branches"] / totals["num_branches"])
    assert found["strict::coverage"]["status"] == "failed"
    result.stdout.fnmatch_lines([
        ".coverage: coverage *% (lines 12/14, branches 7/8 in 2 files), expected >= 95%",
        "*model*FAILED*2/3*",
        "stage reached: none (0/1) · required: model · BELOW REQUIRED GATE",
        "*1 failed, 5 passed*",
    ])
    # evaluated after every other item, so the tests' own lines are in the figure
    lines = result.stdout.lines
    last_test = max(i for i, line in enumerate(lines) if "test_explain" in line
                    and ("PASSED" in line or "passed" in line))
    first_criterion = min(i for i, line in enumerate(lines) if "::strict::coverage" in line
                          or "[tool.mlfunnel.model.strict]" in line)
    assert last_test < first_criterion
    assert "pytest --cov" not in result.stdout.str()


@pytest.mark.xdist_matters  # pytest-cov combines the workers' data
def test_a_deselected_coverage_criterion_stays_deselected(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    project(pytester, CHECKS)
    result = pytester.runpytest_subprocess("--funnel", "--cov=churn", "--cov-branch",
                                           "-k", "not strict",
                                           "--funnel-json=report.json", *xdist_args, timeout=300)
    result.assert_outcomes(passed=5)
    assert result.ret == 0
    assert set(criteria(pytester)) == {"tests::coverage", "tests::branch"}


def test_a_check_naming_another_data_file_reads_it_as_before(
        pytester: pytest.Pytester) -> None:
    project(pytester, '''
[tool.mlfunnel.model.legacy]
coverage = ">= 50%"
data_file = "coverage.xml"
''')
    (pytester.path / "coverage.xml").write_text(
        '<?xml version="1.0" ?><coverage lines-valid="10" lines-covered="4" '
        'line-rate="0.4" branch-rate="0"><packages/></coverage>')
    result = pytester.runpytest_subprocess("--funnel", "--cov=churn", "-v",
                                           "--funnel-json=report.json", timeout=300)
    result.assert_outcomes(passed=3, failed=1)
    found = criteria(pytester)["legacy::coverage"]
    assert found["observed"] == pytest.approx(0.4)
    # read where it was collected (first), not after the run
    lines = result.stdout.lines
    assert min(i for i, line in enumerate(lines) if "legacy" in line) < min(
        i for i, line in enumerate(lines) if "test_band.py" in line)


def test_without_pytest_cov_the_data_file_is_read_as_before(
        pytester: pytest.Pytester) -> None:
    project(pytester, CHECKS)
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cov", timeout=300)
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(["*.coverage: no coverage data (expected at *"])


def test_a_package_the_tests_never_import_is_named_in_the_message(
        pytester: pytest.Pytester) -> None:
    project(pytester, CHECKS)
    result = pytester.runpytest_subprocess("--funnel", "--cov=elsewhere", timeout=300)
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines([
        "*.coverage: *pytest-cov measured no file in this run*--cov*"])
    assert "pytest --cov'" not in result.stdout.str()


def test_a_missing_other_data_file_points_at_the_file_pytest_cov_writes(
        pytester: pytest.Pytester) -> None:
    project(pytester, '''
[tool.mlfunnel.model.tests]
coverage = ">= 50%"
data_file = "build/.coverage"
''')
    result = pytester.runpytest_subprocess("--funnel", "--cov=churn", timeout=300)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "build/.coverage: no coverage data (expected at *); this run's pytest-cov data goes to "
        '.coverage: write data_file = ".coverage" to judge this run, or produce this file '
        "earlier in the pipeline"])

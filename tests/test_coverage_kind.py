"""The ``coverage`` kind on data written by really running coverage.py on a small package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCORE = '''
def band(score):
    if score > 0.8:
        return "high"
    if score > 0.5:
        return "medium"
    return "low"


def explain(score):
    words = []
    for threshold in (0.2, 0.5, 0.8):
        if score > threshold:
            words.append(f"above {threshold}")
    return words


def unused():
    return "never called"
'''

FEATURES = '''
def one_hot(plan):
    return {"plan_basic": plan == "basic", "plan_pro": plan == "pro"}
'''

RUN = '''
from churn.score import band, explain
from churn.features import one_hot

band(0.9)
band(0.1)
explain(0.6)
one_hot("pro")
'''


def coverage_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coverage", *args], cwd=cwd, check=True,
                          capture_output=True, text=True)


def measure(root: Path, branch: bool = True) -> None:
    """Write a small package and measure a script that uses part of it."""
    (root / "churn").mkdir(exist_ok=True)
    (root / "churn" / "__init__.py").write_text("")
    (root / "churn" / "score.py").write_text(SCORE)
    (root / "churn" / "features.py").write_text(FEATURES)
    (root / "run_it.py").write_text(RUN)
    coverage_cli(root, "run", *(["--branch"] if branch else []), "--source=churn", "run_it.py")


def reference(root: Path, *args: str) -> dict[str, float]:
    """coverage.py's own totals for the same data (``coverage json``)."""
    coverage_cli(root, "json", "-o", "reference.json", *args)
    return dict(json.loads((root / "reference.json").read_text())["totals"])


def project(pytester: pytest.Pytester, checks: str) -> None:
    pytester.makepyprojecttoml("[tool.mlfunnel]\nfunnel = [\"model\"]\n\n" + checks)


def judged_report(pytester: pytest.Pytester, data_file: str) -> pytest.RunResult:
    """A run of one coverage check on ``data_file`` that fails: its result."""
    project(pytester, f"""
[tool.mlfunnel.model.tests]
coverage = ">= 80%"
data_file = "{data_file}"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    return result


def report(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def test_the_total_is_coverage_pys_own_figure(pytester: pytest.Pytester,
                                              xdist_args: list[str]) -> None:
    measure(pytester.path)
    expected = reference(pytester.path)
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 95%"
branch = ">= 20%"
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", *xdist_args)
    result.assert_outcomes(passed=1, failed=1)
    criteria = report(pytester)
    assert criteria["coverage"]["observed"] == pytest.approx(
        expected["percent_covered"] / 100, abs=1e-12)
    assert criteria["branch"]["observed"] == pytest.approx(
        expected["covered_branches"] / expected["num_branches"], abs=1e-12)
    shown = f"{expected['percent_covered']:.4g}%"
    result.stdout.fnmatch_lines([
        f".coverage: coverage {shown} (lines {expected['covered_lines']}/"
        f"{expected['num_statements']}, branches {expected['covered_branches']}/"
        f"{expected['num_branches']} in 3 files), expected >= 95%"])


def test_include_and_omit_are_relative_to_the_rootdir(pytester: pytest.Pytester) -> None:
    measure(pytester.path)
    only_score = reference(pytester.path, f"--include={pytester.path}/churn/score.py")
    project(pytester, """
[tool.mlfunnel.model.score]
coverage = ">= 0%"
include = "churn/*"
omit = ["churn/features.py", "churn/__init__.py"]
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    criterion = report(pytester)["coverage"]
    assert criterion["observed"] == pytest.approx(only_score["percent_covered"] / 100)
    assert criterion["extra"]["files"] == 1  # type: ignore[index]


def test_branch_coverage_that_was_not_measured_says_how_to_measure_it(
        pytester: pytest.Pytester) -> None:
    measure(pytester.path, branch=False)
    expected = reference(pytester.path)
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 50%"
branch = ">= 50%"
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        ".coverage: branch coverage was not measured (run 'coverage run --branch -m pytest', "
        "'pytest --cov --cov-branch', or set [[]tool.coverage.run] branch = true)"])
    criteria = report(pytester)
    assert criteria["branch"]["status"] == "error"
    assert criteria["coverage"]["observed"] == pytest.approx(expected["percent_covered"] / 100)


def test_missing_data_says_how_to_produce_it(pytester: pytest.Pytester) -> None:
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 80%"
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ".coverage: no coverage data (expected at */.coverage); produce it earlier in the "
        "pipeline: 'coverage run -m pytest' (add --branch for branches) or 'pytest --cov', "
        "then 'coverage xml' for a Cobertura report"])
    assert report(pytester)["coverage"]["status"] == "error"


def test_uncombined_parallel_data_asks_for_coverage_combine(pytester: pytest.Pytester) -> None:
    measure(pytester.path)
    (pytester.path / ".coverage").rename(pytester.path / ".coverage.worker1.123.456")
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 80%"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([".coverage: not found, but 1 parallel data files are "
                                 "(.coverage.worker1.123.456 ...): run 'coverage combine' "
                                 "first"])


def test_data_from_another_checkout_is_an_error_naming_a_recorded_path(
        pytester: pytest.Pytester) -> None:
    measure(pytester.path)
    (pytester.path / "churn").rename(pytester.path / "moved")
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 80%"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [".coverage: no measured file can be read here (recorded paths such as */churn/*"])


def test_a_corrupt_data_file_is_an_error(pytester: pytest.Pytester) -> None:
    (pytester.path / ".coverage").write_text("this is not a coverage database")
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 80%"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([".coverage: coverage.py cannot read it: *"])


def test_a_cobertura_report_gives_the_same_figures(pytester: pytest.Pytester) -> None:
    measure(pytester.path)
    expected = reference(pytester.path)
    coverage_cli(pytester.path, "xml", "-o", "reports/coverage.xml")
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 50%"
branch = ">= 20%"
data_file = "reports/coverage.xml"

[tool.mlfunnel.model.score]
coverage = ">= 0%"
data_file = "reports/coverage.xml"
include = ["churn/score.py"]
""")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=3)
    data = json.loads((pytester.path / "report.json").read_text())
    observed = {c["id"].split("::", 2)[2]: c["observed"] for g in data["gates"]
                for c in g["criteria"]}
    assert observed["tests::coverage"] == pytest.approx(expected["percent_covered"] / 100)
    assert observed["tests::branch"] == pytest.approx(
        expected["covered_branches"] / expected["num_branches"])
    only_score = reference(pytester.path, f"--include={pytester.path}/churn/score.py")
    assert observed["score::coverage"] == pytest.approx(only_score["percent_covered"] / 100)


def test_a_file_that_is_not_cobertura_is_an_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "junit.xml").write_text("<testsuites><testsuite/></testsuites>")
    result = judged_report(pytester, "junit.xml")
    result.stdout.fnmatch_lines(["junit.xml: not a Cobertura coverage report (root element "
                                 "<testsuites>, expected <coverage>)"])


@pytest.mark.parametrize(("xml", "message"), [
    ('<coverage lines-valid="many" lines-covered="1"><packages/></coverage>',
     "coverage.xml: lines-valid='many' on <coverage> is not a whole number"),
    ('<coverage lines-valid="3" lines-covered="1" branch-rate="high"><packages/></coverage>',
     "coverage.xml: branch-rate='high' on <coverage> is not a number"),
    ('<coverage><packages><package><classes><class filename="churn/model.py"><lines>'
     '<line number="1" hits="1"/><line number="2" hits="lots"/></lines></class></classes>'
     '</package></packages></coverage>',
     "coverage.xml: hits='lots' on <line> of churn/model.py is not a whole number"),
])
def test_a_cobertura_number_that_is_not_one_is_an_error_naming_the_attribute(
        pytester: pytest.Pytester, xml: str, message: str) -> None:
    (pytester.path / "coverage.xml").write_text(f'<?xml version="1.0" ?>\n{xml}\n')
    result = judged_report(pytester, "coverage.xml")
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*ValueError*")


def test_a_cobertura_report_of_no_files_is_an_error_not_full_coverage(
        pytester: pytest.Pytester) -> None:
    """coverage.py's data file with no measured file is an error; its XML twin is too."""
    (pytester.path / "coverage.xml").write_text(
        '<?xml version="1.0" ?>\n<coverage lines-valid="0" lines-covered="0" line-rate="1" '
        'branch-rate="0"><sources><source>/builds/churn/src</source></sources><packages/>'
        '</coverage>\n')
    result = judged_report(pytester, "coverage.xml")
    result.stdout.fnmatch_lines([
        "coverage.xml: the report holds no measured files; produce it earlier in the pipeline: "
        "'coverage run -m pytest' (add --branch for branches) or 'pytest --cov', then "
        "'coverage xml' for a Cobertura report"])


@pytest.mark.parametrize(("checks", "message"), [
    ('coverage = ">= 80"', "tool.mlfunnel.model.bad.coverage: coverage is a share: "
                          "write '>= 80%' or '>= 0.8', not '>= 80'"),
    ('coverage = "<= 30 days"', "tool.mlfunnel.model.bad.coverage: expected a share "
                                "such as '>= 80%', got '<= 30 days'"),
    ('coverage = ">= 80%"\nbranch = "lots"', "tool.mlfunnel.model.bad.branch: not a valid "
                                             "expectation: 'lots'*"),
    ('coverage = ">= 80%"\nsource = "src"', "tool.mlfunnel.model.bad.source: unknown key*"),
])
def test_a_bad_coverage_config_stops_the_run_naming_the_key(
        pytester: pytest.Pytester, checks: str, message: str) -> None:
    project(pytester, f"[tool.mlfunnel.model.bad]\n{checks}\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pyproject.toml: {message}"])


def test_relative_files_are_found_from_the_rootdir_when_pytest_runs_elsewhere(
        pytester: pytest.Pytester) -> None:
    # relative_files = true records churn/score.py; read from another directory, every file
    # was skipped as unreadable (or, with absolute ones beside them, left out of the figure)
    root = pytester.path / "project"
    root.mkdir()
    (root / ".coveragerc").write_text("[run]\nrelative_files = True\n")
    measure(root)
    expected = reference(root)
    (root / "pyproject.toml").write_text("""[tool.mlfunnel]
funnel = ["model"]

[tool.mlfunnel.model.tests]
coverage = ">= 95%"
""")
    result = pytester.runpytest("--funnel", "--rootdir=project", "-c", "project/pyproject.toml",
                                "project/pyproject.toml")
    result.assert_outcomes(failed=1)
    shown = f"{expected['percent_covered']:.4g}%"
    result.stdout.fnmatch_lines([
        f".coverage: coverage {shown} (lines {expected['covered_lines']}/"
        f"{expected['num_statements']}, branches {expected['covered_branches']}/"
        f"{expected['num_branches']} in 3 files), expected >= 95%"])


def test_an_include_that_matches_no_measured_file_says_so_and_lists_them(
        pytester: pytest.Pytester) -> None:
    measure(pytester.path)
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 80%"
include = ["src/*"]
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ".coverage: no measured file matches include=['src/*'] omit=[] (measured: "
        "churn/__init__.py, churn/features.py, churn/score.py)"])


def test_a_measured_file_gone_since_is_left_out_and_named(pytester: pytest.Pytester) -> None:
    measure(pytester.path)
    (pytester.path / "churn" / "features.py").unlink()
    expected = reference(pytester.path, "--ignore-errors")
    project(pytester, """
[tool.mlfunnel.model.tests]
coverage = ">= 95%"
""")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    shown = f"{expected['percent_covered']:.4g}%"
    result.stdout.fnmatch_lines([
        f".coverage: coverage {shown} (lines {expected['covered_lines']}/"
        f"{expected['num_statements']}, branches {expected['covered_branches']}/"
        f"{expected['num_branches']} in 2 files; 1 measured file is not here and is left "
        "out: churn/features.py), expected >= 95%"])

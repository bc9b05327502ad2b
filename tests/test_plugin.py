"""The plugin end to end, through real pytest runs on real files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

EVAL = {"accuracy": 0.86, "f1": 0.71,
        "slices": {"north": {"r2": 0.7}, "south": {"r2": 0.65}, "east": {"r2": 0.61}}}
PROD = {"accuracy": 0.84, "f1": 0.69}


def make_project(pytester: pytest.Pytester, config: str, eval_metrics: dict | None = None,
                 files: dict[str, str] | None = None) -> None:
    pytester.makepyprojecttoml(textwrap.dedent(config))
    reports = pytester.path / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "eval.json").write_text(json.dumps(eval_metrics or EVAL))
    (reports / "prod.json").write_text(json.dumps(PROD))
    for name, text in (files or {}).items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


THREE_GATES = """
[tool.mlfunnel]
funnel = ["data", "problem", "model"]
{require}

[tool.mlfunnel.data.volume]
metrics = "reports/eval.json"
expect = {{ accuracy = ">= 0.5" }}

[tool.mlfunnel.problem.goal]
metrics = "reports/eval.json"
expect = {{ f1 = "{f1}" }}

[tool.mlfunnel.model.quality]
metrics = "reports/eval.json"
baseline = "reports/prod.json"
expect = {{ accuracy = ">= baseline + 0.01" }}
"""


def three_gates(require: str = "", f1: str = ">= 0.7") -> str:
    return THREE_GATES.format(require=require, f1=f1)


def report_of(pytester: pytest.Pytester, name: str = "report.json") -> dict:
    return json.loads((pytester.path / name).read_text())


# ----------------------------------------------------------------------------- off means off
def test_the_plugin_is_inert_without_the_funnel_option(pytester: pytest.Pytester) -> None:
    make_project(pytester, "[tool.mlfunnel]\nrequire = 'not-a-gate'\n[tool.mlfunnel.data.x]\n")
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.no_fnmatch_line("*ml funnel*")


def test_it_does_not_import_heavy_modules_when_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="""
        import sys
        def test_a():
            heavy = {"pydantic", "duckdb", "narwhals", "pytest_mlfunnel.session"}
            assert not heavy & set(sys.modules), heavy & set(sys.modules)
    """)
    result = pytester.runpytest_subprocess("-p", "no:xdist")
    result.assert_outcomes(passed=1)


# ----------------------------------------------------------------------------- exit codes
def test_it_passes_when_the_required_gate_is_reached(pytester: pytest.Pytester,
                                                     xdist_args: list[str]) -> None:
    make_project(pytester, three_gates('require = "model"'))
    result = pytester.runpytest("--funnel", *xdist_args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*= ml funnel =*",
        "* 1 * data * passed * 1/1",
        "* 2 * problem * passed * 1/1",
        "* 3 * model * passed * 1/1",
        "stage reached: model (3/3) · required: model · OK",
    ])
    assert result.ret == 0


@pytest.mark.xdist_matters
def test_it_fails_below_the_required_gate(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    make_project(pytester, three_gates('require = "model"', f1=">= 0.9"))
    result = pytester.runpytest("--funnel", *xdist_args)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "* 2 * problem * FAILED * 0/1",
        "      problem::goal::f1: f1 0.71, expected >= 0.9",
        "stage reached: data (1/3) · required: model · BELOW REQUIRED GATE",
        "  gate problem failed and the required gate is model",
    ])
    assert result.ret == 1


def test_failures_above_the_required_gate_are_xfailed(pytester: pytest.Pytester,
                                                      xdist_args: list[str]) -> None:
    make_project(pytester, three_gates('require = "data"', f1=">= 0.9"))
    result = pytester.runpytest("--funnel", "-rx", *xdist_args)
    result.assert_outcomes(passed=2, xfailed=1)
    result.stdout.fnmatch_lines([
        "* 2 * problem * FAILED*",
        "stage reached: data (1/3) · required: data · OK",
        "XFAIL pyproject.toml::problem::goal::f1 - above required gate data: f1 0.71, expected >= 0.9",
    ])
    assert result.ret == 0


def test_without_require_every_criterion_blocks(pytester: pytest.Pytester,
                                                xdist_args: list[str]) -> None:
    make_project(pytester, three_gates(f1=">= 0.9"))
    result = pytester.runpytest("--funnel", *xdist_args)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["stage reached: data (1/3) · required: none set · CRITERIA FAILED"])
    assert result.ret == 1


def test_without_require_a_clean_run_exits_zero(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates())
    result = pytester.runpytest("--funnel")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["stage reached: model (3/3) · required: none set · OK"])


def test_require_none_only_reports(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    make_project(pytester, three_gates('require = "none"', f1=">= 0.9"))
    result = pytester.runpytest("--funnel", "-rx", *xdist_args)
    result.assert_outcomes(passed=2, xfailed=1)
    result.stdout.fnmatch_lines(["stage reached: data (1/3) · required: none · REPORT ONLY",
                                 "*report only (require = none)*"])
    assert result.ret == 0


def test_the_command_line_overrides_require(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"', f1=">= 0.9"))
    result = pytester.runpytest("--funnel", "--funnel-require=data")
    assert result.ret == 0
    result = pytester.runpytest("--funnel", "--funnel-require=none")
    assert result.ret == 0
    result = pytester.runpytest("--funnel", "--funnel-require=modle")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --funnel-require: unknown gate 'modle' (gates: data, "
                                 "problem, model, or 'none'); did you mean 'model'?"])


def test_an_ordinary_failing_test_fails_the_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    pytester.makepyfile(test_a="def test_a(): assert False")
    result = pytester.runpytest("--funnel")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["stage reached: model (3/3) · required: model · OK · 1 test failed"])


def test_an_empty_gate_in_the_middle_stops_the_funnel(pytester: pytest.Pytester) -> None:
    make_project(pytester, """
        [tool.mlfunnel]
        funnel = ["data", "problem", "model"]
        require = "model"
        [tool.mlfunnel.data.volume]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.5" }
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.5" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "* 2 * problem * empty * 0/0",
        "stage reached: data (1/3) · required: model · BELOW REQUIRED GATE",
        "  gate problem is empty (nothing configured for it) and the required gate is model",
    ])
    assert result.ret == 1


def test_an_empty_gate_above_the_required_one_is_only_reported(pytester: pytest.Pytester) -> None:
    make_project(pytester, """
        [tool.mlfunnel]
        funnel = ["data", "problem", "model"]
        require = "data"
        [tool.mlfunnel.data.volume]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.5" }
    """)
    result = pytester.runpytest("--funnel")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["* 2 * problem * empty*", "* 3 * model * empty*",
                                 "stage reached: data (1/3) · required: data · OK"])


# ----------------------------------------------------------------------------- partial runs
def test_a_keyword_selection_is_a_partial_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    result = pytester.runpytest("--funnel", "-k", "accuracy")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "* 2 * problem * not run * 0/0",
        "stage reached: data (1/3) · required: model · partial run",
    ])
    assert result.ret == 0


def test_a_partial_run_still_fails_its_own_failing_criteria(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"', f1=">= 0.9"))
    result = pytester.runpytest("--funnel", "-k", "f1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*· partial run"])
    assert result.ret == 1


def test_last_failed_reruns_only_the_failed_criterion(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"', f1=">= 0.9"))
    pytester.runpytest("--funnel")
    result = pytester.runpytest("--funnel", "--lf", "-v")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["pyproject.toml::problem::goal::f1 FAILED*", "*partial run"])


def test_collect_only_lists_criteria_with_their_node_ids(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    result = pytester.runpytest("--funnel", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "pyproject.toml::data::volume::accuracy",
        "pyproject.toml::problem::goal::f1",
        "pyproject.toml::model::quality::accuracy",
    ])
    assert result.ret == 0


def test_a_node_id_runs_one_criterion(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    result = pytester.runpytest("--funnel", "pyproject.toml::problem::goal::f1", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*partial run"])


def test_marker_selection_picks_every_criterion(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("--funnel", "-m", "funnel")
    result.assert_outcomes(passed=3, deselected=1)
    result.stdout.fnmatch_lines(["*required: model · OK"])


# ----------------------------------------------------------------------------- collection
def test_criteria_are_collected_when_pytest_is_given_a_test_directory(
        pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_a.py").write_text("def test_a(): pass\n")
    result = pytester.runpytest("--funnel", "tests", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*collected 4 items*", "pyproject.toml::data::volume::accuracy PASSED*"])


def test_funnel_only_runs_criteria_and_marked_tests(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    pytester.makepyfile(test_a="""
        import pytest
        def test_plain(): pass
        @pytest.mark.funnel("model")
        def test_marked(): pass
    """)
    result = pytester.runpytest("--funnel-only", "-v")
    result.assert_outcomes(passed=4, deselected=1)
    result.stdout.fnmatch_lines(["* 3 * model * passed * 2/2"])


@pytest.mark.xdist_matters
def test_marked_tests_are_criteria_of_their_gate(pytester: pytest.Pytester,
                                                 xdist_args: list[str]) -> None:
    make_project(pytester, three_gates('require = "problem"'))
    pytester.makepyfile(test_a="""
        import pytest
        @pytest.mark.funnel("model")
        def test_model_is_calibrated(): assert 0.2 < 0.1, "calibration off"
        @pytest.mark.funnel("data")
        def test_no_leakage(): pass
    """)
    result = pytester.runpytest("--funnel", "-rx", *xdist_args)
    result.assert_outcomes(passed=4, xfailed=1)
    result.stdout.fnmatch_lines([
        "* 1 * data * passed * 2/2",
        "* 3 * model * FAILED * 1/2",
        "      test_a.py::test_model_is_calibrated: AssertionError: calibration off",
        "*test_model_is_calibrated - above required gate problem: AssertionError: calibration off",
    ])
    assert result.ret == 0


def test_a_marked_test_skipped_or_strictly_xpassed_says_why_in_the_report(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    make_project(pytester, three_gates('require = "problem"'))
    pytester.makepyfile(test_a="""
        import pytest
        @pytest.mark.funnel("model")
        def test_on_gpu(): pytest.skip("no GPU on this runner")
        @pytest.mark.funnel("model")
        @pytest.mark.xfail(reason="leak not fixed yet", strict=True)
        def test_no_leak(): pass
    """)
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", *xdist_args)
    assert result.ret == 0  # model is above the required gate
    criteria = {c["id"]: c for gate in report_of(pytester)["gates"] for c in gate["criteria"]}
    assert (criteria["test_a.py::test_on_gpu"]["status"],
            criteria["test_a.py::test_on_gpu"]["message"]) == (
        "skipped", "skipped: no GPU on this runner")
    assert (criteria["test_a.py::test_no_leak"]["status"],
            criteria["test_a.py::test_no_leak"]["message"]) == (
        "failed", "[XPASS(strict)] leak not fixed yet")
    result.stdout.fnmatch_lines(["*test_a.py::test_no_leak: [[]XPASS(strict)[]] leak not fixed yet"])


def test_an_unknown_gate_on_a_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates())
    pytester.makepyfile(test_a="""
        import pytest
        @pytest.mark.funnel("modle")
        def test_x(): pass
    """)
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: test_a.py::test_x: @pytest.mark.funnel('modle'): "
                                 "unknown gate (gates: data, problem, model); did you mean "
                                 "'model'?"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize(("marker", "message"), [
    ("funnel()", "@pytest.mark.funnel(): needs a gate, e.g. @pytest.mark.funnel('data') "
                 "(gates: data, problem, model)"),
    ("funnel('model', 'data')", "@pytest.mark.funnel('model', 'data'): names more than one "
                                "gate; a test joins one (gates: data, problem, model)"),
    ("funnel('model', gate='data')", "@pytest.mark.funnel('model', gate='data'): names more "
                                     "than one gate; a test joins one (gates: *)"),
    ("funnel('model', severity='fatal')", "@pytest.mark.funnel('model', severity='fatal'): "
                                          "severity must be one of 'block', 'warn'"),
    ("funnel('model', waive='until friday')", "@pytest.mark.funnel('model', waive='until "
                                              "friday'): unknown argument waive (it takes a "
                                              "gate and severity)"),
    ("funnel(3)", "@pytest.mark.funnel(3): unknown gate (gates: data, problem, model)"),
])
def test_a_malformed_marker_is_a_usage_error_naming_the_test(
        pytester: pytest.Pytester, marker: str, message: str) -> None:
    make_project(pytester, three_gates())
    pytester.makepyfile(test_a=f"""
        import pytest
        @pytest.mark.{marker}
        def test_x(): raise AssertionError("must not run")
    """)
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: test_a.py::test_x: {message}"])
    assert "must not run" not in result.stdout.str()


def test_a_marker_may_name_its_gate_by_keyword(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "data"'))
    pytester.makepyfile(test_a="""
        import pytest
        @pytest.mark.funnel(gate="problem", severity="warn")
        def test_x(): assert False, "stakeholders silent"
    """)
    result = pytester.runpytest("--funnel")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["* 2 * problem * warned *"])


def test_under_xdist_an_unknown_marker_gate_is_a_collection_error_and_exit_4(
        pytester: pytest.Pytester) -> None:
    """Only the workers see markers: the marked test does not run, the rest does, exit 4."""
    make_project(pytester, three_gates())
    pytester.makepyfile(test_a="""
        import pytest
        @pytest.mark.funnel("modle")
        def test_x(): raise AssertionError("must not run")
        def test_y(): pass
    """)
    result = pytester.runpytest("--funnel", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_a.py*",
                                 "test_a.py::test_x: @pytest.mark.funnel('modle'): unknown gate "
                                 "(gates: data, problem, model); did you mean 'model'?"])
    result.stdout.no_fnmatch_line("*must not run*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_unmarked_tests_behave_as_without_the_plugin(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates())
    pytester.makepyfile(test_a="""
        import pytest
        def test_a(): pass
        @pytest.mark.xfail
        def test_b(): assert False
        def test_c(): pytest.skip("later")
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=4, xfailed=1, skipped=1)
    assert result.ret == 0


def test_it_works_without_the_cache_provider(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert result.ret == 0


def test_junitxml_carries_gate_check_observed_expected(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    result = pytester.runpytest("--funnel", "--junitxml=junit.xml")
    assert result.ret == 0
    xml = (pytester.path / "junit.xml").read_text()
    assert 'name="gate" value="model"' in xml
    assert 'name="check" value="quality"' in xml
    assert 'name="observed" value="0.86"' in xml
    assert 'name="expected" value="&gt;= baseline + 0.01"' in xml


def test_criteria_receive_fixtures_of_any_scope(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["organization"]
        [tool.mlfunnel.organization.budget]
        metrics = { fixture = "serving_costs" }
        expect = { usd_per_1k_predictions = "<= 0.05", "gpu.hours" = "<= 10" }
        [tool.mlfunnel.organization.team]
        metrics = { fixture = "team" }
        expect = { size = ">= 3" }
    """)
    pytester.makeconftest("""
        import pytest
        calls = []
        @pytest.fixture(scope="session")
        def serving_costs():
            calls.append(1)
            return {"usd_per_1k_predictions": 0.031, "gpu": {"hours": 4}}
        @pytest.fixture
        def team(tmp_path):
            return {"size": 2}
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["size 2, expected >= 3"])


def test_a_misspelled_fixture_is_a_usage_error_naming_its_key(pytester: pytest.Pytester,
                                                              xdist_args: list[str]) -> None:
    pytester.makeconftest("""
        import pytest
        @pytest.fixture
        def serving_cost():
            return {"usd": 0.01}
        @pytest.fixture
        def reviews_frame():
            return {"usd": 0.01}
    """)
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model", "organization"]
        [tool.mlfunnel.sources]
        reviews = { fixture = "reviews_frme" }
        [tool.mlfunnel.model.latency]
        timing = "serving_costz"
        expect = { p95_ms = "<= 50" }
        [tool.mlfunnel.organization.budget]
        metrics = { fixture = "serving_costs" }
        expect = { usd = "<= 0.05" }
        [tool.mlfunnel.organization.reviews]
        metrics = "reviews"
        expect = { usd = "<= 0.05" }
        [tool.mlfunnel.organization.unrelated]
        metrics = { fixture = "quarterly_numbers" }
        expect = { usd = "<= 0.05" }
    """)
    result = pytester.runpytest("--funnel", *xdist_args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: pyproject.toml: tool.mlfunnel.model.latency.timing: no fixture "
        "'serving_costz'; did you mean 'serving_cost'?",
        "*pyproject.toml: tool.mlfunnel.organization.budget.metrics.fixture: no fixture "
        "'serving_costs'; did you mean 'serving_cost'?",
        "*pyproject.toml: tool.mlfunnel.sources.reviews.fixture: no fixture 'reviews_frme'; "
        "did you mean 'reviews_frame'?",
        "*pyproject.toml: tool.mlfunnel.organization.unrelated.metrics.fixture: no fixture "
        "'quarterly_numbers'",
    ])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_fixture_of_a_conftest_below_the_config_is_not_visible_to_criteria(
        pytester: pytest.Pytester) -> None:
    pytester.mkpydir("tests")
    (pytester.path / "tests" / "conftest.py").write_text(
        "import pytest\n@pytest.fixture\ndef serving_cost():\n    return {'usd': 0.01}\n")
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["organization"]
        [tool.mlfunnel.organization.budget]
        metrics = { fixture = "serving_cost" }
        expect = { usd = "<= 0.05" }
    """)
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pyproject.toml: tool.mlfunnel.organization.budget."
                                 "metrics.fixture: no fixture 'serving_cost'"])


@pytest.mark.xdist_matters
def test_a_parametrized_source_fixture_is_a_usage_error_naming_it(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    pytester.makeconftest("""
        import pytest
        @pytest.fixture(params=["eu", "us"])
        def region(request):
            return request.param
        @pytest.fixture
        def costs(region):
            return {"usd": 0.01}
        @pytest.fixture(params=[1, 2, 3])
        def budgets(request):
            return {"usd": 0.01 * request.param}
    """)
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["organization"]
        [tool.mlfunnel.organization.serving]
        metrics = { fixture = "costs" }
        expect = { usd = "<= 0.05" }
        [tool.mlfunnel.organization.budget]
        metrics = { fixture = "budgets" }
        expect = { usd = "<= 0.05" }
    """)
    result = pytester.runpytest("--funnel", *xdist_args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: pyproject.toml: tool.mlfunnel.organization.serving.metrics.fixture: fixture "
        "'costs' depends on the parametrized fixture 'region' (2 values): a criterion reads "
        "one frame, so give it a fixture without params (one per value if each needs checking)",
        "*pyproject.toml: tool.mlfunnel.organization.budget.metrics.fixture: fixture 'budgets' "
        "is parametrized (3 values)*",
    ])
    assert "no parameter defined" not in result.stdout.str() + result.stderr.str()


# ----------------------------------------------------------------------------- outcomes
def test_waivers_turn_failures_into_waived_until_they_expire(pytester: pytest.Pytester) -> None:
    make_project(pytester, """
        [tool.mlfunnel]
        funnel = ["model"]
        require = "model"
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.95" }
        waive = { reason = "new labels arrive in March", until = "2999-03-31" }
        [tool.mlfunnel.model.legacy]
        metrics = "reports/eval.json"
        expect = { f1 = ">= 0.95" }
        waive = { reason = "old debt", until = "2020-01-31" }
    """)
    result = pytester.runpytest("--funnel", "-rx", "--funnel-json=report.json")
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines([
        "f1 0.71, expected >= 0.95 (the waiver expired on 2020-01-31: old debt)",
        "*waived until 2999-03-31: new labels arrive in March*",
    ])
    criteria = {c["check"]: c for c in report_of(pytester)["gates"][0]["criteria"]}
    assert criteria["quality"]["status"] == "waived"
    assert criteria["quality"]["extra"]["waiver"] == {
        "reason": "new labels arrive in March", "until": "2999-03-31", "expired": False}
    assert criteria["legacy"]["status"] == "failed"
    assert criteria["legacy"]["extra"]["waiver"]["expired"] is True
    assert result.ret == 1


def test_warn_severity_warns_without_failing(pytester: pytest.Pytester) -> None:
    make_project(pytester, """
        [tool.mlfunnel]
        funnel = ["model"]
        require = "model"
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.95" }
        severity = "warn"
    """)
    result = pytester.runpytest("--funnel", "-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["* 1 * model * warned * 0/1",
                                 "stage reached: model (1/1) · required: model · OK",
                                 "*warn: accuracy 0.86, expected >= 0.95*"])
    assert result.ret == 0


@pytest.mark.xdist_matters
def test_the_json_report_follows_the_schema(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    make_project(pytester, three_gates('require = "model"', f1=">= 0.9"))
    pytester.makepyprojecttoml(three_gates('require = "model"', f1=">= 0.9")
                               + '\n[project]\nname = "churn"\n')
    result = pytester.runpytest("--funnel", "--funnel-json=out/report.json", *xdist_args)
    assert result.ret == 1
    report = report_of(pytester, "out/report.json")
    assert report["schema"] == "mlfunnel-report/1"
    assert report["project"] == "churn"
    assert report["funnel"] == ["data", "problem", "model"]
    assert (report["required"], report["reached"], report["stage"], report["ok"]) == (
        "model", "data", 1, False)
    assert [(g["name"], g["status"], g["passed"], g["total"]) for g in report["gates"]] == [
        ("data", "passed", 1, 1), ("problem", "failed", 0, 1), ("model", "passed", 1, 1)]
    criterion = report["gates"][1]["criteria"][0]
    assert criterion["id"] == "pyproject.toml::problem::goal::f1"
    assert criterion["kind"] == "metrics"
    assert criterion["evidence"] == "measured"
    assert criterion["observed"] == 0.71
    assert criterion["expected"] == ">= 0.9"
    assert criterion["message"] == "f1 0.71, expected >= 0.9"
    assert report["created"].endswith("Z")


def test_xdist_gives_the_same_report_as_a_plain_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"', f1=">= 0.9"))
    pytester.makepyfile(test_a="""
        import pytest
        @pytest.mark.funnel("model")
        def test_m(): pass
    """)
    plain = pytester.runpytest("--funnel", "--funnel-json=plain.json")
    dist = pytester.runpytest("--funnel", "--funnel-json=dist.json", "-n", "2")
    assert plain.ret == dist.ret == 1

    def stable(report: dict) -> dict:
        report.pop("created")
        for gate in report["gates"]:
            for criterion in gate["criteria"]:
                criterion.pop("duration_s")
        return report

    assert stable(report_of(pytester, "plain.json")) == stable(report_of(pytester, "dist.json"))


def test_the_report_hook_receives_the_final_report(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    pytester.makeconftest("""
        def pytest_mlfunnel_report(report):
            print("HOOK", report.verdict.line(), report.to_dict()["stage"])
    """)
    result = pytester.runpytest("--funnel", "-s")
    result.stdout.fnmatch_lines(["*HOOK stage reached: model (3/3) · required: model · OK 3"])


def test_a_third_party_kind_joins_through_the_hook(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["organization"]
        [tool.mlfunnel.organization.gpu]
        gpu_hours = 12
    """)
    pytester.makeconftest("""
        from pytest_mlfunnel.kinds.base import CheckConfig, CheckKind, Criterion
        from pytest_mlfunnel.outcome import Outcome

        class GpuConfig(CheckConfig):
            gpu_hours: float

        class GpuKind(CheckKind):
            key = "gpu_hours"
            config_model = GpuConfig
            def plan(self, check, ctx):
                def evaluate(ev):
                    used = 15.0
                    if used <= check.gpu_hours:
                        return Outcome.passed(used)
                    return Outcome.failed(f"{used} GPU hours, budget {check.gpu_hours}", used)
                return [Criterion("hours", evaluate)]

        def pytest_mlfunnel_check_kinds():
            return [GpuKind]
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["15.0 GPU hours, budget 12.0"])


def test_a_third_party_kind_cannot_take_a_builtin_key(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates())
    pytester.makeconftest("""
        from pytest_mlfunnel.kinds.metrics import MetricsKind
        class Clash(MetricsKind):
            pass
        def pytest_mlfunnel_check_kinds():
            return [Clash]
    """)
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: mlfunnel: check kind 'metrics' from "
                                 "pytest_mlfunnel_check_kinds is already registered"])


def test_a_crashing_check_is_an_error_not_an_internal_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.boom]
        boom = true
    """)
    pytester.makeconftest("""
        from pytest_mlfunnel.kinds.base import CheckConfig, CheckKind, Criterion
        class BoomConfig(CheckConfig):
            boom: bool
        class BoomKind(CheckKind):
            key = "boom"
            config_model = BoomConfig
            def plan(self, check, ctx):
                return [Criterion("x", lambda ev: 1 / 0)]
        def pytest_mlfunnel_check_kinds():
            return [BoomKind]
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["ZeroDivisionError: division by zero (raised at "
                                 "conftest.py:8, in <lambda>)"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_secrets_from_the_environment_are_masked(pytester: pytest.Pytester,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGE_DB", "postgresql://app:hunter2@127.0.0.1:1/usage")
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["usage"]
        [tool.mlfunnel.sources]
        usage = { url = "${USAGE_DB}", query = "select 1 as requests" }
        [tool.mlfunnel.usage.weekly]
        metrics = "usage"
        expect = { requests = ">= 700" }
    """)
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    assert result.ret == 1
    assert "hunter2" not in result.stdout.str() + result.stderr.str()
    assert "hunter2" not in (pytester.path / "report.json").read_text()
    result.stdout.fnmatch_lines(["usage (***): connection failed: *"])


def test_the_header_names_the_config(pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    result = pytester.runpytest("--funnel")
    result.stdout.fnmatch_lines(["mlfunnel: pyproject.toml · 3 gates · 3 checks · required: model"])


def test_another_config_file_can_be_given(pytester: pytest.Pytester) -> None:
    make_project(pytester, "[tool.other]\n")
    (pytester.path / "funnel.toml").write_text(three_gates('require = "model"'))
    result = pytester.runpytest("--funnel-config=funnel.toml", "-v")
    result.stdout.fnmatch_lines(["funnel.toml::data::volume::accuracy PASSED*"])
    assert result.ret == 0
    missing = pytester.runpytest("--funnel-config=nope.toml")
    assert missing.ret == 4
    missing.stderr.fnmatch_lines(["ERROR: --funnel-config: nope.toml: file not found"])
    (pytester.path / "conf").mkdir()
    folder = pytester.runpytest("--funnel-config=conf")
    assert folder.ret == 4
    folder.stderr.fnmatch_lines(
        ["ERROR: --funnel-config: conf: is a directory: give the TOML file in it"])


def test_no_funnel_section_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.other]\nx = 1\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: pyproject.toml: no [tool.mlfunnel] section (run "
                                 "'mlfunnel init' to write a starter one, or give "
                                 "--funnel-config=PATH)"])


def test_a_rootdir_without_pyproject_is_named(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: pyproject.toml: file not found (looked for "
                                 f"{pytester.path / 'pyproject.toml'}; pytest's rootdir decides "
                                 "where, or give --funnel-config=PATH)"])


def test_a_report_path_that_cannot_be_written_is_a_usage_error(
        pytester: pytest.Pytester) -> None:
    make_project(pytester, three_gates('require = "model"'))
    (pytester.path / "blocker").write_text("a file, not a directory")
    result = pytester.runpytest("--funnel", "--funnel-json=blocker/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --funnel-json: blocker/report.json: blocker is not a "
                                 "directory"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_the_default_funnel_has_eight_gates(pytester: pytest.Pytester, tmp_path: Path) -> None:
    make_project(pytester, """
        [tool.mlfunnel]
        [tool.mlfunnel.data.volume]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.5" }
    """)
    result = pytester.runpytest("--funnel")
    result.stdout.fnmatch_lines([
        "* 1 * data * passed*", "* 2 * problem * empty*", "* 3 * model * empty*",
        "* 4 * organization * empty*", "* 5 * deployment * empty*", "* 6 * usage * empty*",
        "* 7 * effectiveness * empty*", "* 8 * maintenance * empty*",
        "stage reached: data (1/8) · required: none set · OK"])

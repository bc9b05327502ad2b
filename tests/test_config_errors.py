"""Every broken config stops the run before collection: exit 4, one line per problem."""

from __future__ import annotations

import os
import textwrap

import pytest

BROKEN = [
    pytest.param(
        '[tool.mlfunnel]\nrequire = "modle"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.require: expected a gate name or 'none', got "
         "'modle' (gates: data, problem, model, organization, deployment, usage, effectiveness, "
         "maintenance); did you mean 'model'?"],
        id="unknown-required-gate"),
    pytest.param(
        '[tool.mlfunnel.modle.quality]\nmetrics = "r.json"\nexpect = { a = ">= 1" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.modle: unknown gate 'modle' (the funnel is: "
         "data, problem, model, organization, deployment, usage, effectiveness, maintenance); "
         "did you mean 'model'?"],
        id="unknown-gate"),
    pytest.param(
        '[tool.mlfunnel]\nthreshold = 3\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.threshold: unknown key (allowed: require, funnel, "
         "history, project, sources, services, or a gate table)"],
        id="unknown-top-level-key"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\ndocument = "card.md"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality: two kind keys in one check: "
         "metrics, document (split it into two checks)"],
        id="two-kind-keys"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nexpect = { a = ">= 1" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality: no check kind: give exactly one of "
         "coverage, dataset, *; found expect, which is not a kind key"],
        id="no-kind-key"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = { accuracy = "0.8" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality.expect.accuracy: not a valid "
         "expectation: '0.8' (OP VALUE, e.g. '>= 0.8', '<= 5%', '<= 30 days', "
         "'>= baseline + 0.01')"],
        id="malformed-expectation"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "evl"\nexpect = { accuracy = ">= 0.8" }\n'
        '[tool.mlfunnel.sources]\neval = "reports/eval.json"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality.metrics: unknown source 'evl': not a "
         "declared source and not a path (declared sources: eval); did you mean 'eval'?"],
        id="unknown-source"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = { accuracy = ">= 0.8" }\n'
        'severity = "fatal"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality.severity: Input should be 'block' or "
         "'warn'*"],
        id="bad-severity"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = { accuracy = ">= 0.8" }\n'
        'waive = { reason = "x", until = "next spring" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality.waive.until: expected an ISO date "
         "such as 2027-03-31, got 'next spring'"],
        id="bad-waiver-date"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = { accuracy = ">= 0.8" }\n'
        'waive = { until = 2027-03-31 }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality.waive.reason: missing required key"],
        id="waiver-without-reason"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = { f1 = ">= baseline" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality: expect.f1: '>= baseline' compares "
         "with the baseline, but no 'baseline' source is given"],
        id="baseline-missing"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = { a = ">= 1" }\n'
        'treshold = 3\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality.treshold: unknown key (allowed: "
         "description, severity, waive, metrics, expect, baseline)"],
        id="typo-key"),
    pytest.param(
        '[tool.mlfunnel]\nfunnel = ["data", "data"]\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.funnel: gate 'data' appears twice"],
        id="duplicate-gate"),
    pytest.param(
        '[tool.mlfunnel]\nfunnel = "data"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.funnel: expected a non-empty list of gate names"],
        id="funnel-not-a-list"),
    pytest.param(
        '[tool.mlfunnel.sources]\nusage = { url = "${NO_SUCH_VAR_XYZ}", query = "select 1" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.sources.usage.url: environment variable "
         "NO_SUCH_VAR_XYZ is not set (write ${NO_SUCH_VAR_XYZ:-default} to give a default)"],
        id="unset-env-var"),
    pytest.param(
        '[tool.mlfunnel.sources]\ntrain = { path = "a.csv", fixture = "f" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.sources.train: a source needs exactly one of path, "
         "fixture, url, spark (got path, fixture)"],
        id="source-two-locations"),
    pytest.param(
        '[tool.mlfunnel.sources]\ntrain = { query = "select 1", path = "a.csv" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.sources.train: query and table go with url "
         "(a database)"],
        id="query-without-url"),
    pytest.param(
        '[tool.mlfunnel.data]\ntrain = "data/train.csv"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data.train: expected a check table with one kind "
         "key (*)"],
        id="check-not-a-table"),
    pytest.param(
        '[tool.mlfunnel]\ndata = 5\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data: expected a table of checks, e.g. "
         "[tool.mlfunnel.data.<check-name>]"],
        id="gate-not-a-table"),
    pytest.param(
        '[tool.mlfunnel.problem.statement]\ndocument = "docs/problem.md"\nmax_age = 30\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.problem.statement.max_age: a duration needs a "
         "unit: '30 days'?"],
        id="duration-without-unit"),
    pytest.param(
        '[tool.mlfunnel.maintenance.artifacts]\nfiles = []\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.maintenance.artifacts.files: give one or more "
         "paths or globs, e.g. ['docs/runbook.md']"],
        id="files-empty"),
    pytest.param(
        '[tool.mlfunnel.maintenance.owners]\nowners = 2\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.maintenance.owners.owners: expected a string such "
         "as '>= 0.8', got int 2"],
        id="owners-not-an-expectation"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = {}\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality: expect: give at least one metric, "
         "e.g. expect = { accuracy = \">= 0.8\" }"],
        id="empty-expect"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = { "" = ">= 0.8" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality: expect: a metric name is empty "
         "(\"\" = ...); name the metric, e.g. expect = { accuracy = \">= 0.8\" }"],
        id="empty-metric-name"),
    pytest.param(
        '[tool.mlfunnel]\nhistory = "./pyproject.toml"\n[tool.mlfunnel.model.quality]\n'
        'metrics = "r.json"\nexpect = { accuracy = ">= 0.8" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.history: './pyproject.toml' is this config file: "
         "recording would write JSON lines into it; give the history a file of its own (e.g. "
         "'.mlfunnel/history.jsonl')"],
        id="history-is-the-config"),
    pytest.param(
        '[tool.mlfunnel.data.train]\ndataset = "a.csv"\ncolumns.age = "unique"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data.train.columns.age: expected a table (keys: "
         "nulls, unique, min, max, values, min_share, dtype, max_age), got 'unique'"],
        id="column-rules-not-a-table"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = { a = ">= 1" }\n'
        'waive = true\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality.waive: expected a table (keys: "
         "reason, until), got True"],
        id="waiver-not-a-table"),
    pytest.param(
        '[tool.mlfunnel.model.quality]\nmetrics = "r.json"\nexpect = ">= 0.8"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.quality.expect: expected a table, got "
         "'>= 0.8'"],
        id="expect-not-a-table"),
    pytest.param(
        '[tool.mlfunnel.model.card]\ndocument = "MODEL_CARD.md"\nsections = "Intended use"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.card.sections: expected a list, got "
         "'Intended use'"],
        id="sections-not-a-list"),
    pytest.param(
        '[tool.mlfunnel.model."qualité"]\nmetrics = "r.json"\nexpect = { a = ">= 1" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.model.qualité: a check name may use only ASCII "
         "letters, digits and _ . - (not first: . -)"],
        id="check-name-not-ascii"),
    pytest.param(
        '[tool.mlfunnel.sources]\ntrain = { url = "${DB_URL", query = "select 1" }\n'
        '[tool.mlfunnel.deployment.health]\nhttp = "${MODEL URL}/health"\n'
        'headers = { Authorization = "Bearer ${TOKEN}" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.sources.train.url: '${DB_URL' is not a "
         "${NAME} reference (write ${NAME} or ${NAME:-default}; a name is letters, digits "
         "and _)",
         "ERROR: pyproject.toml: tool.mlfunnel.deployment.health.http: '${MODEL' is not a "
         "${NAME} reference (write ${NAME} or ${NAME:-default}; a name is letters, digits "
         "and _)",
         "ERROR: pyproject.toml: tool.mlfunnel.deployment.health.headers.Authorization: "
         "environment variable TOKEN is not set (write ${TOKEN:-default} to give a default)"],
        id="malformed-env-reference"),
    pytest.param(
        '[tool.mlfunnel.deployment.health]\nhttp = "${services.model.url}/health"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.deployment.health.http: unknown service 'model' "
         "in ${services.model.url} (services: none declared: add "
         "[tool.mlfunnel.services.<name>])"],
        id="unknown-service-once"),
    pytest.param(
        '[tool.mlfunnel]\nfunnel = ["données", "-model"]\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.funnel: 'données' cannot be a gate name (only "
         "ASCII letters, digits and _ . -, not first: . -; not a reserved key)",
         "ERROR: pyproject.toml: tool.mlfunnel.funnel: '-model' cannot be a gate name (only "
         "ASCII letters, digits and _ . -, not first: . -; not a reserved key)"],
        id="gate-name-not-ascii"),
]


@pytest.mark.parametrize(("config", "lines"), BROKEN)
def test_a_broken_config_is_a_usage_error_naming_the_key(pytester: pytest.Pytester, config: str,
                                                         lines: list[str]) -> None:
    (pytester.path / "pyproject.toml").write_text(textwrap.dedent(config))
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines(lines)
    assert len([line for line in result.stderr.lines if line.startswith("ERROR: ")]) == len(
        lines), "one line per problem, none repeated by what follows from it"
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    assert "collected" not in output


def test_all_problems_are_reported_at_once(pytester: pytest.Pytester,
                                           xdist_args: list[str]) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        require = "deploy"
        [tool.mlfunnel.data.train]
        metrics = "m.json"
        expect = { rows = "lots" }
        [tool.mlfunnel.model.card]
        document = "MODEL_CARD.md"
        sections = "Intended use"
    """)
    result = pytester.runpytest("--funnel", *xdist_args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([
        "ERROR: pyproject.toml: tool.mlfunnel.require: expected a gate name or 'none'*",
        "ERROR: pyproject.toml: tool.mlfunnel.data.train.expect.rows: not a valid expectation*",
        "ERROR: pyproject.toml: tool.mlfunnel.model.card.sections: expected a list, got*",
    ])


def test_a_config_with_hundreds_of_problems_shows_the_first_ones_and_how_many_more(
        pytester: pytest.Pytester) -> None:
    checks = "".join(f'[tool.mlfunnel.data.c{i}]\nmetrics = "m.json"\nexpect = {{ rows = "lots" }}\n'
                     for i in range(300))
    pytester.makepyprojecttoml(checks)
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR: ")]
    assert len(errors) == 51
    assert errors[0] == ("ERROR: pyproject.toml: tool.mlfunnel.data.c0.expect.rows: not a valid "
                         "expectation: 'lots' (OP VALUE, e.g. '>= 0.8', '<= 5%', '<= 30 days', "
                         "'>= baseline + 0.01')")
    assert errors[49].startswith("ERROR: pyproject.toml: tool.mlfunnel.data.c49.expect.rows: ")
    assert errors[50] == "ERROR: pyproject.toml: and 250 more problems (300 in all)"


def test_env_defaults_fill_unset_variables(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.quality]
        metrics = "${EVAL_FILE_XYZ:-reports/eval.json}"
        expect = { accuracy = ">= 0.5" }
    """)
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "eval.json").write_text('{"accuracy": 0.9}')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1)


def test_a_path_that_does_not_exist_yet_is_an_error_criterion_not_a_config_error(
        pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.5" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["reports/eval.json: file not found (expected at *; an earlier "
                                 "CI step should write it)"])
    assert result.ret == 1


def test_a_config_file_that_is_not_toml_is_named(pytester: pytest.Pytester) -> None:
    (pytester.path / "funnel.toml").write_text('[tool.mlfunnel\nrequire = "model"\n')
    result = pytester.runpytest("--funnel-config=funnel.toml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: funnel.toml: not valid TOML: Expected ']' at the end of a "
                                 "table declaration (at line 1, column 15)"])


def test_a_config_file_saved_with_a_byte_order_mark_says_so(pytester: pytest.Pytester) -> None:
    (pytester.path / "funnel.toml").write_bytes(b'\xef\xbb\xbf[tool.mlfunnel]\nrequire = "none"\n')
    result = pytester.runpytest("--funnel-config=funnel.toml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: funnel.toml: not valid TOML: the file starts with a "
                                 "byte order mark (BOM), which TOML does not allow; save it as "
                                 "UTF-8 without BOM"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_config_path_that_is_not_a_file_says_what_it_is(pytester: pytest.Pytester) -> None:
    (pytester.path / "folder.toml").mkdir()
    os.mkfifo(pytester.path / "pipe.toml")
    for name, message in (("folder.toml", "is a directory: give the TOML file in it"),
                          ("pipe.toml", "is a FIFO (named pipe), expected a TOML file"),
                          ("absent.toml", "file not found")):
        result = pytester.runpytest(f"--funnel-config={name}")
        assert result.ret == 4
        result.stderr.fnmatch_lines([f"ERROR: --funnel-config: {name}: {message}"])


def test_a_config_nested_too_deeply_is_one_line(pytester: pytest.Pytester) -> None:
    (pytester.path / "funnel.toml").write_text(
        '[tool.mlfunnel]\nrequire = "model"\nx = ' + "[" * 5000 + "]" * 5000 + "\n")
    result = pytester.runpytest("--funnel-config=funnel.toml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: funnel.toml: not valid TOML: arrays or tables nested "
                                 "too deeply to read"])
    assert "Traceback" not in result.stderr.str()


def test_an_empty_section_shows_the_empty_funnel_and_exits_as_pytest_does_with_nothing(
        pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.mlfunnel]\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*data*empty*0/0", "*maintenance*empty*0/0",
                                 "stage reached: none (0/8) · required: none set · OK"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()

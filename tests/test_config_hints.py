"""Config mistakes answer with the fix: the nearest allowed name, the allowed keys, the range."""

from __future__ import annotations

import json
import textwrap

import pytest

# imported once here: pytester's in-process runs must not import a kind's models twice
import pytest_mlfunnel.kinds.drift  # noqa: F401

RULE_KEYS = "nulls, unique, min, max, values, min_share, dtype, max_age"

MISTAKES = [
    pytest.param(
        '[tool.mlfunnel.data.train]\ndatasets = "data/train.csv"\nrows = ">= 1"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data.train.datasets: unknown key; did you mean "
         "'dataset'?"],
        id="misspelled-kind"),
    pytest.param(
        '[tool.mlfunnel.data.train]\nrows = ">= 1"\ncolumn = 3\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data.train: no check kind: give exactly one of "
         "coverage, dataset, document, drift, effect, files, http, metrics, owners, *timing; "
         "found rows, column, which are not kind keys"],
        id="no-kind-names-what-it-found"),
    pytest.param(
        '[tool.mlfunnel]\nrequre = "data"\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.requre: unknown key; did you mean 'require'?"],
        id="misspelled-top-level-key"),
    pytest.param(
        '[tool.mlfunnel.data.train]\ndataset = "data/train.csv"\n'
        'columns.age = { nulls = "== 0", uniqe = true }\n',
        [f"ERROR: pyproject.toml: tool.mlfunnel.data.train.columns.age.uniqe: unknown key; did "
         f"you mean 'unique'? (allowed: {RULE_KEYS})"],
        id="misspelled-column-rule"),
    pytest.param(
        '[tool.mlfunnel.data.train]\ndataset = "data/train.csv"\n'
        'columns.age = { nulls = "== 0", positive = true }\n',
        [f"ERROR: pyproject.toml: tool.mlfunnel.data.train.columns.age.positive: unknown key "
         f"(allowed: {RULE_KEYS})"],
        id="unknown-column-rule-lists-the-rules"),
    pytest.param(
        '[tool.mlfunnel.data.train]\ndataset = "data/train.csv"\ncolumns.id = { unique = "yes" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data.train.columns.id.unique: expected true or "
         "false, got 'yes'"],
        id="strict-boolean"),
    pytest.param(
        '[tool.mlfunnel.maintenance.drift]\ndrift = { reference = "a.csv", current = "b.csv" }\n'
        'expect = { psi = "<= 0.2" }\ncache = 1\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.maintenance.drift.cache: expected true or false, "
         "got 1"],
        id="strict-boolean-of-another-kind"),
    pytest.param(
        '[tool.mlfunnel.data.train]\ndataset = "data/train.csv"\n'
        'join = { dataset = "data/r.csv", on = "id", match = ">= 90" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data.train.join.match: match (the share of rows "
         "whose key is found) is a share: write '>= 90%' or '>= 0.9', not '>= 90'"],
        id="join-match-is-a-share"),
    pytest.param(
        '[tool.mlfunnel.data.train]\ndataset = "data/train.csv"\n'
        'join = { dataset = "data/r.csv", on = "id", match = ">= 30 days" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data.train.join.match: match (the share of rows "
         "whose key is found) is a share: write e.g. '>= 90%' or '>= 0.9', not '>= 30 days'"],
        id="join-match-is-not-a-duration"),
    pytest.param(
        '[tool.mlfunnel.data.train]\ndataset = "data/train.csv"\nduplicates = "<= 150%"\n'
        'columns.age = { nulls = "<= 101%" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.data.train.duplicates: a percentage compares "
         "the share of rows, between 0 and 100%, got '<= 150%'",
         "ERROR: pyproject.toml: tool.mlfunnel.data.train.columns.age.nulls: a percentage "
         "compares the share of rows, between 0 and 100%, got '<= 101%'"],
        id="percentages-of-rows-stay-within-100"),
    pytest.param(
        '[tool.mlfunnel.sources]\ntrain = { pth = "data/train.csv" }\n',
        ["ERROR: pyproject.toml: tool.mlfunnel.sources.train: unknown key 'pth' in source "
         "(allowed: path, fixture, url, spark, query, table, format, options, description); did "
         "you mean 'path'?"],
        id="misspelled-source-key"),
]


@pytest.mark.parametrize(("config", "lines"), MISTAKES)
def test_a_config_mistake_answers_with_the_fix(pytester: pytest.Pytester, config: str,
                                               lines: list[str]) -> None:
    pytester.makepyprojecttoml(config)
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(lines)
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_misspelled_required_gate_on_the_command_line_gets_the_nearest(
        pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.mlfunnel]\nfunnel = ["data", "model"]\n')
    result = pytester.runpytest("--funnel", "--funnel-require=modle")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --funnel-require: unknown gate 'modle' (gates: data, "
                                 "model, or 'none'); did you mean 'model'?"])


def test_a_misspelled_column_gets_the_nearest_column(pytester: pytest.Pytester) -> None:
    (pytester.path / "train.csv").write_text("customer_id,age\n1,30\n2,41\n")
    pytester.makepyprojecttoml(textwrap.dedent("""
        [tool.mlfunnel]
        funnel = ["data"]
        [tool.mlfunnel.data.train]
        dataset = "train.csv"
        columns.agee = { nulls = "== 0" }
    """))
    result = pytester.runpytest("--funnel")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        " 1 * data * FAILED * 0/1",
        "      data::train::agee.nulls: agee: no such column in train.csv (columns:",
        "        customer_id, age); did you mean 'age'?",
    ])


def test_a_share_held_to_a_plain_percentage_says_so(pytester: pytest.Pytester,
                                                    xdist_args: list[str]) -> None:
    (pytester.path / "eval.json").write_text(json.dumps({"accuracy": 0.9815, "rows": 12}))
    pytester.makepyprojecttoml(textwrap.dedent("""
        [tool.mlfunnel]
        funnel = ["model"]
        [tool.mlfunnel.model.quality]
        metrics = "eval.json"
        expect = { accuracy = ">= 90", rows = ">= 90" }
    """))
    result = pytester.runpytest("--funnel", "--funnel-json=r.json", *xdist_args)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "      model::quality::accuracy: accuracy 0.9815, expected >= 90 -- did you mean",
        "        90%?",
        "      model::quality::rows: rows 12, expected >= 90",  # a count: no hint
    ])
    report = json.loads((pytester.path / "r.json").read_text())
    messages = [c["message"] for c in report["gates"][0]["criteria"]]
    assert messages == ["accuracy 0.9815, expected >= 90 -- did you mean 90%?",
                        "rows 12, expected >= 90"]

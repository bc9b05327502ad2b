"""Odd evidence files a real project has: a Markdown document written on Windows, headings
commented out or inside code, sign-offs dated ahead, through real ``pytest --funnel`` runs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config(pytester: pytest.Pytester, body: str, funnel: str = '["model"]') -> None:
    pytester.makepyprojecttoml(f"[tool.mlfunnel]\nfunnel = {funnel}\n" + textwrap.dedent(body))


# ----------------------------------------------------------------------------- documents
def test_a_document_saved_with_a_byte_order_mark_keeps_its_first_heading(
        pytester: pytest.Pytester) -> None:
    write(pytester.path, "docs/card.md",
          "\ufeff# Intended Use\n\nChurn scoring for the retention team.\n".encode("utf-8"))
    config(pytester, """
        [tool.mlfunnel.model.card]
        document = "docs/card.md"
        sections = ["Intended Use"]
    """)
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*model::card::section-intended-use PASSED*"])


def test_a_heading_inside_an_html_comment_is_not_a_section(pytester: pytest.Pytester) -> None:
    # a template's commented-out heading: rendered, the card shows no 'Factors' section and
    # an empty 'Metrics' one
    write(pytester.path, "docs/card.md", """\
        # Intended Use
        Churn scoring for the retention team.

        ## Metrics
        <!--
        ## Factors
        Which groups the model may treat differently.
        -->

        ## Sign-off
        - Owner: Jane Doe, 2026-11-01
    """)
    config(pytester, """
        [tool.mlfunnel.model.card]
        document = "docs/card.md"
        sections = ["Metrics", "Factors"]
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "docs/card.md: section 'Metrics' is empty (only an HTML comment)",
        "docs/card.md: no section 'Factors' (sections: Intended Use, Metrics, Sign-off)",
    ])


def test_a_heading_inside_a_longer_code_fence_is_code(pytester: pytest.Pytester) -> None:
    # a four-backtick fence shows a three-backtick one: the inner ``` closes nothing
    write(pytester.path, "docs/card.md", """\
        # Intended Use
        How to write the card:

        ````markdown
        ```
        # Metrics
        ```
        AUC on the holdout month.
        ````

        ~~~
        # Factors
        ```
        ~~~
        # Caveats
        Only for customers with a year of history.
    """)
    config(pytester, """
        [tool.mlfunnel.model.card]
        document = "docs/card.md"
        sections = ["Metrics", "Factors", "Caveats"]
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "docs/card.md: no section 'Metrics' (sections: Intended Use, Caveats)",
        "docs/card.md: no section 'Factors' (sections: Intended Use, Caveats)",
    ])


def test_a_sign_off_dated_in_the_future_is_not_a_sign_off(pytester: pytest.Pytester) -> None:
    write(pytester.path, "docs/card.md", """\
        # Intended Use
        Churn scoring.

        ## Sign-off
        | Role | Name | Date |
        |---|---|---|
        | Owner | Jane Doe | 2062-01-01 |
        | Reviewer | Raj Patel | 2026-11-01 |
    """)
    config(pytester, """
        [tool.mlfunnel.model.card]
        document = "docs/card.md"
        sections = []
        sign_off = ["Owner", "Reviewer"]
        max_age = "3650 days"
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "docs/card.md: the 'Owner' sign-off is dated 2062-01-01, in the future "
        "('| Owner | Jane Doe | 2062-01-01 |')",
        "docs/card.md: the sign-off by 'Owner' is dated 2062-01-01, in the future, so the "
        "document's age cannot be told, expected <= 3650 days old",
    ])


# ----------------------------------------------------------------------------- metrics files
def test_a_metric_written_twice_in_one_json_object_is_an_error_not_the_last_value(
        pytester: pytest.Pytester) -> None:
    # two writers appended to one object: json keeps the last accuracy (0.95), which passed
    write(pytester.path, "reports/eval.json",
          '{"accuracy": 0.7, "f1": {"macro": 0.5, "macro": 0.9}, "accuracy": 0.95, '
          '"auc": 0.8}')
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.9", "f1.macro" = ">= 0.8", auc = ">= 0.75" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "accuracy: reports/eval.json has 2 values of that name (a key written twice in one "
        "object, or written with dots and the same path through nested keys or lists); "
        "rename one of them",
        "f1.macro: reports/eval.json has 2 values of that name (a key written twice in one "
        "object, or written with dots and the same path through nested keys or lists); "
        "rename one of them",
    ])


def test_a_metric_that_is_not_finite_names_its_file(pytester: pytest.Pytester) -> None:
    write(pytester.path, "reports/eval.json", '{"auc": NaN, "loss": Infinity}')
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { auc = ">= 0.5", loss = "<= 1" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random([
        "auc in reports/eval.json is NaN, expected >= 0.5",
        "loss in reports/eval.json is inf (not a finite number), expected <= 1",
    ])


# ----------------------------------------------------------------------------- CODEOWNERS
def test_codeowners_in_dot_github_wins_over_the_root_as_on_github(
        pytester: pytest.Pytester) -> None:
    # GitHub reads .github/CODEOWNERS first, then the root, then docs/: an old root file
    # left behind does not decide who owns the code
    write(pytester.path, "CODEOWNERS", "* @alice @bob @carol\n")
    write(pytester.path, ".github/CODEOWNERS", "* @alice\n")
    config(pytester, """
        [tool.mlfunnel.maintenance.bus]
        owners = ">= 2"
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["1 distinct owner in .github/CODEOWNERS (@alice), "
                                 "expected >= 2"])


def test_codeowners_escapes_and_negation_count_the_owners_github_counts(
        pytester: pytest.Pytester) -> None:
    write(pytester.path, ".github/CODEOWNERS", r"""
        # comment @nobody
        *               @alice   # default owner, not @carol
        docs/\#notes.md  @bob
        my\ @dir/        @dave
        !vendor/         @eve
        /build/ @alice
    """)
    config(pytester, """
        [tool.mlfunnel.maintenance.bus]
        owners = ">= 4"
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    # by hand: @alice (twice), @bob behind an escaped '#', @dave after a path with an escaped
    # space; not @nobody or @carol (comments), not the path's '@dir/', not @eve (GitHub
    # skips a negated pattern: that line owns nothing)
    result.stdout.fnmatch_lines(["3 distinct owners in .github/CODEOWNERS (@alice, @bob, "
                                 "@dave), expected >= 4"])


# ----------------------------------------------------------------------------- files
def test_a_path_with_brackets_that_exists_is_found_as_written(pytester: pytest.Pytester) -> None:
    # "[1]" is also a glob class matching "1": the folder that is there was said missing
    write(pytester.path, "reports/[2026-11]/eval.json", "{}")
    write(pytester.path, "app/[id]/page.md", "x")
    config(pytester, """
        [tool.mlfunnel.maintenance.f]
        files = ["reports/[2026-11]/eval.json", "app/[id]/*.md", "app/[xyz]/nothing.md"]
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*maintenance::f::reports/-2026-11-/eval.json PASSED*"])
    hint = "('[' starts a set of characters in a glob: write '[[]' for a '[' in a name)"
    # compared as text: the brackets of the message would be classes to fnmatch
    assert f"app/[id]/*.md: no such file {hint}" in result.stdout.lines
    assert f"app/[xyz]/nothing.md: no such file {hint}" in result.stdout.lines


def test_a_series_written_twice_in_a_prom_file_is_an_error_not_a_sum(
        pytester: pytest.Pytester) -> None:
    # two textfile writers appended to one file: the selector summed 0.91 + 0.5 and passed
    # ">= 0.8"; the exposition format allows each series once
    write(pytester.path, "ops/model.prom", """\
        # TYPE model_auc gauge
        model_auc{split="test",model="a\\"b"} 0.91
        model_auc{split="train"} 0.99
        model_auc{model="a\\"b",split="test"} 0.5
        # TYPE up gauge
        up 1
    """)
    config(pytester, """
        [tool.mlfunnel.sources]
        ops = "ops/model.prom"
        [tool.mlfunnel.model.auc]
        metrics = "ops"
        expect = { 'model_auc{split="test"}' = ">= 0.8", up = ">= 1" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        'ops (ops/model.prom): the series model_auc{model="a\\"b",split="test"} is written '
        "2 times (values 0.91, 0.5); an exposition holds each series once"])


# ----------------------------------------------------------------------------- special files
def test_a_fifo_given_as_coverage_data_or_owners_file_is_named_as_one(
        pytester: pytest.Pytester) -> None:
    os.mkfifo(pytester.path / "coverage.xml")
    os.mkfifo(pytester.path / "OWNERS")
    config(pytester, """
        [tool.mlfunnel.maintenance.tests]
        coverage = ">= 80%"
        data_file = "coverage.xml"
        [tool.mlfunnel.maintenance.bus]
        owners = ">= 2"
        file = "OWNERS"
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random([
        "coverage.xml: is a FIFO (named pipe), not a regular file; refused before opening it "
        "(reading it could wait forever)",
        "OWNERS: is a FIFO (named pipe), not a regular file; refused before opening it "
        "(reading it could wait forever): 0 owners, expected >= 2",
    ])


def test_a_rule_under_a_list_item_does_not_end_the_section(pytester: pytest.Pytester) -> None:
    # "- AUC 0.91 ..." then "---" is a list and a horizontal rule, not a heading: read as
    # one, it cut the section above it short and 'Metrics' was said empty
    write(pytester.path, "docs/card.md", """\
        # Intended Use
        Scoring customers for retention offers.

        ## Metrics
        - AUC 0.91 on the holdout month
        ---

        ## Factors
        > Region and tenure.
        ---
    """)
    config(pytester, """
        [tool.mlfunnel.model.card]
        document = "docs/card.md"
        sections = ["Metrics", "Factors"]
    """)
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*model::card::section-metrics PASSED*"])


def test_a_role_inside_a_longer_role_is_not_its_sign_off(pytester: pytest.Pytester) -> None:
    # "Owner" is a word of "Product Owner": the product owner's line signed for the owner
    write(pytester.path, "docs/card.md", """\
        # Intended Use
        Scoring customers for retention offers.

        ## Sign-off
        | Role | Name | Date |
        |---|---|---|
        | Product Owner | Jane Doe | 2026-11-01 |
    """)
    config(pytester, """
        [tool.mlfunnel.model.card]
        document = "docs/card.md"
        sections = []
        sign_off = ["Product Owner", "Owner"]
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["docs/card.md: no sign-off by 'Owner' in section 'Sign-off'"])

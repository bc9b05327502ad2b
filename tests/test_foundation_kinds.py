"""The four kinds of the foundation: metrics, document, files, owners — on real files."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from pytest_mlfunnel.kinds.document import meaningful_lines, parse_sections, parse_sign_offs
from pytest_mlfunnel.kinds.owners import parse_owners


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def config(pytester: pytest.Pytester, body: str, funnel: str = '["model"]') -> None:
    pytester.makepyprojecttoml(f"[tool.mlfunnel]\nfunnel = {funnel}\n" + textwrap.dedent(body))


# ----------------------------------------------------------------------------- metrics
def test_wildcards_yield_one_criterion_per_slice(pytester: pytest.Pytester) -> None:
    write(pytester.path, "reports/eval.json", json.dumps(
        {"slices": {"north": {"r2": 0.7}, "south": {"r2": 0.41}, "east": {"r2": 0.52}}}))
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { "slices.*.r2" = ">= 0.6" }
    """)
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "pyproject.toml::model::quality::slices.north.r2 PASSED*",
        "pyproject.toml::model::quality::slices.south.r2 FAILED*",
        "pyproject.toml::model::quality::slices.east.r2 FAILED*",
        "slices.south.r2 0.41, expected >= 0.6",
    ])


def test_wildcards_over_a_fixture_name_every_failing_slice(pytester: pytest.Pytester) -> None:
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = { fixture = "evaluation" }
        expect = { "slices.*.recall" = ">= 0.5" }
    """)
    pytester.makeconftest("""
        import pytest
        @pytest.fixture(scope="session")
        def evaluation():
            return {"slices": {"basic": {"recall": 0.8}, "pro": {"recall": 0.3},
                               "team": {"recall": 0.2}}}
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["2 of 3 failed: slices.pro.recall 0.3, expected >= 0.5; "
                                 "slices.team.recall 0.2, expected >= 0.5"])


def test_a_metric_name_that_matches_nothing_lists_the_names_that_exist(
        pytester: pytest.Pytester) -> None:
    write(pytester.path, "reports/eval.json", '{"accuracy": 0.9, "f1": {"macro": 0.8}}')
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { acuracy = ">= 0.8", "slices.*.r2" = ">= 0.6" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random([
        "acuracy: no such metric in reports/eval.json (metrics there: accuracy, f1.macro); "
        "did you mean 'accuracy'?",
        "slices.*.r2: no such metric in reports/eval.json (metrics there: accuracy, f1.macro)",
    ])


def test_baseline_arithmetic_against_a_baseline_file(pytester: pytest.Pytester) -> None:
    write(pytester.path, "reports/eval.json", '{"f1": 0.705, "latency": 120, "auc": 0.9}')
    write(pytester.path, "reports/prod.json", '{"f1": 0.70, "latency": 100}')
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        baseline = "reports/prod.json"
        expect = { f1 = ">= baseline + 0.01", latency = "<= baseline * 1.1", auc = ">= baseline" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines_random([
        "f1 0.705, expected >= 0.71 (baseline + 0.01, baseline 0.7)",
        "latency 120, expected <= 110 (baseline * 1.1, baseline 100)",
        "auc: not in the baseline reports/prod.json (metrics there: f1, latency)",
    ])


def test_expectations_written_as_dotted_toml_keys_name_nested_metrics(
        pytester: pytest.Pytester) -> None:
    write(pytester.path, "reports/eval.json", '{"slices": {"north": {"r2": 0.7}}, "auc": 0.9}')
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect.auc = ">= 0.8"
        expect.slices.north.r2 = ">= 0.75"
    """)
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(["*::model::quality::auc PASSED*",
                                        "slices.north.r2 0.7, expected >= 0.75"])


def test_a_name_two_values_flatten_to_is_an_error_not_a_choice(pytester: pytest.Pytester
                                                              ) -> None:
    """{"f1.macro": 0.2, "f1": {"macro": 0.9}}: one of the two passed, silently."""
    write(pytester.path, "reports/eval.json", json.dumps(
        {"accuracy": 0.9, "f1.macro": 0.2, "f1": {"macro": 0.9},
         "slices": {"north": {"r2": 0.8}}, "slices.north.r2": 0.1}))
    write(pytester.path, "reports/eval.toml", '"f1.macro" = 0.2\n[f1]\nmacro = 0.9\n')
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.8", "f1.macro" = ">= 0.5", "slices.*.r2" = ">= 0.5" }
        [tool.mlfunnel.model.toml]
        metrics = "reports/eval.toml"
        expect = { "f1.macro" = ">= 0.5" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=3)
    for name, origin in (("f1.macro", "reports/eval.json"), ("slices.north.r2",
                                                             "reports/eval.json"),
                         ("f1.macro", "reports/eval.toml")):
        result.stdout.fnmatch_lines([f"{name}: {origin} has 2 values of that name (a key "
                                     "written twice in one object, or written with dots and "
                                     "the same path through nested keys or lists); rename "
                                     "one of them"])


@pytest.mark.parametrize("encoded", [
    b"\xef\xbb\xbf" + b'{"accuracy": 0.91}',
    '{"accuracy": 0.91}'.encode("utf-16"),
], ids=["utf-8-with-bom", "utf-16"])
def test_a_json_metrics_file_with_a_bom_or_in_utf16_is_read(pytester: pytest.Pytester,
                                                             encoded: bytes) -> None:
    """Windows tools write both (PowerShell's Out-File, Set-Content -Encoding utf8BOM)."""
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "eval.json").write_bytes(encoded)
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.95" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["accuracy 0.91, expected >= 0.95"])


@pytest.mark.parametrize(("content", "message"), [
    (b'accuracy = 0.9\nnote = "caf\xe9"\n',
     "reports/eval.toml: not valid TOML (not UTF-8: byte 0xe9 at position 26)"),
    (b"accuracy = 0.9\ncurve = " + b"[" * 5000 + b"]" * 5000 + b"\n",
     "reports/eval.toml: not valid TOML (arrays or tables nested too deeply to read)"),
], ids=["latin-1", "nested-deeply"])
def test_a_toml_metrics_file_that_cannot_be_read_names_the_file(
        pytester: pytest.Pytester, content: bytes, message: str) -> None:
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "eval.toml").write_bytes(content)
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.toml"
        expect = { accuracy = ">= 0.8" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()


def test_toml_metrics_and_percent_display(pytester: pytest.Pytester) -> None:
    write(pytester.path, "reports/eval.toml", "[errors]\nshare = 0.023\n")
    config(pytester, """
        [tool.mlfunnel.model.errors]
        metrics = "reports/eval.toml"
        expect = { "errors.share" = "<= 1%" }
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["errors.share 2.3%, expected <= 1%"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"accuracy": 0.9', "reports/eval.json: not valid JSON "
                             "(line 1: Expecting ',' delimiter at column 17)"),
        ('{"accuracy": "0.9', "reports/eval.json: not valid JSON "
                              "(line 1: Unterminated string starting at column 14)"),
        ('[1, 2]', "reports/eval.json: expected a JSON object of metrics, got list"),
        ('{"accuracy": "high"}', "accuracy in reports/eval.json is 'high', not a number"),
        pytest.param('{"a": ' * 950 + "1" + "}" * 950,
                     "reports/eval.json: the JSON is nested too deeply to read", id="nested-950"),
        pytest.param('{"a": ' * 100_000 + "1" + "}" * 100_000,
                     "reports/eval.json: the JSON is nested too deeply to read",
                     id="nested-100000"),
        ('{"accuracy": ' + "9" * 5000 + "}",
         "reports/eval.json: not valid JSON (an integer of 5000 digits (at most 4300 are read))"),
    ],
    ids=["cut-short", "unterminated", "a-list", "a-word", "nested-950", "nested-100000",
         "thousands-of-digits"],
)
def test_bad_metrics_files_are_error_criteria(pytester: pytest.Pytester, content: str,
                                              message: str) -> None:
    write(pytester.path, "reports/eval.json", content)
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        expect = { accuracy = ">= 0.8" }
        [tool.mlfunnel.model.other]
        metrics = { fixture = "fine" }
        expect = { x = ">= 1" }
    """)
    pytester.makeconftest("""
        import pytest
        @pytest.fixture
        def fine():
            return {"x": 2}
    """)
    result = pytester.runpytest("--funnel", "--funnel-json=r.json")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([message])
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["gates"][0]["criteria"][0]["status"] == "error"


def test_infinite_metrics_fail_and_an_infinite_baseline_is_an_error(
        pytester: pytest.Pytester) -> None:
    """An evaluation that divided by zero wrote Infinity: it passed ">= 0.8"."""
    write(pytester.path, "reports/eval.json",
          '{"accuracy": Infinity, "loss": -Infinity, "f1": 0.7}')
    write(pytester.path, "reports/prod.json", '{"f1": NaN}')
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = "reports/eval.json"
        baseline = "reports/prod.json"
        expect = { accuracy = ">= 0.8", loss = "<= 0.5", f1 = ">= baseline" }
    """)
    result = pytester.runpytest("--funnel", "--funnel-json=r.json")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines_random([
        "accuracy in reports/eval.json is inf (not a finite number), expected >= 0.8",
        "loss in reports/eval.json is -inf (not a finite number), expected <= 0.5",
        "f1 in the baseline reports/prod.json is nan, not a finite number to compare with",
    ])
    criteria = json.loads((pytester.path / "r.json").read_text())["gates"][0]["criteria"]
    assert [c["status"] for c in criteria] == ["failed", "failed", "error"]


def test_a_fixture_that_returns_no_mapping_is_named(pytester: pytest.Pytester) -> None:
    config(pytester, """
        [tool.mlfunnel.model.quality]
        metrics = { fixture = "evaluation" }
        expect = { accuracy = ">= 0.8" }
    """)
    pytester.makeconftest("""
        import pytest
        @pytest.fixture
        def evaluation():
            return 0.9
    """)
    result = pytester.runpytest("--funnel")
    result.stdout.fnmatch_lines(["fixture 'evaluation' returned float, expected a mapping of "
                                 "metric names to numbers"])


# ----------------------------------------------------------------------------- document
PROBLEM = """\
    # Churn problem statement

    ## 1. Problem
    Subscribers cancel without warning; the retention team calls at random.

    ## Stakeholders
    TODO

    Success metric
    --------------
    <!-- fill in -->

    ## Baseline
    ### Today
    Random calls save 4% of at-risk customers.

    ## Sign-off
    | Role | Name | Date |
    |------|------|------|
    | Product | Jane Doe | 2026-10-01 |
    | Data science | Bob Roe | |
    - Engineering: TBD, 2026-10-02
    """


def test_sections_placeholders_and_sign_offs(pytester: pytest.Pytester) -> None:
    write(pytester.path, "docs/problem.md", PROBLEM)
    config(pytester, """
        [tool.mlfunnel.problem.statement]
        document = "docs/problem.md"
        sections = ["problem", "Stakeholders", "Success metric", "Baseline", "Risks"]
        sign_off = ["product", "data science", "engineering", "legal"]
    """, funnel='["problem"]')
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(passed=4, failed=6)
    result.stdout.fnmatch_lines_random([
        "*::problem::statement::exists PASSED*",
        "*::problem::statement::section-problem PASSED*",
        "*::problem::statement::section-baseline PASSED*",
        "*::problem::statement::sign-off-product PASSED*",
        "docs/problem.md: section 'Stakeholders' is only a placeholder (TODO)",
        "docs/problem.md: section 'Success metric' is empty (only an HTML comment)",
        "docs/problem.md: no section 'Risks' (sections: Churn problem statement, Problem, "
        "Stakeholders, Success metric, Baseline, Today, Sign-off)",
        "docs/problem.md: the 'data science' sign-off has no ISO date (YYYY-MM-DD)*",
        "docs/problem.md: the 'engineering' sign-off names no person*",
        "docs/problem.md: no sign-off by 'legal' in section 'Sign-off'",
    ])


def test_documents_are_attested_evidence(pytester: pytest.Pytester) -> None:
    write(pytester.path, "docs/problem.md", PROBLEM)
    config(pytester, """
        [tool.mlfunnel.problem.statement]
        document = "docs/problem.md"
        sections = ["Problem"]
    """, funnel='["problem"]')
    pytester.makepyfile(test_a="""
        import pytest
        @pytest.mark.funnel("problem")
        def test_interviews_recorded(): pass
    """)
    result = pytester.runpytest("--funnel", "--funnel-json=r.json")
    result.stdout.fnmatch_lines(["evidence: 1 measured · 2 attested"])
    report = json.loads((pytester.path / "r.json").read_text())
    assert [c["evidence"] for c in report["gates"][0]["criteria"]] == [
        "attested", "attested", "measured"]


def test_a_model_card_defaults_to_the_model_cards_paper_sections(pytester: pytest.Pytester
                                                                 ) -> None:
    write(pytester.path, "MODEL_CARD.md", """\
        # Model card
        ## Model details
        Logistic regression, v3.
        ## Intended use
        Rank subscribers for retention calls.
    """)
    config(pytester, """
        [tool.mlfunnel.model.card]
        document = "MODEL_CARD.md"
    """)
    result = pytester.runpytest("--funnel", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "*::model::card::exists", "*::model::card::section-model-details",
        "*::model::card::section-intended-use", "*::model::card::section-factors",
        "*::model::card::section-metrics", "*::model::card::section-evaluation-data",
        "*::model::card::section-training-data", "*::model::card::section-quantitative-analyses",
        "*::model::card::section-ethical-considerations",
        "*::model::card::section-caveats-and-recommendations",
    ])
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=3, failed=7)


def test_a_missing_document_is_an_error(pytester: pytest.Pytester) -> None:
    config(pytester, """
        [tool.mlfunnel.model.card]
        document = "MODEL_CARD.md"
        sections = ["Intended use"]
    """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["MODEL_CARD.md: document not found"])


def test_sign_off_max_age_uses_the_newest_sign_off(pytester: pytest.Pytester) -> None:
    write(pytester.path, "docs/problem.md", """\
        # Problem
        Boxes are slow.
        # Sign-off
        - product: Jane Doe, 2020-01-01
        - finance: Ann Lee, 2020-02-01
    """)
    config(pytester, """
        [tool.mlfunnel.problem.statement]
        document = "docs/problem.md"
        sign_off = ["product", "finance"]
        max_age = "365 days"
    """, funnel='["problem"]')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["docs/problem.md: newest sign-off 2020-02-01, * ago, expected "
                                 "<= 365 days old"])


def test_markdown_parsing_rules() -> None:
    sections = parse_sections("# A\ntext\n```\n# not a heading\n```\nB\n===\nbody\n")
    assert [s.title for s in sections] == ["A", "B"]
    assert meaningful_lines(["TODO", "- TBD", "<!-- x -->", "...", "[fill in]"]) == []
    assert meaningful_lines(["TODO: measure it", "Real text."]) == ["TODO: measure it",
                                                                    "Real text."]
    signoffs = parse_sections("# Sign-off\n- Finance: pending review of costs\n"
                              "- Product: **Jane Doe** (2026-10-01)\n")[0]
    found = parse_sign_offs(signoffs, ["finance", "product"])
    assert found["finance"] is not None and found["finance"].person == ""
    assert found["product"] is not None and found["product"].person == "Jane Doe"
    assert str(found["product"].date) == "2026-10-01"


def test_a_document_built_to_slow_the_parser_is_read_in_linear_time(
        pytester: pytest.Pytester) -> None:
    """A heading padded with spaces and thousands of unclosed comments each took minutes."""
    write(pytester.path, "docs/problem.md",
          "# Problem" + " " * 3000 + "x\nChurn costs us.\n\n## Baseline\n"
          + "<!-- draft " * 20_000 + "\n")
    config(pytester, """
        [tool.mlfunnel.problem.statement]
        document = "docs/problem.md"
        sections = ["Baseline", "Risks"]
    """, funnel='["problem"]')
    # before, parsing alone took minutes: past the timeout on any machine
    result = pytester.runpytest_subprocess("--funnel", timeout=120)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["docs/problem.md: no section 'Risks' (sections: Problem"
                                 "* x, Baseline)"])


# ----------------------------------------------------------------------------- files
def git(cwd: Path, *args: str, date: str | None = None) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def test_files_exist_and_are_fresh_by_their_last_commit(pytester: pytest.Pytester) -> None:
    git(pytester.path, "init", "-q")
    write(pytester.path, "docs/runbook.md", "# Runbook\n")
    write(pytester.path, "models/a.pkl", "x")
    write(pytester.path, "models/b.pkl", "y")
    git(pytester.path, "add", "docs", "models/a.pkl")
    git(pytester.path, "commit", "-qm", "old", date="2020-01-01T00:00:00")
    config(pytester, """
        [tool.mlfunnel.maintenance.artifacts]
        files = ["docs/runbook.md", "models/*.pkl", "docs/missing.md"]
        max_age = "90 days"
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines_random([
        "pyproject.toml::maintenance::artifacts::models/any.pkl FAILED*",
        "docs/runbook.md: 1 of 1 file(s) older than 90 days: docs/runbook.md (* days ago)",
        # models/b.pkl is not committed: its mtime (now) counts, so only a.pkl is stale
        "models/[*].pkl: 1 of 2 file(s) older than 90 days: models/a.pkl (* days ago)",
        "docs/missing.md: no such file",
    ])


def test_files_fall_back_to_mtime_outside_git(pytester: pytest.Pytester) -> None:
    path = write(pytester.path, "models/m.pkl", "x")
    old = time.time() - 200 * 86400
    os.utime(path, (old, old))
    write(pytester.path, "docs/runbook.md", "# Runbook\n")
    config(pytester, """
        [tool.mlfunnel.maintenance.artifacts]
        files = ["models/m.pkl", "docs/runbook.md"]
        max_age = "90 days"
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["models/m.pkl: 1 of 1 file(s) older than 90 days: models/m.pkl "
                                 "(200 days ago)"])


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="POSIX links")
def test_a_recursive_glob_does_not_follow_links_back_up(pytester: pytest.Pytester) -> None:
    """Two links to a parent folder made ``**`` walk 2**40 paths: the run never ended."""
    write(pytester.path, "models/eval/summary.md", "# Summary\n")
    (pytester.path / "models" / "eval" / "up").symlink_to("..")
    (pytester.path / "models" / "eval" / "again").symlink_to("..")
    write(pytester.path, "tests/test_unit.py", "def test_unit():\n    pass\n")
    config(pytester, """
        [tool.mlfunnel.maintenance.artifacts]
        files = ["**/summary.md", "models/**/*.pkl"]
    """, funnel='["maintenance"]')
    # pytest itself would walk the links when collecting the rootdir: collect tests/ only
    result = pytester.runpytest_subprocess("--funnel", "-v", "tests", timeout=120)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines_random([
        "pyproject.toml::maintenance::artifacts::anyany/summary.md PASSED*",
        "models/[*][*]/[*].pkl: no such file",
    ])


def test_a_glob_under_a_missing_folder_fails_and_broken_links_are_named(
        pytester: pytest.Pytester) -> None:
    """``glob`` answers ``missing/**`` with ``missing/`` whether it exists or not."""
    write(pytester.path, "docs/runbook.md", "# Runbook\n")
    (pytester.path / "docs" / "card.md").symlink_to("gone.md")
    (pytester.path / "model.pkl").symlink_to("model.pkl")  # a link to itself
    config(pytester, """
        [tool.mlfunnel.maintenance.artifacts]
        files = ["models/**", "docs/**", "docs/c*.md", "model.pkl"]
        max_age = "90 days"
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines_random([
        "models/[*][*]: no such file",
        "docs/c[*].md: no such file (only broken symbolic links: docs/card.md)",
        "model.pkl: a broken symbolic link (it leads to no file)",
    ])
    assert "FileNotFoundError" not in result.stdout.str()


# ----------------------------------------------------------------------------- owners
def test_owners_counts_distinct_owners_in_codeowners(pytester: pytest.Pytester) -> None:
    write(pytester.path, ".github/CODEOWNERS", """\
        # ML platform
        *            @alice @ml-team/core
        /models/     @alice bob@example.com   # inline comment @nobody
        /docs/       @Alice
    """)
    config(pytester, """
        [tool.mlfunnel.maintenance.owners]
        owners = ">= 4"
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["3 distinct owners in .github/CODEOWNERS (@alice, @ml-team/core, "
                                 "bob@example.com), expected >= 4"])


def test_owners_reads_a_given_file_and_reports_a_missing_one(pytester: pytest.Pytester) -> None:
    write(pytester.path, "OWNERS.txt", "* @a @b\n")
    config(pytester, """
        [tool.mlfunnel.maintenance.owners]
        owners = ">= 2"
        file = "OWNERS.txt"
        [tool.mlfunnel.maintenance.fallback]
        owners = ">= 1"
    """, funnel='["maintenance"]')
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["no CODEOWNERS file (looked in .github/CODEOWNERS, CODEOWNERS, "
                                 "docs/CODEOWNERS, .gitlab/CODEOWNERS): 0 owners, expected >= 1"])


def test_gitlab_sections_count_their_default_owners() -> None:
    text = "[Docs] @writer\n/docs/ @writer2\n^[Optional][2] @opt\n*.py\n"
    assert parse_owners(text) == ["@writer", "@writer2", "@opt"]

"""docs/extending.md's examples are run as written: a kind in the rootdir's conftest.py, a
kind that reads a table, and the message for a kind registered too late."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb  # noqa: F401 - imported once here: pytester's in-process runs must not re-import it
import pandas as pd
import pytest

import pytest_mlfunnel.api as api

PAGE = (Path(__file__).resolve().parent.parent / "docs" / "extending.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def example(name: str) -> tuple[dict[str, str], list[str]]:
    """The files of one example (code blocks whose first line is ``# <file name>``) and the
    lines of its ``text`` block (what the user sees)."""
    start = PAGE.index(f"<!-- example: {name} -->")
    section = PAGE[start:PAGE.index("<!-- end example -->", start)]
    files: dict[str, str] = {}
    shown: list[str] = []
    for language, body in BLOCK.findall(section):
        first, _, rest = body.partition("\n")
        if language in ("python", "toml") and first.startswith("# "):
            files[first[2:].strip()] = rest
        elif language == "text":
            shown += [line for line in body.splitlines() if line.strip()]
    assert files and shown, f"example {name}: no files or no output in docs/extending.md"
    return files, shown


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_model_size_example_runs_as_written(pytester: pytest.Pytester) -> None:
    files, shown = example("model-size")
    write(pytester, files)
    (pytester.path / "models").mkdir()
    (pytester.path / "models" / "model.bin").write_bytes(b"\0" * 62_000_000)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(shown)
    assert result.ret == 1
    (pytester.path / "models" / "model.bin").write_bytes(b"\0" * 1_000_000)
    pytester.runpytest("--funnel").assert_outcomes(passed=1)


def test_the_table_example_runs_as_written_and_reads_the_file_once(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    files, shown = example("majority")
    write(pytester, files)
    (pytester.path / "data").mkdir()
    pd.DataFrame({"label": ["no"] * 900 + ["yes"] * 100, "x": range(1000)}).to_parquet(
        pytester.path / "data" / "train.parquet")
    log = pytester.path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    result = pytester.runpytest("--funnel", "-p", "no:xdist")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(shown)
    purposes = [line.split("\t")[1] for line in log.read_text().splitlines()
                if line.split("\t")[2] == "data/train.parquet"]
    # the count from the Parquet footers; the data read once, for the value counts
    assert purposes.count("aggregate") + purposes.count("value_counts") == 1, purposes


def test_a_kind_registered_in_a_subfolder_conftest_is_named_in_the_error(
        pytester: pytest.Pytester) -> None:
    files, _ = example("model-size")
    write(pytester, {"pyproject.toml": files["pyproject.toml"],
                     "checks/conftest.py": files["conftest.py"]})
    page_error = next(line for line in PAGE.splitlines()
                      if line.startswith("ERROR: pyproject.toml: tool.mlfunnel.deployment"))
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines([page_error.replace("...", "*")])  # the page lists a few kinds
    (pytester.path / "checks" / "conftest.py").rename(pytester.path / "conftest.py")
    pytester.runpytest("--funnel").assert_outcomes(errors=0, failed=1)  # no model file yet


def test_the_page_lists_everything_the_api_exports() -> None:
    table = PAGE[PAGE.index("## What you may import"):PAGE.index("## A new check kind")]
    listed = set(re.findall(r"`(\w+)", table))
    assert set(api.__all__) <= listed, set(api.__all__) - listed
    assert all(hasattr(api, name) for name in api.__all__)


def test_a_kind_in_a_nested_test_folder_is_named_but_not_one_read_at_startup(
        pytester: pytest.Pytester) -> None:
    files, _ = example("model-size")
    write(pytester, {"pyproject.toml": files["pyproject.toml"],
                     "tests/unit/conftest.py": files["conftest.py"],
                     "tests/conftest.py": "def pytest_mlfunnel_check_kinds():\n    return []\n"})
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*no check kind: give exactly one of *(tests/unit/conftest.py "
                                 "defines pytest_mlfunnel_check_kinds, but a conftest.py in a "
                                 "subfolder is read after the config: move the hook to the "
                                 "rootdir's conftest.py or a plugin)"])


def csv_project(pytester: pytest.Pytester, accuracy: str = "0.93", f1: str = "0.75") -> None:
    files, _ = example("csv-metrics")
    write(pytester, files)
    (pytester.path / "reports").mkdir(exist_ok=True)
    (pytester.path / "reports" / "eval.csv").write_text(f"accuracy,{accuracy}\nf1,{f1}\n")


@pytest.mark.xdist_matters  # every worker process registers the reader before it collects
def test_the_metrics_reader_example_runs_as_written(pytester: pytest.Pytester,
                                                    xdist_args: list[str]) -> None:
    csv_project(pytester)
    _, shown = example("csv-metrics")
    result = pytester.runpytest_subprocess("--funnel", *xdist_args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(shown)
    assert result.ret == 1


def test_a_plugins_reader_is_gone_from_the_next_run_in_the_same_process(
        pytester: pytest.Pytester) -> None:
    csv_project(pytester, f1="0.85")
    for _ in range(2):  # the second run registers the same key again without a clash
        pytester.runpytest("--funnel", "-p", "no:xdist").assert_outcomes(passed=2)
    (pytester.path / "conftest.py").unlink()
    result = pytester.runpytest("--funnel", "-p", "no:xdist")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*reports/eval.csv: cannot read metrics from a .csv file "
                                 "(metrics files: json, prom, toml)*"])


def test_an_unknown_metrics_file_lists_the_plugins_suffixes_too(
        pytester: pytest.Pytester) -> None:
    csv_project(pytester)
    pyproject = pytester.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("eval.csv", "eval.yaml"))
    result = pytester.runpytest("--funnel", "-p", "no:xdist")
    result.stdout.fnmatch_lines(["*reports/eval.yaml: cannot read metrics from a .yaml file "
                                 "(metrics files: csv, json, prom, toml)*"])


@pytest.mark.parametrize(("readers", "message"), [
    ('{".json": read}', "mlfunnel: metrics reader '.json' from "
                        "pytest_mlfunnel_metric_readers is already registered"),
    ('{"csv": read}', "mlfunnel: metrics reader key 'csv' from pytest_mlfunnel_metric_readers:"
                      " expected a file suffix such as '.yaml' or a URL scheme such as 's3://'"),
    ('{".csv": "read"}', "mlfunnel: metrics reader '.csv' from pytest_mlfunnel_metric_readers"
                         " is not callable"),
    ('[read]', "mlfunnel: pytest_mlfunnel_metric_readers returned list, expected a mapping "
               "of keys ('.yaml', 's3://') to readers"),
], ids=["taken", "not-a-suffix", "not-callable", "not-a-mapping"])
def test_a_bad_metrics_reader_is_a_usage_error_naming_the_hook(
        pytester: pytest.Pytester, readers: str, message: str) -> None:
    csv_project(pytester)
    pytester.makeconftest(f"def read(spec, rootdir):\n    return {{}}\n\n"
                          f"def pytest_mlfunnel_metric_readers():\n    return {readers}\n")
    result = pytester.runpytest("--funnel", "-p", "no:xdist")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {message}"])

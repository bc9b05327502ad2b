"""The saved reference summary of ``drift``: a file of the wrong shape is made again."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb  # noqa: F401 - imported once here: pytester's in-process runs must not re-import it
import numpy as np
import pandas as pd
import pytest

CONFIG = """
[tool.mlfunnel]
[tool.mlfunnel.maintenance.drift]
drift = { reference = "train.parquet", current = "live.parquet" }
columns = ["age", "plan"]
expect = { psi = "<= 0.2" }
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    rng = np.random.default_rng(7)
    for name, n in (("train", 3000), ("live", 2000)):
        pd.DataFrame({"age": rng.normal(41, 12, n).round().astype(int),
                      "plan": rng.choice(["basic", "pro"], n)}).to_parquet(
            pytester.path / f"{name}.parquet")
    pytester.makepyprojecttoml(CONFIG)
    return pytester


def summaries(pytester: pytest.Pytester) -> list[Path]:
    return sorted((pytester.path / ".mlfunnel" / "cache").glob("drift-reference-*.json"))


def reported(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["id"].rsplit("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


WRONG_SHAPES = {
    "no columns": {"reference": "train.parquet", "columns": {}},
    "a column without cells": {"reference": "train.parquet", "columns": {
        "age": {"kind": "numeric", "n": 3000}, "plan": {"kind": "categorical", "n": 3000,
                                                        "values": ["basic", "pro"],
                                                        "value_counts": [1500, 1500]}}},
    "columns as a list": {"reference": "train.parquet", "columns": ["age", "plan"]},
    "a list": [],
    "a column of the other type": {"reference": "train.parquet", "columns": {
        "age": {"kind": "categorical", "n": 3, "values": [40], "value_counts": [3]},
        "plan": {"kind": "categorical", "n": 3, "values": ["pro"], "value_counts": [3]}}},
    "counts that do not add up": {"reference": "train.parquet", "columns": {
        "age": {"kind": "numeric", "n": 3000, "cells": [[0.0, 5, 1, 1]],
                "grid": {"per_unit": 1000, "low": 1.0, "high": 1.0, "refine": [],
                         "bounds": True, "integers": True}, "starts": []},
        "plan": {"kind": "categorical", "n": 3000, "values": ["basic", "pro"],
                 "value_counts": [1500, 1500]}}},
}


@pytest.mark.parametrize("saved", list(WRONG_SHAPES.values()), ids=list(WRONG_SHAPES))
def test_a_saved_summary_of_the_wrong_shape_is_made_again(project: pytest.Pytester,
                                                          saved: object) -> None:
    project.runpytest("--funnel").assert_outcomes(passed=2)
    (path,) = summaries(project)
    good = json.loads(path.read_text())
    path.write_text(json.dumps(saved))

    result = project.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*Error*")
    assert [c["extra"]["reference_cached"] for c in reported(project).values()] == [False, False]
    assert json.loads(path.read_text()) == good  # saved again, whole

    project.runpytest("--funnel", "--funnel-json=report.json").assert_outcomes(passed=2)
    assert [c["extra"]["reference_cached"] for c in reported(project).values()] == [True, True]


def test_a_saved_summary_gives_the_same_numbers_as_the_data(project: pytest.Pytester) -> None:
    project.runpytest("--funnel", "--funnel-json=report.json").assert_outcomes(passed=2)
    first = {k: (c["observed"], c["extra"]["reference_cached"])
             for k, c in reported(project).items()}
    project.runpytest("--funnel", "--funnel-json=report.json").assert_outcomes(passed=2)
    second = {k: (c["observed"], c["extra"]["reference_cached"])
              for k, c in reported(project).items()}
    assert {k: v[0] for k, v in first.items()} == {k: v[0] for k, v in second.items()}
    assert [v[1] for v in first.values()] == [False, False]
    assert [v[1] for v in second.values()] == [True, True]


def test_a_reference_read_with_other_reader_options_is_summarised_again(
        pytester: pytest.Pytester) -> None:
    """The saved summary is of the reference as it was read: other reader options (here the
    first 1,000 data lines skipped) read other rows, so the summary is made again."""
    rng = np.random.default_rng(11)
    ages = np.concatenate([rng.normal(30, 5, 1000), rng.normal(60, 5, 2000)]).round()
    pd.DataFrame({"age": ages.astype(int)}).to_csv(pytester.path / "train.csv", index=False)
    pd.DataFrame({"age": rng.normal(60, 5, 2000).round().astype(int)}).to_parquet(
        pytester.path / "live.parquet")
    config = """
[tool.mlfunnel.maintenance.drift]
drift = {{ reference = {reference}, current = "live.parquet" }}
columns = ["age"]
expect = {{ psi = "<= 0.2" }}
"""
    pytester.makepyprojecttoml(config.format(reference='"train.csv"'))
    pytester.runpytest("--funnel", "--funnel-json=report.json").assert_outcomes(failed=1)
    pytester.makepyprojecttoml(config.format(
        reference='{ path = "train.csv", options = { skip = 1001, header = false, '
                  'names = ["age"] } }'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    (criterion,) = reported(pytester).values()
    assert criterion["extra"]["reference_cached"] is False
    assert len(summaries(pytester)) == 2

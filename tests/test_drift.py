"""The ``drift`` kind through real pytest runs on real Parquet/CSV files, scipy as reference."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import duckdb  # noqa: F401 - imported once here: pytester's in-process runs must not re-import it
import numpy as np
import pandas as pd
import pandas.core.arrays.arrow.extension_types
import pytest
import scipy.stats as ss
from scipy.spatial.distance import jensenshannon


def customers(n: int, seed: int, spend_shift: float = 0.0,
              plans: tuple[str, ...] = ("basic", "pro", "family")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shares = {"basic": 0.5, "pro": 0.3, "family": 0.2, "student": 0.2}
    p = np.array([shares[name] for name in plans])
    return pd.DataFrame({
        "customer_id": np.arange(n) + seed * 1_000_000,
        "age": rng.normal(41, 12, n).round().astype(int),
        "plan": rng.choice(list(plans), n, p=p / p.sum()),
        "monthly_spend": rng.gamma(3.0, 10.0, n) + spend_shift,
        "signup_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(
            rng.integers(0, 700, n), unit="D"),
    })


def config(body: str, reference: str = "train.parquet", current: str = "live.parquet") -> str:
    return ("[tool.mlfunnel]\n[tool.mlfunnel.maintenance.drift]\n"
            f'drift = {{ reference = "{reference}", current = "{current}" }}\n' + body)


@pytest.fixture
def frames(pytester: pytest.Pytester) -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = customers(6000, 1)
    current = customers(5000, 2, spend_shift=9.0)
    reference.to_parquet(pytester.path / "train.parquet")
    current.to_parquet(pytester.path / "live.parquet")
    return reference, current


def criteria(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / "report.json").read_text())
    gate = next(g for g in data["gates"] if g["name"] == "maintenance")
    return {c["id"].rsplit("::", 1)[1]: c for c in gate["criteria"]}


def reported_edges(found: dict[str, dict[str, object]], column: str, reference: np.ndarray,
                   bins: int = 10) -> np.ndarray:
    """The PSI bin edges a criterion reports, checked to cut the reference at its quantiles:
    edges sit at cell boundaries, so for each level i/bins some edge leaves a share of the
    reference below it within one cell's share (at most 1/1000 for values that are not ties)
    of the level, or within the tie the level's quantile falls in."""
    extra = found[f"{column}.psi"]["extra"]
    assert isinstance(extra, dict)
    edges = np.array(extra["psi_edges"], dtype=float)
    below = np.array([(reference < e).mean() for e in edges])
    for level in np.arange(1, bins) / bins:
        tied = (reference == np.quantile(reference, level, method="lower")).mean()
        assert np.min(np.abs(below - level)) <= 1 / 1000 + tied, (level, edges, below)
    assert len(edges) <= bins + 1  # one per level at most, and a beyond bin each side
    return edges


def counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def psi_formula(r: np.ndarray, c: np.ndarray, epsilon: float = 1e-4) -> float:
    r, c = np.maximum(r / r.sum(), epsilon), np.maximum(c / c.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def test_only_the_drifted_column_fails_and_the_numbers_match_scipy(
        pytester: pytest.Pytester, frames: tuple[pd.DataFrame, pd.DataFrame],
        xdist_args: list[str]) -> None:
    reference, current = frames
    pytester.makepyprojecttoml(config(
        'columns = ["age", "plan", "monthly_spend"]\n'
        'expect = { psi = "<= 0.2", ks = "<= 0.1", ks_p = ">= 0.001", js = "<= 0.1", '
        'chi2_p = ">= 0.001" }\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", *xdist_args)
    result.assert_outcomes(passed=7, failed=4)
    result.stdout.fnmatch_lines(["*monthly_spend psi 0.*, expected <= 0.2"])
    found = criteria(pytester)
    assert sorted(found) == sorted([
        "age.psi", "age.ks", "age.ks_p", "age.js", "plan.psi", "plan.js", "plan.chi2_p",
        "monthly_spend.psi", "monthly_spend.ks", "monthly_spend.ks_p", "monthly_spend.js"])
    failed = sorted(name for name, c in found.items() if c["status"] == "failed")
    assert failed == ["monthly_spend.js", "monthly_spend.ks", "monthly_spend.ks_p",
                      "monthly_spend.psi"]
    for column in ("age", "monthly_spend"):
        r, c = reference[column].to_numpy(float), current[column].to_numpy(float)
        edges = reported_edges(found, column, r)
        assert found[f"{column}.psi"]["observed"] == pytest.approx(
            psi_formula(counts(r, edges), counts(c, edges)), rel=1e-5)
        assert found[f"{column}.js"]["observed"] == pytest.approx(
            jensenshannon(counts(r, edges), counts(c, edges), base=2), rel=1e-5)
        exact = ss.ks_2samp(r, c)
        extra = found[f"{column}.ks"]["extra"]
        assert isinstance(extra, dict)
        assert extra["ks_bins"] >= 2  # age has few distinct values: one bin each
        assert float(found[f"{column}.ks"]["observed"]) == pytest.approx(  # type: ignore[arg-type]
            exact.statistic, abs=extra["ks_binning_error"] + 1e-6)
    table = pd.crosstab(pd.concat([reference.plan, current.plan]),
                        ["r"] * len(reference) + ["c"] * len(current))
    _, p, _, _ = ss.chi2_contingency(table.T.to_numpy(), correction=False)
    assert found["plan.chi2_p"]["observed"] == pytest.approx(p, rel=1e-5)


def test_a_failing_numeric_column_shows_the_bins_that_moved(
        pytester: pytest.Pytester, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pytester.makepyprojecttoml(config('columns = ["monthly_spend"]\n'
                                      'expect = { psi = "<= 0.1" }\n'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*monthly_spend psi *, expected <= 0.1",
                                 "*(failed · pyproject.toml:2 *drift] monthly_spend.psi)",
                                 "    *: 10.0% of reference, *% of current"])


def test_default_columns_are_the_shared_numeric_and_categorical_ones(
        pytester: pytest.Pytester, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pytester.makepyprojecttoml(config('exclude = ["customer_id"]\nexpect = { psi = "<= 0.2", '
                                      'chi2_p = ">= 0.001" }\n'))
    result = pytester.runpytest("--funnel", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "pyproject.toml::maintenance::drift::age.psi",
        "pyproject.toml::maintenance::drift::plan.psi",
        "pyproject.toml::maintenance::drift::plan.chi2_p",
        "pyproject.toml::maintenance::drift::monthly_spend.psi",
    ])
    result.stdout.no_fnmatch_line("*signup_date*")  # time always drifts
    result.stdout.no_fnmatch_line("*customer_id*")


def test_the_reference_summary_is_reused_so_a_run_reads_only_the_current_data(
        pytester: pytest.Pytester, frames: tuple[pd.DataFrame, pd.DataFrame],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyprojecttoml(config('columns = ["age", "plan", "monthly_spend"]\n'
                                      'expect = { psi = "<= 0.2", ks = "<= 0.1" }\n'))
    log = pytester.path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    first = pytester.runpytest("--funnel", "--funnel-json=report.json")
    first.assert_outcomes(passed=3, failed=2)
    before = criteria(pytester)

    def reads(source: str) -> dict[str, int]:
        """Queries per column: the categorical one in a GROUP BY of its values (in the pass
        where the source has no footers to count it), each numeric one in its own GROUP BY
        over its cells."""
        lines = [line.split("\t") for line in log.read_text().splitlines()]
        found = {c: 0 for c in ("age", "plan", "monthly_spend")}
        for _, purpose, where, sql in lines:
            if where == source and purpose in ("aggregate", "value_counts", "cells"):
                for column in found:
                    found[column] += f'"{column}"' in sql
        return found

    def passes(source: str) -> int:
        return max(reads(source).values())

    # age (integers, one value per cell) and plan are read once; monthly_spend once more only
    # when a cell of it holds more than 1/1000 of the reference and is split finer
    assert reads("train.parquet")["age"] == reads("train.parquet")["plan"] == 1
    assert reads("train.parquet")["monthly_spend"] in (1, 2)
    assert reads("live.parquet") == {"age": 1, "plan": 1, "monthly_spend": 1}
    assert list((pytester.path / ".mlfunnel" / "cache").glob("drift-reference-*.json"))
    log.unlink()
    second = pytester.runpytest("--funnel", "--funnel-json=report.json")
    second.assert_outcomes(passed=3, failed=2)
    assert (passes("train.parquet"), passes("live.parquet")) == (0, 1)
    after = criteria(pytester)
    assert {k: c["observed"] for k, c in after.items()} == {
        k: c["observed"] for k, c in before.items()}
    assert after["age.psi"]["extra"]["reference_cached"] is True  # type: ignore[index]
    # A fresh checkout gives the same content a new modification time: still found.
    stamp = (pytester.path / "train.parquet").stat().st_mtime + 3600
    os.utime(pytester.path / "train.parquet", (stamp, stamp))
    log.unlink()
    pytester.runpytest("--funnel").assert_outcomes(passed=3, failed=2)
    assert passes("train.parquet") == 0
    # A changed reference is a different key: it is read again.
    customers(6000, 3).to_parquet(pytester.path / "train.parquet")
    log.unlink()
    pytester.runpytest("--funnel")
    assert passes("train.parquet") >= 1


def test_the_reference_digest_is_remembered_while_the_file_is_unchanged(
        pytester: pytest.Pytester, frames: tuple[pd.DataFrame, pd.DataFrame],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyprojecttoml(config('columns = ["age"]\nexpect = { psi = "<= 0.2" }\n'))
    pytester.runpytest("--funnel").assert_outcomes(passed=1)
    digests = pytester.path / ".mlfunnel" / "cache" / "digests.json"
    known = json.loads(digests.read_text())
    (entry,) = [v for k, v in known.items() if k.endswith("train.parquet")]
    assert entry["digest"] and entry["stat"][0] == (pytester.path / "train.parquet").stat().st_size
    # The remembered digest is used as it is (not recomputed) while size, mtime and inode
    # match: a planted one changes the key, so the summary is missed and the data read again.
    entry["digest"] = "0" * 40
    digests.write_text(json.dumps(known))
    log = pytester.path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))

    def read_reference() -> bool:
        return any(line.split("\t")[1:3] == ["cells", "train.parquet"]
                   for line in log.read_text().splitlines())

    pytester.runpytest("--funnel").assert_outcomes(passed=1)
    assert read_reference()
    log.unlink()
    pytester.runpytest("--funnel").assert_outcomes(passed=1)
    assert not read_reference()
    # A rewritten file (new mtime) is hashed again: the real digest is back.
    (pytester.path / "train.parquet").write_bytes((pytester.path / "train.parquet").read_bytes())
    pytester.runpytest("--funnel").assert_outcomes(passed=1)
    assert "0" * 40 not in digests.read_text()


def test_a_category_only_in_current_is_named(pytester: pytest.Pytester) -> None:
    customers(4000, 1).to_parquet(pytester.path / "train.parquet")
    customers(4000, 2, plans=("basic", "pro", "family", "student")).to_parquet(
        pytester.path / "live.parquet")
    pytester.makepyprojecttoml(config('columns = ["plan"]\n'
                                      'expect = { psi = "<= 0.1", chi2_p = ">= 0.01" }\n'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*plan psi *, expected <= 0.1", "*", "    only in current: "
                                 "student"])
    result.stdout.fnmatch_lines(["*plan chi-square p-value *, expected >= 0.01"])


def test_constant_columns_and_all_null_columns(pytester: pytest.Pytester) -> None:
    reference = pd.DataFrame({"flag": [1.0] * 500, "empty": np.full(500, np.nan),
                              "level": [3] * 500})
    current = pd.DataFrame({"flag": [1.0] * 300, "empty": np.full(300, np.nan),
                            "level": [3] * 200 + [4] * 100})
    reference.to_parquet(pytester.path / "train.parquet")
    current.to_parquet(pytester.path / "live.parquet")
    pytester.makepyprojecttoml(config(
        'columns = ["flag", "level", "empty"]\n'
        'expect = { psi = "<= 0.1", ks = "<= 0.1" }\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    found = criteria(pytester)
    assert found["flag.psi"]["status"] == "passed"
    assert found["flag.psi"]["observed"] == 0
    assert found["flag.ks"]["observed"] == 0
    assert found["level.ks"]["observed"] == pytest.approx(1 / 3)
    assert found["level.psi"]["status"] == "failed"
    assert found["empty.psi"]["status"] == "error"
    result.stdout.fnmatch_lines(["*empty: no values in the reference train.parquet"])


def test_a_value_just_past_a_constant_reference_still_shows(pytester: pytest.Pytester) -> None:
    """1.0 and 1.0 + 1e-9 share a cell; the constant's beyond bin still tells them apart."""
    pd.DataFrame({"flag": [1.0] * 500}).to_parquet(pytester.path / "train.parquet")
    pd.DataFrame({"flag": [1.0] * 200 + [1.0 + 1e-9] * 100 + [1.0 - 1e-9] * 100}).to_parquet(
        pytester.path / "live.parquet")
    pytester.makepyprojecttoml(config('expect = { psi = "<= 0.1", ks = "<= 0.1" }\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=2)
    found = criteria(pytester)
    assert found["flag.ks"]["observed"] == pytest.approx(0.25)
    extra = found["flag.psi"]["extra"]
    assert isinstance(extra, dict)
    assert extra["reference_bins"] == [0, 500, 0] and extra["current_bins"] == [100, 200, 100]
    result.stdout.fnmatch_lines(["    > 1: 0.0% of reference, 25.0% of current"])


def run_drift(pytester: pytest.Pytester, reference: dict[str, np.ndarray],
              current: dict[str, np.ndarray], expect: str) -> dict[str, dict[str, object]]:
    pd.DataFrame(reference).to_parquet(pytester.path / "train.parquet")
    pd.DataFrame(current).to_parquet(pytester.path / "live.parquet")
    pytester.makepyprojecttoml(config(f"expect = {{ {expect} }}\n"))
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    return criteria(pytester)


def check_against_scipy(found: dict[str, dict[str, object]], column: str, r: np.ndarray,
                        c: np.ndarray) -> dict[str, object]:
    extra = found[f"{column}.ks"]["extra"]
    assert isinstance(extra, dict)
    exact = ss.ks_2samp(r, c).statistic
    observed = float(found[f"{column}.ks"]["observed"])  # type: ignore[arg-type]
    assert exact - extra["ks_binning_error"] - 1e-6 <= observed <= exact + 1e-6
    edges = reported_edges(found, column, r)
    assert found[f"{column}.psi"]["observed"] == pytest.approx(
        psi_formula(counts(r, edges), counts(c, edges)), rel=1e-5)
    return extra


def test_a_column_crowded_into_few_cells_is_split_finer(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Values around 1e6 +- 1 fall in one or two 0.1%-wide cells: the reference is read once
    more for that column, and the crowded cells come back split, so KS and PSI stay fine."""
    rng = np.random.default_rng(5)
    r, c = 1e6 + rng.normal(0, 1, 20_000), 1e6 + rng.normal(0.1, 1, 20_000)
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(pytester.path / "queries.log"))
    found = run_drift(pytester, {"x": r}, {"x": c}, 'psi = "<= 0.2", ks = "<= 0.2"')
    extra = check_against_scipy(found, "x", r, c)
    assert extra["ks_binning_error"] < 0.01 and extra["ks_bins"] > 1000
    log = (pytester.path / "queries.log").read_text().splitlines()
    cells = [line.split("\t")[2] for line in log if line.split("\t")[1] == "cells"]
    assert cells == ["train.parquet", "train.parquet", "live.parquet"]


def test_integer_counts_beyond_1000_crowded_into_cells_are_split_and_compared_exactly(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts around 5000 share cells about 5 integers wide, each holding far more than 1/1000
    of the reference: the second pass over the reference reads only that column's crowded
    cells, and current values between the reference's (odd counts where the reference has
    only even ones) land below or above a split cell's range, not in it."""
    rng = np.random.default_rng(8)
    r = 2 * rng.integers(2490, 2610, 20_000)  # wider than c: no edge cell of one value
    c = rng.integers(5000, 5200, 20_000)
    # crowds no cell: not in the second pass
    spread_r, spread_c = rng.lognormal(3, 1, 20_000), rng.lognormal(3, 1, 20_000)
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(pytester.path / "queries.log"))
    found = run_drift(pytester, {"count": r, "spread": spread_r},
                      {"count": c, "spread": spread_c}, 'psi = "<= 0.2", ks = "<= 0.2"')
    extra = check_against_scipy(found, "count", r, c)
    assert extra["ks_binning_error"] == 0 and extra["ks_bins"] > 200
    check_against_scipy(found, "spread", spread_r, spread_c)
    log = [line.split("\t") for line in (pytester.path / "queries.log").read_text().splitlines()]
    reference = [sql for _, purpose, where, sql in log
                 if purpose == "cells" and where == "train.parquet"]
    assert len(reference) == 2
    assert '"spread"' in reference[0] and '"spread"' not in reference[1]
    assert '"count"' in reference[1]


@pytest.mark.parametrize("name", ["j", "b", "v", "n"])
def test_a_crowded_column_named_like_a_column_of_the_cells_query_is_split_as_any_other(
        pytester: pytest.Pytester, name: str) -> None:
    rng = np.random.default_rng(9)
    r, c = 2 * rng.integers(2490, 2610, 5_000), rng.integers(5000, 5200, 5_000)
    found = run_drift(pytester, {name: r}, {name: c}, 'psi = "<= 0.2", ks = "<= 0.2"')
    assert check_against_scipy(found, name, r, c)["ks_bins"] > 200


def test_heavy_tails_ties_and_negatives_keep_ks_within_its_bound(
        pytester: pytest.Pytester) -> None:
    rng = np.random.default_rng(6)
    n = 30_000

    def data(shift: float) -> dict[str, np.ndarray]:
        spend = rng.gamma(2.0, 30.0 + shift, n)
        spend[rng.random(n) < 0.4] = 0.0  # 40% exactly zero: one cell, one value
        return {"spend": spend, "balance": rng.lognormal(6 + shift / 10, 2.0, n),
                "delta": rng.standard_t(2, n) * 50 - 20 + shift,
                "count": rng.poisson(3 + shift / 10, n) * 1_000}

    reference, current = data(0.0), data(3.0)
    found = run_drift(pytester, reference, current, 'psi = "<= 0.5", ks = "<= 0.5"')
    for column in reference:
        extra = check_against_scipy(found, column, reference[column], current[column])
        assert extra["ks_binning_error"] < 0.005, column  # the zeros' cell is not counted


def test_ks_from_cells_walks_the_same_numbers_as_the_aligned_counts() -> None:
    from ks_reference import ks_binning_error, ks_statistic

    from pytest_mlfunnel.kinds.drift import ks_from_cells

    ref = [[0.0, 5, 0.0, 0.0], [2.0, 3, 0.5, 0.7], [5.0, 2, 1.0, 1.0]]
    cur = [[-1.0, 1, -0.5, -0.5], [0.0, 4, 0.0, 0.0], [5.0, 1, 1.0, 1.2], [9.0, 4, 3.0, 3.5]]
    aligned_ref, aligned_cur = [0, 5, 3, 2, 0], [1, 4, 0, 1, 4]
    spread = [False, False, True, True, True]
    statistic, bound, compared = ks_from_cells(ref, cur)
    assert statistic == pytest.approx(ks_statistic(aligned_ref, aligned_cur))
    assert bound == pytest.approx(ks_binning_error(aligned_ref, aligned_cur, spread))
    assert compared == 5


def test_a_statistic_that_does_not_fit_a_listed_column_says_what_to_do(
        pytester: pytest.Pytester, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pytester.makepyprojecttoml(config('columns = ["plan", "signup_date", "zip"]\n'
                                      'expect = { ks = "<= 0.1" }\n'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*plan: ks does not apply to a categorical column (use psi, js, chi2_p, or list plan "
        "in numeric = ?...?)",
        "*signup_date: is datetime in the reference data; drift compares numbers and "
        "categories*",
        "*zip: no such column in train.parquet (columns: customer_id, age, plan, "
        "monthly_spend, signup_date)",
    ])


def test_a_current_file_not_written_yet_is_an_error_per_statistic(
        pytester: pytest.Pytester, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pytester.makepyprojecttoml(config('expect = { psi = "<= 0.2", js = "<= 0.1" }\n',
                                      current="data/live/*.parquet"))
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*maintenance::drift::psi FAILED*",
                                 "*maintenance::drift::js FAILED*",
                                 "*data/live/*.parquet*"])


def test_frames_from_fixtures_are_compared_too(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import numpy as np, pandas as pd, pytest

        @pytest.fixture
        def train_frame():
            rng = np.random.default_rng(1)
            return pd.DataFrame({"x": rng.normal(0, 1, 3000), "c": rng.choice(["a", "b"], 3000)})

        @pytest.fixture
        def live_frame():
            rng = np.random.default_rng(2)
            return pd.DataFrame({"x": rng.normal(1, 1, 3000), "c": rng.choice(["a", "b"], 3000)})
    """)
    pytester.makepyprojecttoml(
        "[tool.mlfunnel]\n[tool.mlfunnel.maintenance.drift]\n"
        'drift = { reference = { fixture = "train_frame" }, current = { fixture = '
        '"live_frame" } }\nexpect = { psi = "<= 0.2" }\n')
    result = pytester.runpytest("--funnel", "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*maintenance::drift::psi FAILED*",
                                 "*1 of 2 columns: x psi *, expected <= 0.2"])


@pytest.mark.parametrize(("body", "message"), [
    ('expect = { psi = "<= 0.2", wasserstein = "<= 1" }',
     "tool.mlfunnel.maintenance.drift.expect.wasserstein: unknown key (allowed: psi, ks, "
     "ks_p, js, chi2_p)"),
    ("expect = {}", "tool.mlfunnel.maintenance.drift: expect: give at least one of psi, ks, "
     "ks_p, js, chi2_p*"),
    ('expect = { psi = "0.2" }', "tool.mlfunnel.maintenance.drift.expect.psi: not a valid "
     "expectation: '0.2'*"),
    ('expect = { psi = "<= 0.2" }\nbins = 1',
     "tool.mlfunnel.maintenance.drift.bins: Input should be greater than or equal to 2*"),
    ('expect = { psi = "<= 0.2" }\ncolumns = []',
     "tool.mlfunnel.maintenance.drift.columns: give one or more columns*"),
    ('expect = { psi = "<= 0.2" }\ncategorical = ["a"]\nnumeric = ["a"]',
     "tool.mlfunnel.maintenance.drift: a is listed as both categorical and numeric"),
])
def test_config_mistakes_stop_the_run_with_the_key_path(pytester: pytest.Pytester, body: str,
                                                        message: str) -> None:
    pytester.makepyprojecttoml(config(body + "\n"))
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pyproject.toml: {message}"])


def test_an_unknown_source_name_is_a_config_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        "[tool.mlfunnel]\n[tool.mlfunnel.sources]\ntrain = 'train.parquet'\n"
        "[tool.mlfunnel.maintenance.drift]\ndrift = { reference = 'trian', current = 'live' }\n"
        "expect = { psi = '<= 0.2' }\n")
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tool.mlfunnel.maintenance.drift.drift.reference: unknown "
                                 "source 'trian'*(declared sources: train); did you mean "
                                 "'train'?"])


def test_a_damaged_cache_is_only_a_missed_shortcut(
        pytester: pytest.Pytester, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pytester.makepyprojecttoml(config('columns = ["age"]\nexpect = { psi = "<= 0.2" }\n'))
    pytester.runpytest("--funnel").assert_outcomes(passed=1)
    for path in (pytester.path / ".mlfunnel" / "cache").glob("*.json"):
        path.write_text("{ not json")
    pytester.runpytest("--funnel").assert_outcomes(passed=1)


def test_cache_false_writes_nothing(pytester: pytest.Pytester,
                                    frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pytester.makepyprojecttoml(config('columns = ["age"]\ncache = false\n'
                                      'expect = { psi = "<= 0.2" }\n'))
    pytester.runpytest("--funnel").assert_outcomes(passed=1)
    assert not Path(pytester.path / ".mlfunnel" / "cache").exists()


def test_tables_in_a_sqlite_database_are_compared_in_the_database(
        pytester: pytest.Pytester) -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(0.0, 1.0, 3000)
    current = rng.normal(0.4, 1.0, 2000)
    with sqlite3.connect(pytester.path / "warehouse.db") as connection:
        connection.execute("CREATE TABLE train (x REAL, c TEXT)")
        connection.execute("CREATE TABLE live (x REAL, c TEXT)")
        connection.executemany("INSERT INTO train VALUES (?, ?)",
                               [(float(v), "a" if v > 0 else "b") for v in reference])
        connection.executemany("INSERT INTO live VALUES (?, ?)",
                               [(float(v), "a" if v > 0 else "b") for v in current])
    pytester.makepyprojecttoml(
        "[tool.mlfunnel]\n[tool.mlfunnel.maintenance.drift]\n"
        "drift = { reference = { url = 'sqlite:///warehouse.db', table = 'train' }, "
        "current = { url = 'sqlite:///warehouse.db', table = 'live' } }\n"
        "expect = { psi = '<= 0.1', chi2_p = '>= 0.01' }\n")
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=3)
    found = criteria(pytester)
    edges = reported_edges(found, "x", reference)
    assert len(edges) == 9
    assert found["x.psi"]["observed"] == pytest.approx(
        psi_formula(counts(reference, edges), counts(current, edges)), rel=1e-5)
    share = [(reference > 0).sum(), (reference <= 0).sum()], [(current > 0).sum(),
                                                             (current <= 0).sum()]
    _, p, _, _ = ss.chi2_contingency(share, correction=False)
    assert found["c.chi2_p"]["observed"] == pytest.approx(p, rel=1e-5)


def test_a_decimal_column_compared_as_categories_is_compared_and_its_summary_saved(
        pytester: pytest.Pytester) -> None:
    """Decimal values (a NUMERIC status code) are counted as numbers: the reference's summary
    is saved and read back, instead of every criterion of the check failing on JSON."""
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    def codes(shift: int) -> pa.Table:
        values = [decimal.Decimal(v) for v in ([1] * 50 + [2] * 30 + [3] * (20 + shift))]
        return pa.table({"code": pa.array(values, pa.decimal128(5, 0))})
    pq.write_table(codes(0), pytester.path / "train.parquet")
    pq.write_table(codes(60), pytester.path / "live.parquet")
    pytester.makepyprojecttoml(config('categorical = ["code"]\n'
                                      'expect = { psi = "<= 0.2", chi2_p = ">= 0.01" }\n'))
    first = pytester.runpytest("--funnel", "--funnel-json=report.json")
    first.assert_outcomes(failed=2)
    first.stdout.fnmatch_lines(["*code psi *, expected <= 0.2*"])
    first.stdout.no_fnmatch_line("*TypeError*")
    before = criteria(pytester)
    assert list((pytester.path / ".mlfunnel" / "cache").glob("drift-reference-*.json"))
    second = pytester.runpytest("--funnel", "--funnel-json=report.json")
    second.assert_outcomes(failed=2)
    after = criteria(pytester)
    assert [after[c]["observed"] for c in ("code.psi", "code.chi2_p")] == [
        before[c]["observed"] for c in ("code.psi", "code.chi2_p")]


def test_ks_p_of_a_reference_of_a_few_rows_is_scipys_asymptotic_p_value(
        pytester: pytest.Pytester) -> None:
    """With 3 reference rows the effective n is 3, where the Pelz-Good expansion was 0.03
    off the Kolmogorov distribution scipy's ks_2samp (method="asymp") reads."""
    reference = pd.DataFrame({"x": [0.2, 0.5, 0.9]})
    current = pd.DataFrame({"x": np.linspace(0.0, 0.6, 60)})
    reference.to_parquet(pytester.path / "train.parquet")
    current.to_parquet(pytester.path / "live.parquet")
    pytester.makepyprojecttoml(config('expect = { ks_p = ">= 0.5" }\ncache = false\n'))
    result = pytester.runpytest("--funnel", "-p", "no:xdist", "-p", "no:cacheprovider",
                                "--funnel-json", "report.json")
    expected = ss.ks_2samp(reference["x"], current["x"], method="asymp").pvalue
    found = criteria(pytester)["x.ks_p"]
    assert found["observed"] == pytest.approx(expected, abs=1e-6)
    assert found["status"] == "failed"
    result.stdout.fnmatch_lines([f"x ks p-value {expected:.4g}, expected >= 0.5"])

"""The ``effect`` kind through real pytest runs on real CSV/Parquet files, scipy as reference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb  # noqa: F401 - imported once here: pytester's in-process runs must not re-import it
import numpy as np
import pandas as pd
import pandas.core.arrays.arrow.extension_types
import pytest
import scipy.stats as ss


def write_kpi(path: Path, before: np.ndarray, after: np.ndarray, by: str = "period",
              labels: tuple[object, object] = ("before", "after"),
              metric: str = "minutes_per_box") -> None:
    frame = pd.DataFrame({
        by: [labels[0]] * len(before) + [labels[1]] * len(after),
        metric: np.concatenate([before, after]),
    })
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)


def config(body: str) -> str:
    return "[tool.mlfunnel]\n[tool.mlfunnel.effectiveness.box_time]\n" + body


BASE = """effect = "kpi.csv"
metric = "minutes_per_box"
by = "period"
"""


@pytest.fixture
def kpi(pytester: pytest.Pytester) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    before = rng.normal(5.33, 0.9, 400)
    after = rng.normal(4.93, 0.9, 380)
    write_kpi(pytester.path / "kpi.csv", before, after)
    return before, after


def report(pytester: pytest.Pytester) -> dict[str, object]:
    data = json.loads((pytester.path / "report.json").read_text())
    criterion: dict[str, object] = data["gates"][6]["criteria"][0]
    return criterion


def test_a_significant_decrease_passes_and_reports_the_numbers_scipy_gives(
        pytester: pytest.Pytester, kpi: tuple[np.ndarray, np.ndarray], xdist_args: list[str]) -> None:
    before, after = kpi
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\nmin_effect = "5%"\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-v", *xdist_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PASSED*effectiveness::box_time::minutes_per_box*"]
                                if xdist_args else
                                ["*effectiveness::box_time::minutes_per_box PASSED*"])
    criterion = report(pytester)
    expected = ss.ttest_ind(after, before, equal_var=False, alternative="less")
    extra = criterion["extra"]
    assert isinstance(extra, dict)
    assert extra["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert extra["ci"][0] is None
    assert extra["ci"][1] == pytest.approx(expected.confidence_interval(0.95).high, rel=1e-6)
    assert extra["n_before"] == 400 and extra["n_after"] == 380
    assert extra["mean_before"] == pytest.approx(before.mean())
    relative = (after.mean() - before.mean()) / before.mean()
    assert criterion["observed"] == pytest.approx(relative)
    assert criterion["expected"] == "decrease by >= 5%, p <= 0.05 (one-sided)"
    assert f"fell {abs(relative) * 100:.1f}%" in str(criterion["message"])


def test_a_change_the_wrong_way_is_called_out_in_words(
        pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    rng = np.random.default_rng(3)
    write_kpi(pytester.path / "kpi.csv", rng.normal(4.93, 0.5, 300), rng.normal(5.33, 0.5, 300))
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\n'))
    result = pytester.runpytest("--funnel", *xdist_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*minutes_per_box rose *% (4.9* -> 5.3*), expected a decrease"])
    assert result.ret == 1


def test_a_change_below_min_effect_fails_naming_the_size(
        pytester: pytest.Pytester, kpi: tuple[np.ndarray, np.ndarray]) -> None:
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\nmin_effect = "20%"\n'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*minutes_per_box fell *%*, expected a decrease of at "
                                 "least 20%"])


def test_an_absolute_min_effect_is_in_the_metric_unit(
        pytester: pytest.Pytester, kpi: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = kpi
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\nmin_effect = 0.3\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    assert report(pytester)["observed"] == pytest.approx(after.mean() - before.mean())
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\nmin_effect = 0.6\n'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected a decrease of at least 0.6"])


def test_a_right_way_change_that_is_not_significant_fails_with_its_p_value(
        pytester: pytest.Pytester) -> None:
    before = np.array([5.0, 7.0, 3.0, 6.0, 4.0] * 6)
    after = np.array([4.8, 7.0, 3.0, 6.0, 4.0] * 5)
    write_kpi(pytester.path / "kpi.csv", before, after)
    expected = ss.ttest_ind(after, before, equal_var=False, alternative="less")
    assert after.mean() < before.mean() and expected.pvalue > 0.05
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\n'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*as expected but not significant: p = "
                                 f"{round(expected.pvalue, 4):g}*, needs <= 0.05 (welch, "
                                 "one-sided, n = 30/25)"])


def test_mannwhitney_reads_all_rows_under_the_cap_and_matches_scipy(
        pytester: pytest.Pytester, kpi: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = kpi
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\ntest = "mannwhitney"\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json", "-rA")
    result.assert_outcomes(passed=1)
    extra = report(pytester)["extra"]
    assert isinstance(extra, dict)
    expected = ss.mannwhitneyu(after, before, alternative="less")
    assert extra["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert extra["statistic"] == pytest.approx(expected.statistic)
    assert extra["sample"] == "mannwhitney on all 780 rows"


def test_a_capped_sample_is_seeded_and_said_in_the_message(
        pytester: pytest.Pytester, kpi: tuple[np.ndarray, np.ndarray]) -> None:
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\ntest = "mannwhitney"\n'
                                      'max_rows = 500\nseed = 3\n'))
    first = pytester.runpytest("--funnel", "--funnel-json=report.json")
    first.assert_outcomes(passed=1)
    criterion = report(pytester)
    assert "mannwhitney on a sample of 500 of 780 rows (max_rows 500, seed 3)" in str(
        criterion["message"])
    pytester.runpytest("--funnel", "--funnel-json=report.json").assert_outcomes(passed=1)
    assert report(pytester)["extra"] == criterion["extra"]


def test_bootstrap_is_seeded_and_agrees_with_welch(
        pytester: pytest.Pytester, kpi: tuple[np.ndarray, np.ndarray]) -> None:
    before, after = kpi
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\ntest = "bootstrap"\n'))
    pytester.runpytest("--funnel", "--funnel-json=report.json").assert_outcomes(passed=1)
    extra = report(pytester)["extra"]
    assert isinstance(extra, dict)
    welch = ss.ttest_ind(after, before, equal_var=False, alternative="less")
    assert extra["p_value"] < 0.05
    assert extra["ci"][1] == pytest.approx(welch.confidence_interval(0.95).high, abs=0.05)
    pytester.runpytest("--funnel", "--funnel-json=report.json").assert_outcomes(passed=1)
    assert report(pytester)["extra"] == extra


def test_control_and_treatment_labels_from_a_parquet_file(pytester: pytest.Pytester) -> None:
    rng = np.random.default_rng(5)
    write_kpi(pytester.path / "trial.parquet", rng.normal(0.10, 0.03, 200),
              rng.normal(0.13, 0.03, 200), by="arm", labels=(0, 1), metric="conversion")
    pytester.makepyprojecttoml(config(
        'effect = "trial.parquet"\nmetric = "conversion"\nby = "arm"\ncontrol = 0\n'
        'treatment = 1\nexpect = "increase"\nmin_effect = "10%"\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    assert re.fullmatch(r"conversion rose \d+\.\d% \(control 0\.\d+ vs treatment 0\.\d+\), an "
                        r"increase as expected; p = .* \(welch, one-sided, n = 200/200\)",
                        str(report(pytester)["message"]))


def test_a_missing_group_is_an_error_naming_the_values_there(
        pytester: pytest.Pytester, kpi: tuple[np.ndarray, np.ndarray]) -> None:
    pytester.makepyprojecttoml(config(BASE + 'after = "launch"\nbefore = "before"\n'
                                      'expect = "decrease"\n'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*kpi.csv: no rows with period = 'launch' (the after group);"
                                 " period has: after, before"])


def test_before_alone_compares_with_the_default_after_label(pytester: pytest.Pytester) -> None:
    """The reference lists defaults for both labels: giving one keeps the other's default."""
    write_kpi(pytester.path / "kpi.csv", np.array([5.0, 5.2, 5.1, 5.3]),
              np.array([4.0, 4.1, 4.2, 3.9]), labels=("pre", "after"))
    pytester.makepyprojecttoml(config(BASE + 'before = "pre"\nexpect = "decrease"\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    assert str(report(pytester)["message"]).startswith("minutes_per_box fell 21.")
    pytester.makepyprojecttoml(config(BASE + 'before = "pre"\nexpect = "increase"\n'))
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["      effectiveness::box_time::minutes_per_box: "
                                 "minutes_per_box fell 21.*"])


def test_a_group_with_one_value_is_an_error_not_a_verdict(pytester: pytest.Pytester) -> None:
    write_kpi(pytester.path / "kpi.csv", np.array([5.0, 5.2, 5.1]), np.array([4.0]))
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*minutes_per_box: 1 value(s) with period = 'after' (the "
                                 "after group); the test needs at least 2 per group"])
    assert report(pytester)["status"] == "error"


def test_constant_groups_that_differ_are_a_certain_change(pytester: pytest.Pytester) -> None:
    write_kpi(pytester.path / "kpi.csv", np.full(10, 5.0), np.full(12, 4.0))
    pytester.makepyprojecttoml(config(BASE + 'expect = "decrease"\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    assert report(pytester)["message"] == ("minutes_per_box fell 20.0% (5 -> 4), a decrease as "
                                           "expected; p = 0 (welch, one-sided, n = 10/12)")


def test_a_missing_file_and_a_missing_column_are_errors(pytester: pytest.Pytester,
                                                        kpi: tuple[np.ndarray, np.ndarray]
                                                        ) -> None:
    pytester.makepyprojecttoml(
        "[tool.mlfunnel]\n[tool.mlfunnel.effectiveness.gone]\neffect = 'data/none.csv'\n"
        "metric = 'm'\nby = 'period'\nexpect = 'increase'\n"
        "[tool.mlfunnel.effectiveness.column]\neffect = 'kpi.csv'\nmetric = 'minutes'\n"
        "by = 'period'\nexpect = 'increase'\n")
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*data/none.csv*", "*minutes: no such column in kpi.csv "
                                 "(columns: period, minutes_per_box)*"])


@pytest.mark.parametrize(("body", "message"), [
    ('expect = "down"', "tool.mlfunnel.effectiveness.box_time.expect: Input should be "
     "'increase' or 'decrease'*"),
    ('expect = "decrease"\nmin_effect = "-5%"',
     "tool.mlfunnel.effectiveness.box_time.min_effect: min_effect is a size, not a direction*"),
    ('expect = "decrease"\nmin_effect = "lots"',
     "tool.mlfunnel.effectiveness.box_time.min_effect: not a size of change: 'lots'*"),
    ('expect = "decrease"\nconfidence = 95',
     "tool.mlfunnel.effectiveness.box_time.confidence: confidence is a level such as 0.95*"),
    ('expect = "decrease"\ntest = "ttest"',
     "tool.mlfunnel.effectiveness.box_time.test: Input should be 'welch', 'mannwhitney' or "
     "'bootstrap'*"),
    ('expect = "decrease"\ncontrol = "a"',
     "tool.mlfunnel.effectiveness.box_time: treatment: missing (give both control and "
     "treatment)"),
    ('expect = "decrease"\nbefore = "a"\nafter = "b"\ncontrol = "c"\ntreatment = "d"',
     "tool.mlfunnel.effectiveness.box_time: give before/after or control/treatment, not both"),
    ('expect = "decrease"\nmax_rows = 100',
     "tool.mlfunnel.effectiveness.box_time: max_rows: welch reads only aggregates*"),
    ('expect = "decrease"\nalpha = 0.05',
     "tool.mlfunnel.effectiveness.box_time.alpha: unknown key (allowed: *)"),
])
def test_config_mistakes_stop_the_run_with_the_key_path(pytester: pytest.Pytester, body: str,
                                                        message: str) -> None:
    pytester.makepyprojecttoml(config(BASE + body + "\n"))
    result = pytester.runpytest("--funnel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pyproject.toml: {message}"])


def test_a_lazy_polars_frame_from_a_fixture_is_aggregated_in_polars(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import numpy as np, polars as pl, pytest

        @pytest.fixture
        def kpi_frame():
            rng = np.random.default_rng(1)
            values = np.concatenate([rng.normal(5.0, 1.0, 200), rng.normal(4.6, 1.0, 150)])
            return pl.DataFrame({"arm": ["control"] * 200 + ["treatment"] * 150,
                                 "minutes": values}).lazy()
    """)
    pytester.makepyprojecttoml(config(
        'effect = { fixture = "kpi_frame" }\nmetric = "minutes"\nby = "arm"\n'
        'control = "control"\ntreatment = "treatment"\nexpect = "decrease"\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    rng = np.random.default_rng(1)
    control, treatment = rng.normal(5.0, 1.0, 200), rng.normal(4.6, 1.0, 150)
    expected = ss.ttest_ind(treatment, control, equal_var=False, alternative="less")
    extra = report(pytester)["extra"]
    assert isinstance(extra, dict)
    assert extra["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)


@pytest.mark.parametrize("test", ["welch", "mannwhitney", "bootstrap"])
def test_an_infinite_kpi_value_is_named_not_a_statistics_failure(
        pytester: pytest.Pytester, test: str) -> None:
    """An infinite minutes_per_box in the after group: no mean or test of it means anything,
    and the message says where, whichever test was asked."""
    rng = np.random.default_rng(3)
    after = rng.normal(4.9, 0.9, 200)
    after[:2] = np.inf
    write_kpi(pytester.path / "kpi.parquet", rng.normal(5.3, 0.9, 200), after)
    pytester.makepyprojecttoml(config(BASE.replace("kpi.csv", "kpi.parquet")
                                      + f'expect = "decrease"\ntest = "{test}"\n'))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(failed=1)
    assert "ArithmeticError" not in result.stdout.str()
    found = report(pytester)
    assert (found["status"], found["message"]) == (
        "error", "minutes_per_box: holds infinite values with period = 'after' (the after "
                 "group: its mean is inf); the effect needs finite numbers")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "sqlite"])
@pytest.mark.parametrize("test", ["welch", "mannwhitney"])
def test_a_boolean_kpi_is_a_rate_of_zeros_and_ones(pytester: pytest.Pytester, fmt: str,
                                                   test: str) -> None:
    # a conversion flag: DuckDB has no avg(BOOLEAN), and the criterion ended with "cannot read
    # as parquet: Binder Error: No function matches ... 'avg(BOOLEAN)'"
    rng = np.random.default_rng(11)
    before, after = rng.random(300) < 0.3, rng.random(300) < 0.4
    frame = pd.DataFrame({"arm": ["control"] * 300 + ["treatment"] * 300,
                          "converted": np.concatenate([before, after])})
    if fmt == "sqlite":
        import sqlite3
        with sqlite3.connect(pytester.path / "trial.db") as conn:
            conn.execute("CREATE TABLE trial (arm TEXT, converted BOOLEAN)")
            conn.executemany("INSERT INTO trial VALUES (?, ?)",
                             [(a, bool(c)) for a, c in frame.itertuples(index=False)])
        source = '{ url = "sqlite:///trial.db", table = "trial" }'
    else:
        path = pytester.path / f"trial.{fmt}"
        frame.to_parquet(path) if fmt == "parquet" else frame.to_csv(path, index=False)
        source = f'"trial.{fmt}"'
    pytester.makepyprojecttoml(config(f"""effect = {source}
metric = "converted"
by = "arm"
control = "control"
treatment = "treatment"
expect = "increase"
test = "{test}"
"""))
    result = pytester.runpytest("--funnel", "--funnel-json=report.json")
    result.assert_outcomes(passed=1)
    criterion = report(pytester)
    extra = criterion["extra"]
    assert isinstance(extra, dict)
    x, y = after.astype(float), before.astype(float)
    expected = (ss.ttest_ind(x, y, equal_var=False, alternative="greater") if test == "welch"
                else ss.mannwhitneyu(x, y, alternative="greater"))
    assert extra["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert (extra["mean_before"], extra["mean_after"]) == pytest.approx((y.mean(), x.mean()))
    assert str(criterion["message"]).startswith(
        f"converted rose {100 * (x.mean() / y.mean() - 1):.1f}% "
        f"(control {y.mean():.4g} vs treatment {x.mean():.4g}), an increase as expected")


def test_bootstrap_gives_the_same_numbers_on_every_engine_that_reads_every_row(
        pytester: pytest.Pytester) -> None:
    # each engine hands the rows back in its own order, and the resamples follow the order:
    # a Parquet file and the same rows in SQLite gave p = 0.013 and p = 0.009
    import sqlite3
    rng = np.random.default_rng(3)
    before, after = rng.normal(10, 2, 300), rng.normal(10.3, 2, 300)
    write_kpi(pytester.path / "kpi.parquet", before, after)
    with sqlite3.connect(pytester.path / "kpi.db") as conn:
        conn.execute("CREATE TABLE kpi (period TEXT, minutes_per_box REAL)")
        conn.executemany("INSERT INTO kpi VALUES (?, ?)",
                         [("after", float(v)) for v in after[::-1]]
                         + [("before", float(v)) for v in before[::-1]])
    pytester.makeconftest("""
import polars as pl
import pytest

@pytest.fixture
def kpi_frame():
    return pl.scan_parquet("kpi.parquet").sort("minutes_per_box", descending=True)
""")
    sources = {"parquet": '"kpi.parquet"', "sqlite": '{ url = "sqlite:///kpi.db", table = "kpi" }',
               "lazy": '{ fixture = "kpi_frame" }'}
    pytester.makepyprojecttoml("[tool.mlfunnel]\n" + "".join(f"""
[tool.mlfunnel.effectiveness.{name}]
effect = {source}
metric = "minutes_per_box"
by = "period"
expect = "increase"
test = "bootstrap"
""" for name, source in sources.items()))
    pytester.runpytest("--funnel", "--funnel-json=report.json").assert_outcomes(passed=3)
    data = json.loads((pytester.path / "report.json").read_text())
    found = {c["check"]: (c["extra"]["p_value"], c["extra"]["ci"], c["message"])
             for c in data["gates"][6]["criteria"]}
    assert found["sqlite"] == found["parquet"]
    assert found["lazy"] == found["parquet"]
    assert found["parquet"][0] < 0.05


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_sample_picks_the_same_rows_on_every_engine_whatever_order_it_reads_them_in(
        pytester: pytest.Pytester, request: pytest.FixtureRequest, database: str) -> None:
    # each engine numbered the rows in the order it read them and shuffled the numbers with a
    # hash of its own (DuckDB hash, PostgreSQL md5): one seed, a sample per engine
    rng = np.random.default_rng(4)
    before, after = rng.normal(10, 2, 300).round(1), rng.normal(10.4, 2, 300).round(1)
    write_kpi(pytester.path / "kpi.parquet", before, after)
    rows = [("after", float(v)) for v in after[::-1]] + [("before", float(v))
                                                         for v in before[::-1]]
    if database == "sqlite":
        import sqlite3
        with sqlite3.connect(pytester.path / "kpi.db") as conn:
            conn.execute("CREATE TABLE kpi (period TEXT, minutes_per_box REAL)")
            conn.executemany("INSERT INTO kpi VALUES (?, ?)", rows)
        conn.close()
        table = '{ url = "sqlite:///kpi.db", table = "kpi" }'
    else:
        import sqlalchemy
        url = request.getfixturevalue("postgres_url")
        name = f"kpi_{pytester.path.name[-8:].replace('-', '_')}"
        db = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with db.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE TABLE {name} (period TEXT, minutes_per_box "
                                 "DOUBLE PRECISION)")
            conn.execute(sqlalchemy.text(f"INSERT INTO {name} VALUES (:p, :m)"),
                         [{"p": p, "m": m} for p, m in rows])
        request.addfinalizer(lambda: db.dispose())
        table = f'{{ url = "{url}", table = "{name}" }}'
    pytester.makeconftest("""
import polars as pl
import pytest

@pytest.fixture
def kpi_frame():
    return pl.scan_parquet("kpi.parquet").sort("minutes_per_box", descending=True)
""")
    sources = {"parquet": '"kpi.parquet"', "table": table, "lazy": '{ fixture = "kpi_frame" }'}
    pytester.makepyprojecttoml("[tool.mlfunnel]\n" + "".join(f"""
[tool.mlfunnel.effectiveness.{name}]
effect = {source}
metric = "minutes_per_box"
by = "period"
expect = "increase"
test = "bootstrap"
max_rows = 200
seed = 11
""" for name, source in sources.items()))
    pytester.runpytest("--funnel", "--funnel-json=report.json")
    data = json.loads((pytester.path / "report.json").read_text())
    found = {c["check"]: (c["extra"]["p_value"], c["extra"]["ci"], c["message"])
             for c in data["gates"][6]["criteria"]}
    assert "bootstrap on a sample of 200 of 600 rows (max_rows 200, seed 11)" in found[
        "parquet"][2]
    assert found["table"] == found["parquet"]
    assert found["lazy"] == found["parquet"]

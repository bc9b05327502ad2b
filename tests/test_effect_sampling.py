"""``effect``'s sample of a lazy frame is picked in the frame's engine: only the sampled rows
come back, the same rows on every run and on every backend."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from pytest_mlfunnel.engines.frames import NarwhalsEngine

pytest_plugins = ["pytester"]

ROWS = 2000


def frame_data() -> dict[str, list[object]]:
    rng = np.random.default_rng(11)
    before = rng.normal(5.3, 0.9, ROWS // 2).round(3)
    after = rng.normal(4.9, 0.9, ROWS // 2).round(3)
    return {"period": ["before"] * (ROWS // 2) + ["after"] * (ROWS // 2),
            "minutes": [float(v) for v in np.concatenate([before, after])]}


def engines() -> dict[str, NarwhalsEngine]:
    import narwhals.stable.v2 as nw
    import pandas as pd
    import polars as pl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import dask.dataframe as dd

        return {"polars": NarwhalsEngine(nw.from_native(pl.LazyFrame(frame_data())), "p"),
                "dask": NarwhalsEngine(nw.from_native(dd.from_pandas(
                    pd.DataFrame(frame_data()), npartitions=4)), "d")}


def rows(sample: dict[str, list[object]]) -> list[tuple[object, ...]]:
    return sorted(zip(*sample.values(), strict=True))


def test_polars_keeps_only_the_sampled_rows_in_its_own_plan() -> None:
    import narwhals.stable.v2 as nw

    plan = nw.to_native(engines()["polars"].sample_plan(["period", "minutes"], 300, 3))
    assert "slice: (0, 300" in plan.explain()  # sorted and cut in the engine


def test_the_same_seed_picks_the_same_rows_on_polars_and_dask() -> None:
    found = {name: engine.sample(["period", "minutes"], 300, 3)
             for name, engine in engines().items()}
    assert len(found["polars"]["minutes"]) == 300
    assert rows(found["polars"]) == rows(found["dask"])
    again = engines()["polars"].sample(["period", "minutes"], 300, 3)
    assert again == found["polars"]
    other = engines()["polars"].sample(["period", "minutes"], 300, 4)
    assert rows(other) != rows(found["polars"])
    everything = engines()["dask"].sample(["minutes"], ROWS + 1, 0)
    assert rows(everything) == sorted((v,) for v in frame_data()["minutes"])


def test_an_effect_on_a_lazy_frame_reads_a_sample_in_the_engine(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(f"""
import polars as pl
import pytest

@pytest.fixture
def kpi():
    return pl.LazyFrame({frame_data()!r})
""")
    pytester.makepyprojecttoml("""
[tool.mlfunnel]
[tool.mlfunnel.effectiveness.box_time]
effect = { fixture = "kpi" }
metric = "minutes"
by = "period"
expect = "decrease"
test = "mannwhitney"
max_rows = 500
seed = 3
""")
    log = pytester.path / "queries.log"
    pytester._monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))  # type: ignore[attr-defined]
    first = pytester.runpytest("--funnel", "--funnel-json=report.json", "-p", "no:xdist")
    first.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "report.json").read_text())
    criterion = next(c for g in data["gates"] for c in g["criteria"])
    assert (f"mannwhitney on a sample of 500 of {ROWS:,} rows (max_rows 500, seed 3)"
            in criterion["message"])
    assert [line.split("\t")[1] for line in log.read_text().splitlines()].count("sample") == 1
    second = pytester.runpytest("--funnel", "--funnel-json=report.json", "-p", "no:xdist")
    second.assert_outcomes(passed=1)
    again = next(c for g in json.loads((pytester.path / "report.json").read_text())["gates"]
                 for c in g["criteria"])
    # the same sample: the same test result (polars sums group means in parallel, so the
    # last digits of a mean may differ between runs)
    assert again["extra"]["sample"] == criterion["extra"]["sample"]
    assert again["extra"]["p_value"] == pytest.approx(criterion["extra"]["p_value"], rel=1e-9)
    assert again["extra"]["statistic"] == pytest.approx(criterion["extra"]["statistic"])

"""The same dataset, drift and effect checks on every engine: same statuses, same numbers.

Each case runs pytest on a table written into one engine of the matrix (``matrix_engine`` fixture,
``--engines`` option) and compares the JSON report with the one the reference engine
(Parquet read by DuckDB) gives on the same rows; the reference's own answers are asserted
too, so a case cannot pass by every engine being wrong alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import math
from typing import Any

import pytest
from engine_matrix import REFERENCE, Engine

pl = pytest.importorskip("polars")
np = pytest.importorskip("numpy")
# In-process pytester runs drop modules first imported during a run: import every engine's
# modules before the first run (a missing one skips its engine on its own).
for _module in ("duckdb", "narwhals", "pyarrow", "pandas", "sqlalchemy", "psycopg",
                "duckdb_engine", "dask.dataframe", "distributed", "ibis", "sqlframe.duckdb",
                "pyspark.sql"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module)

N = 600


def events(shift: float = 0.0, seed: int = 7) -> Any:
    """N rows and 3 repeated ones: ints with nulls, a float with NaN and nulls, classes, times.
    ``shift`` moves the spend column and the plan mix (the drifted current data)."""
    rng = np.random.default_rng(seed)
    spend = rng.normal(50 + shift, 10, N).round(3)
    group = ["before" if i % 2 == 0 else "after" for i in range(N)]
    spend = [float(v) + (5.0 if g == "after" else 0.0) for v, g in zip(spend, group, strict=True)]
    for i in range(0, N, 37):
        spend[i] = math.nan
    plan_p = [0.5, 0.3, 0.2] if not shift else [0.3, 0.3, 0.4]
    frame = pl.DataFrame({
        "id": list(range(N)),
        "age": [None if i % 25 == 0 else int(v) for i, v in enumerate(rng.integers(18, 90, N))],
        "plan": rng.choice(["basic", "pro", "team"], N, p=plan_p).tolist(),
        "spend": [None if i == 5 else v for i, v in enumerate(spend)],
        "ts": [dt.datetime(2026, 1, 1) + dt.timedelta(hours=3 * i) for i in range(N)],
        "grp": group,
    }, schema={"id": pl.Int64, "age": pl.Int64, "plan": pl.String, "spend": pl.Float64,
               "ts": pl.Datetime("us"), "grp": pl.String})
    return pl.concat([frame, frame.slice(10, 3)])


DATASET = """
[tool.mlfunnel.data.events]
dataset = {source}
rows = ">= 600"
duplicates = "<= 0.1%"
columns.id = {{ unique = true, nulls = "== 0", dtype = "int" }}
columns.age = {{ nulls = "<= 5%", min = 20, max = 89 }}
columns.plan = {{ values = ["basic", "pro"], min_share = "10%" }}
columns.spend = {{ nulls = "<= 2%", min = 0, max = 100 }}
columns.ts = {{ min = "2026-01-01", max = "2026-03-01", dtype = "datetime" }}
group_size = {{ by = "plan", min = ">= 100" }}
"""
DATASET_STATUSES = {
    "rows": "passed", "duplicates": "failed", "id.unique": "failed", "id.nulls": "passed",
    "id.dtype": "passed", "age.nulls": "passed", "age.min": "failed", "age.max": "passed",
    "plan.values": "failed", "plan.min_share": "passed", "spend.nulls": "failed",
    "spend.min": "passed", "spend.max": "passed", "ts.min": "passed", "ts.max": "failed",
    "ts.dtype": "passed", "group_size.min": "passed"}

DRIFT = """
[tool.mlfunnel.maintenance.drift]
drift = {{ reference = {reference}, current = {current} }}
columns = ["age", "plan", "spend"]
numeric = ["age", "spend"]
categorical = ["plan"]
expect = {{ psi = "<= 0.1", js = "<= 0.1", ks = "<= 0.1", ks_p = ">= 0.01", chi2_p = ">= 0.01" }}
cache = false
"""
DRIFT_STATUSES = {
    "age.psi": "passed", "age.js": "passed", "age.ks": "passed", "age.ks_p": "passed",
    "plan.psi": "failed", "plan.js": "failed", "plan.chi2_p": "failed",
    "spend.psi": "failed", "spend.js": "failed", "spend.ks": "failed", "spend.ks_p": "failed"}

EFFECT = """
[tool.mlfunnel.effectiveness.{name}]
effect = {source}
metric = "spend"
by = "grp"
expect = "increase"
min_effect = "2%"
test = "{test}"
"""


def run(pytester: pytest.Pytester, toml: str, by_check: bool = False
        ) -> dict[str, dict[str, Any]]:
    """pytest --funnel on ``toml``; criteria of the JSON report by their name in the check
    (``age.min``), or by the check's name."""
    pytester.makepyprojecttoml("[tool.mlfunnel]\nrequire = \"none\"\n" + toml)
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    assert result.ret in (0, 1), result.stdout.str()
    data = json.loads((pytester.path / "report.json").read_text())
    return {c["check"] if by_check else c["id"].rsplit("::", 1)[1]: c
            for g in data["gates"] for c in g["criteria"]}


def comparable(criteria: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What must match between engines: status, message, observed value and extras, floats
    to 9 significant digits (engines sum in different orders)."""
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.9g}")
        if isinstance(value, list):
            return [rounded(v) for v in value]
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value
    def examples_unordered(message: str) -> Any:
        # examples of equal standing (values seen twice each) come in the engine's order
        head, sep, examples = message.partition("e.g. ")
        return [head, sorted(examples.split(", "))] if sep else message
    return {name: rounded({"status": c["status"], "observed": c.get("observed"),
                           "message": examples_unordered(c["message"]),
                           "extra": c.get("extra")})
            for name, c in criteria.items()}


def dataset_report(pytester: pytest.Pytester, engine: Engine) -> dict[str, Any]:
    return run(pytester, DATASET.format(source=engine.source(pytester, "events", events())))


def drift_report(pytester: pytest.Pytester, engine: Engine) -> dict[str, Any]:
    ref = engine.source(pytester, "train", events())
    cur = engine.source(pytester, "live", events(shift=3.0, seed=8))
    return run(pytester, DRIFT.format(reference=ref, current=cur))


def effect_report(pytester: pytest.Pytester, engine: Engine) -> dict[str, Any]:
    source = engine.source(pytester, "events", events())
    return run(pytester, EFFECT.format(name="welch", source=source, test="welch")
               + EFFECT.format(name="mannwhitney", source=source, test="mannwhitney"),
               by_check=True)


CASES = {"dataset": dataset_report, "drift": drift_report, "effect": effect_report}


_REFERENCE: dict[str, dict[str, Any]] = {}


def same_as_reference(pytester: pytest.Pytester, engine: Engine, case: str) -> dict[str, Any]:
    """The engine's report of a case, asserted equal to the reference engine's (computed
    once per test process, in the first test directory that asks)."""
    if case not in _REFERENCE:
        _REFERENCE[case] = comparable(CASES[case](pytester, Engine(REFERENCE)))
    found = _REFERENCE[case] if engine.name == REFERENCE else comparable(
        CASES[case](pytester, engine))
    expected = _REFERENCE[case]
    assert sorted(found) == sorted(expected)
    for name, answer in found.items():
        for field, value in answer.items():
            assert value == expected[name][field], (
                f"{engine.name}: {name}.{field} is {value!r}, the reference engine says "
                f"{expected[name][field]!r}")
    return found


@pytest.mark.engine_core
def test_every_dataset_constraint_answers_the_same_on_every_engine(
        pytester: pytest.Pytester, matrix_engine: Engine) -> None:
    found = same_as_reference(pytester, matrix_engine, "dataset")
    assert {k: v["status"] for k, v in found.items()} == DATASET_STATUSES
    assert found["duplicates"]["extra"] == {"count": 3, "rows": 603}
    assert found["id.unique"]["extra"] == {"distinct": 600, "count": 603}
    assert found["spend.nulls"]["extra"] == {"count": 18, "rows": 603}  # 17 NaN and a null
    assert found["plan.values"]["observed"] == 127
    assert found["ts.max"]["observed"] == "2026-03-16T21:00:00"


@pytest.mark.engine_core
def test_every_drift_statistic_answers_the_same_on_every_engine(
        pytester: pytest.Pytester, matrix_engine: Engine) -> None:
    found = same_as_reference(pytester, matrix_engine, "drift")
    assert {k: v["status"] for k, v in found.items()} == DRIFT_STATUSES


@pytest.mark.engine_core
def test_welch_and_mann_whitney_answer_the_same_on_every_engine(
        pytester: pytest.Pytester, matrix_engine: Engine) -> None:
    found = same_as_reference(pytester, matrix_engine, "effect")
    assert {k: v["status"] for k, v in found.items()} == {"welch": "passed",
                                                         "mannwhitney": "passed"}
    welch = found["welch"]["extra"]
    assert (welch["n_before"], welch["n_after"]) == (293, 292)


def test_a_missing_column_is_an_error_naming_the_columns_there(
        pytester: pytest.Pytester, matrix_engine: Engine) -> None:
    source = matrix_engine.source(pytester, "events", events())
    found = run(pytester, f"""
[tool.mlfunnel.data.events]
dataset = {source}
rows = ">= 1"
columns.amount = {{ nulls = "== 0" }}
""")
    assert found["rows"]["status"] == "passed"
    assert found["amount.nulls"]["status"] == "error"
    message = found["amount.nulls"]["message"]
    assert message.startswith("amount: no such column in ")
    assert message.endswith("(columns: id, age, plan, spend, ts, grp)")

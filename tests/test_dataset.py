"""The ``dataset`` kind through real pytest runs on real files, frames and databases."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

pl = pytest.importorskip("polars")


@pytest.fixture(scope="module", autouse=True)
def _engines_imported_once() -> None:
    """In-process pytester runs drop modules first imported during a run, and C extensions
    load once per process: every engine the inner runs use is imported before any run starts
    -- when this module's tests run, not when it is collected."""
    for module in ("dask.dataframe", "psycopg"):  # conftest.py imports the others
        with contextlib.suppress(ImportError):  # a test needing a missing one fails on its own
            importlib.import_module(module)


N = 200


def customers(*, bad: bool = False) -> Any:
    """200 customers; ``bad`` breaks every constraint of CONSTRAINTS at once."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    ids = list(range(N))
    ages: list[int | None] = [20 + i % 60 for i in ids]
    plans = [("basic", "pro", "team")[i % 3] for i in ids]
    churned = [1 if i % 5 == 0 else 0 for i in ids]
    newest = now - dt.timedelta(days=2)
    if bad:
        ids[1] = ids[2] = ids[3] = 0  # repeated keys
        for i in range(0, 40, 2):
            ages[i] = None  # 10% nulls
        ages[5], ages[6] = -3, 150
        plans[7] = "enterprise"
        churned = [1 if i == 9 else 0 for i in range(N)]  # one class at 0.5%
        newest = now - dt.timedelta(days=90)
    return pl.DataFrame({
        "customer_id": ids,
        "age": ages,
        "plan": plans,
        "churned": churned,
        "signup_date": [newest - dt.timedelta(days=i) for i in range(N)],
    })


CONSTRAINTS = """
rows = ">= 100"
duplicates = "<= 1%"
columns.customer_id = { unique = true, nulls = "== 0", dtype = "int" }
columns.age = { nulls = "<= 5%", min = 0, max = 120 }
columns.plan = { values = ["basic", "pro", "team"] }
columns.churned = { values = [0, 1], min_share = "5%" }
columns.signup_date = { max_age = "30 days" }
"""
CRITERIA = 12


def write(frame: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)


def project(pytester: pytest.Pytester, source: str, extra: str = "") -> None:
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel]
require = "data"

[tool.mlfunnel.data.train]
dataset = {source}
{CONSTRAINTS}
{extra}
""")


def report(pytester: pytest.Pytester, depth: int = 1) -> dict[str, dict[str, Any]]:
    """Criteria of the JSON report by the last ``depth`` parts of their node id."""
    data = json.loads((pytester.path / "report.json").read_text())
    return {"::".join(c["id"].split("::")[-depth:]): c
            for g in data["gates"] for c in g["criteria"]}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_constraint_passes_on_good_data(pytester: pytest.Pytester, fmt: str,
                                              xdist_args: list[str]) -> None:
    write(customers(), pytester.path / f"data/train.{fmt}")
    project(pytester, f'"data/train.{fmt}"')
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json", *xdist_args)
    result.assert_outcomes(passed=CRITERIA)
    assert result.ret == 0
    names = set(report(pytester))
    assert names == {"rows", "duplicates", "customer_id.unique", "customer_id.nulls",
                     "customer_id.dtype", "age.nulls", "age.min", "age.max", "plan.values",
                     "churned.values", "churned.min_share", "signup_date.max_age"}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_constraint_fails_with_its_message(pytester: pytest.Pytester, fmt: str,
                                                 xdist_args: list[str]) -> None:
    frame = customers(bad=True)
    write(pl.concat([frame, frame.head(4)]), pytester.path / f"data/train.{fmt}")
    project(pytester, f'"data/train.{fmt}"')
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json", *xdist_args)
    result.assert_outcomes(passed=4, failed=CRITERIA - 4)
    assert result.ret == 1
    outcomes = report(pytester)
    assert {n for n, c in outcomes.items() if c["status"] == "passed"} == {
        "rows", "customer_id.nulls", "customer_id.dtype", "churned.values"}
    messages = {name: c["message"] for name, c in outcomes.items()}
    assert messages["duplicates"] == ("duplicates: 1.961% duplicated rows (4 of 204 rows), "
                                      "expected <= 1%")
    assert messages["customer_id.unique"] == (
        "customer_id: 7 repeated values (197 distinct among 204 non-null), expected unique; "
        "e.g. 0")
    assert messages["age.nulls"] == "age: 10.29% nulls (21 of 204 rows), expected <= 5%"
    assert messages["age.min"] == "age: min -3, expected >= 0; e.g. -3"
    assert messages["age.max"] == "age: max 150, expected <= 120; e.g. 150"
    assert messages["plan.values"] == ("plan: 1 value outside ['basic', 'pro', 'team'], "
                                       "e.g. 'enterprise'")
    assert messages["churned.min_share"].startswith(
        "churned: 1 class below 5% of values (1 ")
    assert messages["churned.values"] == "churned: every value in [0, 1]"
    assert messages["signup_date.max_age"].startswith("signup_date: newest value ")
    assert messages["signup_date.max_age"].endswith(" old, expected within 30 days")
    assert outcomes["age.nulls"]["details"][0].startswith("row with age null: customer_id=0")
    result.stdout.fnmatch_lines(["*age: 10.29% nulls (21 of 204 rows), expected <= 5%*"])


def test_churned_values_fail_when_a_value_is_outside(pytester: pytest.Pytester) -> None:
    write(customers().with_columns(pl.lit(2).alias("churned")), pytester.path / "t.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.train]
dataset = "t.parquet"
columns.churned = { values = [0, 1], min_share = "5%" }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "churned: 200 values outside [0, 1], e.g. 2",
        "churned: 2 classes below 5% of values (0 0%, 1 0%), expected >= 5% each",
    ])


FRAME_KINDS = ["pandas", "polars", "polars-lazy", "pyarrow", "duckdb", "dask"]


@pytest.mark.parametrize("kind", FRAME_KINDS)
@pytest.mark.parametrize("bad", [False, True], ids=["good", "bad"])
def test_frames_give_the_same_outcomes_as_parquet(pytester: pytest.Pytester, kind: str,
                                                  bad: bool) -> None:
    frame = customers(bad=bad)
    write(frame, pytester.path / "train.parquet")
    pytester.makeconftest(f"""
import polars as pl
import pytest

@pytest.fixture(scope="session")
def train_frame():
    frame = pl.read_parquet("train.parquet")
    kind = {kind!r}
    if kind == "pandas":
        return frame.to_pandas()
    if kind == "polars-lazy":
        return frame.lazy()
    if kind == "pyarrow":
        return frame.to_arrow()
    if kind == "duckdb":
        import duckdb
        return duckdb.from_arrow(frame.to_arrow())
    if kind == "dask":
        import dask.dataframe as dd
        return dd.from_pandas(frame.to_pandas(), npartitions=2)
    return frame
""")
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.data.file]
dataset = "train.parquet"
{CONSTRAINTS.replace('dtype = "int"', 'dtype = "int"')}
[tool.mlfunnel.data.frame]
dataset = {{ fixture = "train_frame" }}
{CONSTRAINTS}
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    data = json.loads((pytester.path / "report.json").read_text())
    by_check: dict[str, dict[str, str]] = {}
    for gate in data["gates"]:
        for c in gate["criteria"]:
            by_check.setdefault(c["check"], {})[c["id"].rsplit("::", 1)[1]] = c["status"]
    file_outcomes, frame_outcomes = by_check["file"], by_check["frame"]
    if kind in ("pandas", "dask") and bad:
        # pandas keeps an int column with nulls as float: same constraints, same verdicts
        assert frame_outcomes.pop("customer_id.dtype") == "passed"
        file_outcomes.pop("customer_id.dtype")
    assert frame_outcomes == file_outcomes
    assert result.ret == (1 if bad else 0)


@pytest.mark.xdist_matters  # one pass per table in every process, workers included
def test_one_aggregate_query_per_table_per_process(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   xdist_args: list[str]) -> None:
    write(customers(), pytester.path / "train.parquet")
    write(customers().head(150), pytester.path / "reviews.csv")
    log = pytester.path / "queries.log"
    monkeypatch.setenv("MLFUNNEL_QUERY_LOG", str(log))
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.sources]
train = "train.parquet"
reviews = "reviews.csv"

[tool.mlfunnel.data.train]
dataset = "train"
{CONSTRAINTS}
join = {{ dataset = "reviews", on = "customer_id", match = ">= 70%" }}
group_size = {{ by = "plan", median = ">= 60", min = ">= 60" }}

[tool.mlfunnel.data.train_again]
dataset = "train"
columns.age = {{ max = 200 }}

[tool.mlfunnel.data.reviews]
dataset = "reviews"
rows = ">= 100"
columns.age = {{ nulls = "== 0" }}
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", *xdist_args)
    result.assert_outcomes(passed=CRITERIA + 3 + 1 + 2)
    lines = [line.split("\t") for line in log.read_text().splitlines()]
    per_process: dict[tuple[str, str], list[str]] = {}
    for pid, purpose, source, _ in lines:
        per_process.setdefault((pid, source.split(" ")[0]), []).append(purpose)
    processes = {pid for pid, _ in per_process}
    if not xdist_args:
        assert len(processes) == 1
    for (_, source), purposes in per_process.items():
        # one aggregate pass per table and process; the join, the group sizes and the
        # duplicate rows add one query each; nothing else reads data when every criterion
        # passes ("bounds" reads the key's min/max from the Parquet footer for the exact
        # distinct count, a bitmap in the pass; "footers" reads null counts and bounds of
        # columns that cannot hold NaN from the same footers)
        assert purposes.count("aggregate") <= 1, (source, purposes)
        assert purposes.count("open") <= 1, (source, purposes)
        assert purposes.count("duplicate rows") <= 1, (source, purposes)
        assert set(purposes) <= {"open", "schema", "bounds", "footers", "aggregate",
                                 "join", "group sizes", "duplicate rows"}
        assert purposes.count("join") <= 1 and purposes.count("group sizes") <= 1
    aggregates = [p for p in lines if p[1] == "aggregate"]
    assert len(aggregates) == 2 if not xdist_args else len(aggregates) <= 2 * len(processes)
    assert {p[2].split(" ")[0] for p in aggregates} == {"train", "reviews"}


@pytest.mark.parametrize("other", ["\"reviews.parquet\"", "{ fixture = \"reviews\" }"])
def test_a_failed_join_names_keys_that_are_not_found(pytester: pytest.Pytester,
                                                      other: str) -> None:
    write(customers(), pytester.path / "train.parquet")
    reviews = customers().filter(pl.col("customer_id") >= 50)
    write(reviews, pytester.path / "reviews.parquet")
    pytester.makeconftest("""
import polars as pl
import pytest

@pytest.fixture(scope="session")
def reviews():
    return pl.scan_parquet("reviews.parquet")
""")
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.data.train]
dataset = "train.parquet"
join = {{ dataset = {other}, on = "customer_id", match = ">= 90%" }}
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["customer_id: 75% of rows (150 of 200) found in *, expected "
                                 ">= 90%; e.g. not found: *"])
    shown = result.stdout.str().split("e.g. not found: ")[1].splitlines()[0]
    assert all(int(k) < 50 for k in shown.split(", ")) and len(shown.split(", ")) == 5


@pytest.mark.parametrize("kind", ["polars-lazy", "pandas"])
def test_listed_values_are_read_as_the_column_type_on_files_and_frames(
        pytester: pytest.Pytester, kind: str) -> None:
    # "false" on a boolean column was True on a lazy frame (bool("false")), a date written as
    # text a polars error, and min_share counted every listed value that is not the column's
    # type as a class of 0% on every engine
    pl.DataFrame({
        "flag": [True, False, True], "n": [1, 2, 1],
        "day": [dt.date(2020, 1, 1), dt.date(2020, 1, 2), dt.date(2020, 1, 1)],
    }).write_parquet(pytester.path / "train.parquet")
    pytester.makeconftest(f"""
import polars as pl
import pytest

@pytest.fixture
def train_frame():
    frame = pl.read_parquet("train.parquet")
    return frame.lazy() if {kind!r} == "polars-lazy" else frame.to_pandas()
""")
    rules = """
columns.flag = { values = ["false", "true"], min_share = "10%" }
columns.n = { values = ["1", "2"], min_share = "10%" }
columns.day = { values = ["2020-01-01", "2020-01-32"], min_share = "10%" }

[tool.mlfunnel.data.SOURCE_typed]
dataset = DATASET
columns.flag = { values = [false, true], min_share = "10%" }
columns.n = { values = [1, 2, 3], min_share = "10%" }
columns.day = { values = ["2020-01-01", "2020-01-02"], min_share = "10%" }
"""
    file_rules = rules.replace("SOURCE", "file").replace("DATASET", '"train.parquet"')
    frame_rules = rules.replace("SOURCE", "frame").replace("DATASET",
                                                          '{ fixture = "train_frame" }')
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.data.file]
dataset = "train.parquet"
{file_rules}
[tool.mlfunnel.data.frame]
dataset = {{ fixture = "train_frame" }}
{frame_rules}
""")
    pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json", "report.json")
    found = report(pytester, depth=2)
    wrong_type = {
        "flag.values": ("error", "flag: 'false' is not a boolean, but flag is bool"),
        "flag.min_share": ("error", "flag: 'false' is not a boolean, but flag is bool"),
        "n.values": ("error", "n: '1' is not a number, but n is int"),
        "n.min_share": ("error", "n: '1' is not a number, but n is int"),
        "day.values": ("error", "day: '2020-01-32' is not a date, but day is date"),
        "day.min_share": ("error", "day: '2020-01-32' is not a date, but day is date"),
    }
    typed = {
        "flag.values": ("passed", "flag: every value in [False, True]"),
        "flag.min_share": ("passed", "flag: smallest class False has 33.33% of values, "
                                     "expected >= 10% each"),
        "n.values": ("passed", "n: every value in [1, 2, 3]"),
        "n.min_share": ("failed", "n: 1 class below 10% of values (3 0%), expected >= 10% "
                                  "each"),
        "day.values": ("passed", "day: every value in ['2020-01-01', '2020-01-02']"),
        "day.min_share": ("passed", "day: smallest class 2020-01-02 has 33.33% of values, "
                                    "expected >= 10% each"),
    }
    if kind == "pandas":  # pandas holds a date column as datetime64
        del wrong_type["day.values"], wrong_type["day.min_share"]
        del typed["day.values"], typed["day.min_share"]
    for source in ("file", "frame"):
        for check, expected in ((source, wrong_type), (f"{source}_typed", typed)):
            assert {rule: (found[f"{check}::{rule}"]["status"],
                           found[f"{check}::{rule}"]["message"]) for rule in expected
                    } == expected, check


def test_a_fixture_that_is_not_a_frame_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pytest

@pytest.fixture
def train():
    return {"rows": 3}
""")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.train]
dataset = { fixture = "train" }
rows = ">= 1"
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["fixture 'train' returned dict, not a data frame (pandas, "
                                 "polars, pyarrow, DuckDB, Dask, PySpark ...)"])


def test_k_reads_naturally(pytester: pytest.Pytester) -> None:
    write(customers(), pytester.path / "data/train.parquet")
    project(pytester, '"data/train.parquet"')
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--collect-only", "-q",
                                "-k", "age and nulls")
    result.stdout.fnmatch_lines(["pyproject.toml::data::train::age.nulls"])
    assert "age.min" not in result.stdout.str()


def test_bad_inputs_end_as_errors_and_the_run_goes_on(pytester: pytest.Pytester,
                                                      xdist_args: list[str]) -> None:
    write(customers(), pytester.path / "good.parquet")
    (pytester.path / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet at all")
    (pytester.path / "broken.csv").write_bytes(b"a,b\n1,2\n\x00\xff\xfe,\"unterminated\n3")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.missing]
dataset = "data/absent.parquet"
rows = ">= 1"

[tool.mlfunnel.data.corrupt]
dataset = "corrupt.parquet"
rows = ">= 1"

[tool.mlfunnel.data.unreadable]
dataset = "broken.csv"
rows = ">= 1"

[tool.mlfunnel.data.types]
dataset = "good.parquet"
columns.plan = { min = 0 }
columns.age = { min = "2020-01-01", max_age = "3 days" }
columns.nope = { nulls = "== 0" }

[tool.mlfunnel.data.fine]
dataset = "good.parquet"
rows = ">= 100"
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json", *xdist_args)
    result.assert_outcomes(passed=1, failed=7)
    outcomes = report(pytester, depth=2)
    assert "INTERNALERROR" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    statuses = {name: c["status"] for name, c in outcomes.items()}
    assert statuses == {
        "missing::rows": "error", "corrupt::rows": "error", "unreadable::rows": "error",
        "types::plan.min": "error", "types::age.min": "error", "types::age.max_age": "error",
        "types::nope.nulls": "error", "fine::rows": "passed"}
    messages = {name: c["message"] for name, c in outcomes.items()}
    assert messages["missing::rows"] == (
        f"data/absent.parquet: file not found (expected at {pytester.path}/data/absent.parquet;"
        " an earlier CI step should write it)")
    assert messages["corrupt::rows"].startswith("corrupt.parquet: cannot read as parquet: ")
    assert messages["unreadable::rows"].startswith("broken.csv: cannot read as csv: ")
    assert messages["types::plan.min"] == "plan: min 0 needs a numeric column, plan is string"
    assert messages["types::age.min"] == "age: min '2020-01-01' is a date, but age is int"
    assert messages["types::age.max_age"] == "age: max_age needs a timestamp column, age is int"
    assert messages["types::nope.nulls"] == (
        "nope: no such column in good.parquet (columns: customer_id, age, plan, churned, "
        "signup_date)")
    for message in messages.values():
        assert "\n" not in message


@pytest.mark.parametrize(("line", "expected"), [
    ('columns.age = { nulls = "about 5" }',
     "pyproject.toml: tool.mlfunnel.data.train.columns.age.nulls: not a valid expectation: "
     "'about 5'*"),
    ("columns.age = { median = 3 }",
     "pyproject.toml: tool.mlfunnel.data.train.columns.age.median: unknown key*"),
    ('columns.churned = { min_share = "lots" }',
     "pyproject.toml: tool.mlfunnel.data.train.columns.churned.min_share: not a share: 'lots'*"),
    ("columns.age = { min = 10, max = 5 }",
     "pyproject.toml: tool.mlfunnel.data.train.columns.age: min 10 is above max 5"),
    ('columns.age = { min = "yesterday" }',
     "pyproject.toml: tool.mlfunnel.data.train.columns.age.min: expected a number or an ISO "
     "date*"),
    ("columns.age = {}",
     "pyproject.toml: tool.mlfunnel.data.train.columns.age: no constraint: give nulls*"),
    ('columns.age = { dtype = "integer" }',
     "pyproject.toml: tool.mlfunnel.data.train.columns.age.dtype: *"),
    ('join = { dataset = "revews", on = "id", match = ">= 90%" }',
     "pyproject.toml: tool.mlfunnel.data.train.join.dataset: unknown source 'revews'*"),
    ('group_size = { by = "session_id" }',
     "pyproject.toml: tool.mlfunnel.data.train.group_size: give median, mean, min or max*"),
    ('columns.age = { max_age = "30" }',
     "pyproject.toml: tool.mlfunnel.data.train.columns.age.max_age: not a duration*"),
])
def test_config_mistakes_stop_the_run_naming_the_key(pytester: pytest.Pytester, line: str,
                                                     expected: str) -> None:
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.data.train]
dataset = "train.parquet"
{line}
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])


def test_sqlite_table_and_query_sources(pytester: pytest.Pytester) -> None:
    frame = customers(bad=True)
    with sqlite3.connect(pytester.path / "crm.db") as conn:
        conn.execute("CREATE TABLE customers (customer_id INTEGER, age INTEGER, plan TEXT, "
                     "churned INTEGER, signup_date DATETIME)")
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", [
            (r["customer_id"], r["age"], r["plan"], r["churned"],
             r["signup_date"].isoformat(sep=" ")) for r in frame.iter_rows(named=True)])
    pytester.makepyprojecttoml(f"""
[tool.mlfunnel.sources]
crm = {{ url = "sqlite:///crm.db", table = "customers" }}
active = {{ url = "sqlite:///crm.db", query = "select * from customers where churned = 0" }}

[tool.mlfunnel.data.crm]
dataset = "crm"
{CONSTRAINTS}

[tool.mlfunnel.data.active]
dataset = "active"
rows = ">= 199"
columns.age = {{ nulls = "<= 5%" }}
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(passed=6, failed=8)
    messages = {name: c["message"] for name, c in report(pytester, depth=2).items()}
    assert messages["crm::age.nulls"] == "age: 9.5% nulls (19 of 200 rows), expected <= 5%"
    assert messages["crm::plan.values"] == ("plan: 1 value outside ['basic', 'pro', 'team'], "
                                            "e.g. 'enterprise'")
    assert messages["active::rows"] == "rows 199, expected >= 199"


def test_a_query_ending_in_a_comment_or_a_semicolon_is_read_as_written(
        pytester: pytest.Pytester) -> None:
    # the query becomes a subquery: a trailing "-- comment" swallowed its closing parenthesis
    # ("SQL error: incomplete input"), and a ";" before one was left inside it
    with sqlite3.connect(pytester.path / "crm.db") as conn:
        conn.execute("CREATE TABLE calls (id INTEGER, note TEXT)")
        conn.executemany("INSERT INTO calls VALUES (?, ?)",
                         [(1, "a -- b"), (2, "c; /* d */"), (3, None)])
    pytester.makepyprojecttoml("""
[tool.mlfunnel.sources]
line = { url = "sqlite:///crm.db", query = "select * from calls -- every call" }
semi = { url = "sqlite:///crm.db", query = "select * from calls where id < 3; -- two" }
block = { url = "sqlite:///crm.db", query = '''
select * from calls  -- all of them
where note like '%--%' or note like '%;%' ;  /* the two with marks */
;
''' }

[tool.mlfunnel.data.line]
dataset = "line"
rows = "== 3"

[tool.mlfunnel.data.semi]
dataset = "semi"
rows = "== 2"

[tool.mlfunnel.data.block]
dataset = "block"
rows = "== 2"
columns.note = { values = ["a -- b", "c; /* d */"] }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(passed=4)
    messages = {name: c["message"] for name, c in report(pytester, depth=2).items()}
    assert messages == {"line::rows": "rows 3, expected == 3",
                        "semi::rows": "rows 2, expected == 2",
                        "block::rows": "rows 2, expected == 2",
                        "block::note.values": "note: every value in ['a -- b', 'c; /* d */']"}


def test_a_date_bound_against_text_or_a_year_beyond_9999_is_judged_not_a_type_error(
        pytester: pytest.Pytester) -> None:
    # SQLite keeps any text in a DATETIME column, and DuckDB hands back a date past year 9999
    # (or before year 1) as text: both ended with "TypeError: '<=' not supported between instances of 'str' and
    # 'datetime.datetime'"
    import duckdb

    with sqlite3.connect(pytester.path / "crm.db") as conn:
        conn.execute("CREATE TABLE visits (seen DATETIME)")
        conn.executemany("INSERT INTO visits VALUES (?)",
                         [("2020-01-01 10:00:00",), ("n/a",), ("2021-05-05 00:00:00",)])
    duckdb.sql("COPY (SELECT * FROM (VALUES (DATE '2020-01-01'), (DATE '20000-01-01'), "
               "(DATE '2019-05-05'), (DATE '0044-03-15 (BC)')) t(day)) "
               f"TO '{pytester.path / 'days.parquet'}' (FORMAT parquet)")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.visits]
dataset = { url = "sqlite:///crm.db", table = "visits" }
columns.seen = { min = "2000-01-01", max = "2030-01-01" }

[tool.mlfunnel.data.days]
dataset = "days.parquet"
columns.day = { min = "2000-01-01", max = "2030-01-01" }

[tool.mlfunnel.data.far]
dataset = "days.parquet"
columns.day = { max = "2100-01-01" }
""")
    pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json", "report.json")
    found = {name: (c["status"], c["message"]) for name, c in report(pytester, depth=2).items()}
    assert found == {
        "visits::seen.min": ("passed", "seen: min 2020-01-01 10:00:00, expected >= 2000-01-01"),
        "visits::seen.max": ("error", "seen: max needs dates, the largest value is 'n/a'"),
        "days::day.min": ("failed", "day: min '0044-03-15 (BC)', expected >= 2000-01-01; "
                                    "e.g. '0044-03-15 (BC)'"),
        "days::day.max": ("failed", "day: max '20000-01-01', expected <= 2030-01-01; "
                                    "e.g. '20000-01-01'"),
        "far::day.max": ("failed", "day: max '20000-01-01', expected <= 2100-01-01; "
                                   "e.g. '20000-01-01'"),
    }


@pytest.mark.postgres
def test_postgres_source_aggregates_in_the_database(pytester: pytest.Pytester,
                                                    postgres_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    frame = customers(bad=True)
    table = f"customers_{abs(hash(str(pytester.path))) % 10**8}"
    engine = sqlalchemy.create_engine(postgres_url.replace("postgresql://",
                                                           "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"CREATE TABLE {table} (customer_id BIGINT, age INTEGER, plan TEXT,"
                             " churned INTEGER, signup_date TIMESTAMP)")
        conn.execute(sqlalchemy.text(f"INSERT INTO {table} VALUES (:customer_id, :age, :plan, "
                                     ":churned, :signup_date)"), list(frame.iter_rows(named=True)))
    try:
        pytester.makepyprojecttoml(f"""
[tool.mlfunnel.sources]
crm = {{ url = "${{PG_URL}}", table = "{table}" }}

[tool.mlfunnel.data.crm]
dataset = "crm"
{CONSTRAINTS}
""")
        pytester._monkeypatch.setenv("PG_URL", postgres_url)  # type: ignore[attr-defined]
        result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                    "report.json")
        result.assert_outcomes(passed=5, failed=CRITERIA - 5)
        messages = {n: c["message"] for n, c in report(pytester).items()}
        assert messages["age.nulls"] == "age: 9.5% nulls (19 of 200 rows), expected <= 5%"
        assert messages["customer_id.unique"].startswith("customer_id: 3 repeated values")
        assert "s3cret" not in result.stdout.str()
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        engine.dispose()


def test_globs_gzip_tsv_jsonl_and_reader_options(pytester: pytest.Pytester) -> None:
    import gzip

    frame = customers()
    write(frame.head(120), pytester.path / "live/part-1.parquet")
    write(frame.tail(80), pytester.path / "live/part-2.parquet")
    frame.write_csv(pytester.path / "t.tsv", separator="\t")
    frame.write_ndjson(pytester.path / "t.jsonl")
    with gzip.open(pytester.path / "t.csv.gz", "wb") as handle:
        frame.write_csv(handle)
    frame.write_csv(pytester.path / "semi.txt", separator=";")
    checks = ""
    for name, source in [("glob", '"live/*.parquet"'), ("tsv", '"t.tsv"'),
                         ("jsonl", '"t.jsonl"'), ("gz", '"t.csv.gz"'),
                         ("semi", '{ path = "semi.txt", format = "csv", options = { delim = ";" } }')]:
        checks += f"""
[tool.mlfunnel.data.{name}]
dataset = {source}
rows = "== {N}"
columns.plan = {{ values = ["basic", "pro", "team"] }}
columns.customer_id = {{ unique = true }}
"""
    checks += """
[tool.mlfunnel.data.nothing]
dataset = "missing/*.parquet"
rows = ">= 1"
"""
    pytester.makepyprojecttoml(checks)
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(passed=15, failed=1)
    assert report(pytester, depth=2)["nothing::rows"]["message"] == (
        "missing/*.parquet: no file matches missing/*.parquet")


def test_a_csv_in_another_encoding_says_why_and_which_option_reads_it(
        pytester: pytest.Pytester) -> None:
    """DuckDB's CSV error says where on its first line and why on a later one: the message
    gives both (never the row's content), and the option it names reads the file."""
    rows = "".join(f"{i};{['Zürich', 'Genève', 'Bern'][i % 3]}\n" for i in range(300))
    (pytester.path / "cities.csv").write_bytes(("id;city\n" + rows).encode("latin-1"))
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.cities]
dataset = "cities.csv"
rows = ">= 300"
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(failed=1)
    data = json.loads((pytester.path / "report.json").read_text())
    (message,) = [c["message"] for g in data["gates"] for c in g["criteria"]]
    assert message == (
        "cities.csv: cannot read as csv: Invalid Input Error: CSV Error on Line: 2: Invalid "
        "unicode (byte sequence mismatch) detected. This file is not utf-8 encoded. "
        '(options = { encoding = "latin-1" } on the source reads another encoding)')
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.cities]
dataset = { path = "cities.csv", options = { encoding = "latin-1" } }
rows = ">= 300"
""")
    pytester.runpytest("--funnel", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_nan_key_in_the_other_engine_is_left_out_of_a_join_like_a_null(
        pytester: pytest.Pytester) -> None:
    # the Parquet side's keys go into SQLite as literal rows, and a NaN key ended the join
    # with "join: nan is not a number"; two Parquet files (one engine) matched NaN with NaN
    pl.DataFrame({"k": [1.0, float("nan"), 2.0, None]}).write_parquet(pytester.path / "o.parquet")
    pl.DataFrame({"k": [1.0, float("nan"), 3.0]}).write_parquet(pytester.path / "left.parquet")
    with sqlite3.connect(pytester.path / "crm.db") as conn:
        conn.execute("CREATE TABLE orders (k REAL)")
        conn.executemany("INSERT INTO orders VALUES (?)",
                         [(1.0,), (2.0,), (2.0,), (3.0,), (None,), (4.0,)])
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.orders]
dataset = { url = "sqlite:///crm.db", table = "orders" }
join = { dataset = "o.parquet", on = "k", match = ">= 90%" }

[tool.mlfunnel.data.back]
dataset = "o.parquet"
join = { dataset = { url = "sqlite:///crm.db", table = "orders" }, on = "k", match = ">= 40%" }

[tool.mlfunnel.data.left]
dataset = "left.parquet"
join = { dataset = "o.parquet", on = "k", match = ">= 90%" }
""")
    pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json", "report.json")
    found = {name: (c["status"], c["message"]) for name, c in report(pytester, depth=2).items()}
    assert found == {
        "orders::join": ("failed", "k: 50% of rows (3 of 6) found in o.parquet, expected >= 90%; "
                                   "e.g. not found: 3, 4"),
        "back::join": ("passed", "k: 50% of rows (2 of 4) found in sqlite:///crm.db table "
                                 "orders, expected >= 40%"),
        "left::join": ("failed", "k: 33.33% of rows (1 of 3) found in o.parquet, expected "
                                 ">= 90%; e.g. not found: 3"),
    }


def test_one_file_read_with_other_reader_options_is_read_again_not_shared(
        pytester: pytest.Pytester) -> None:
    """The same file as two sources, one with reader options: each check sees its own
    reading (with ``header = false`` the header line is a row)."""
    (pytester.path / "t.csv").write_text("id,plan\n1,basic\n2,pro\n3,team\n")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.plain]
dataset = "t.csv"
rows = "== 3"

[tool.mlfunnel.data.raw]
dataset = { path = "t.csv", options = { header = false } }
rows = "== 4"
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    result.assert_outcomes(passed=2)
    assert report(pytester, depth=2)["raw::rows"]["message"] == "rows 4, expected == 4"


def test_one_repeat_reads_in_the_singular_and_a_huge_bound_in_exponent_form(
        pytester: pytest.Pytester) -> None:
    """1e308 was shown with all its 309 digits; one repeat read '1 repeated values'."""
    pl.DataFrame({"id": [1, 2, 2], "amount": [1.5, -3.0, 1e308]}).write_parquet(
        pytester.path / "d.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.train]
dataset = "d.parquet"
columns.id = { unique = true, values = [1] }
columns.amount = { max = 1e300 }
""")
    pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json", "report.json")
    messages = {name: c["message"] for name, c in report(pytester).items()}
    assert messages == {
        "id.unique": "id: 1 repeated value (2 distinct among 3 non-null), expected unique; "
                     "e.g. 2",
        "id.values": "id: 2 values outside [1], e.g. 2",
        "amount.max": "amount: max 1e+308, expected <= 1e+300; e.g. 1e+308"}


def test_a_csv_with_a_header_alone_has_no_values_to_bound_not_text_columns(
        pytester: pytest.Pytester) -> None:
    """A header alone reads every column as text; a range on it said 'amount is string'
    where an empty Parquet file of the same columns passes with no values."""
    (pytester.path / "data.csv").write_text("id,amount,plan\n")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.train]
dataset = "data.csv"
rows = ">= 1"
columns.amount = { min = 0, max = 100 }
columns.plan = { values = ["a", "b"] }
""")
    result = pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json",
                                "report.json")
    found = {name: (c["status"], c["message"]) for name, c in report(pytester).items()}
    assert found == {
        "rows": ("failed", "rows 0, expected >= 1"),
        "amount.min": ("passed", "amount: no values (data.csv has no rows)"),
        "amount.max": ("passed", "amount: no values (data.csv has no rows)"),
        "plan.values": ("passed", "plan: every value in ['a', 'b']")}
    assert result.ret == 1


def test_a_csv_column_of_yes_and_no_is_the_text_the_file_holds(
        pytester: pytest.Pytester) -> None:
    """DuckDB's CSV sniffer reads yes/no and t/f as booleans, so listing the file's own text
    was an error ("'yes' is not a boolean, but answered is bool"); pandas and polars read
    only true/false as booleans, and so does the funnel now. A column the source's `types`
    names keeps the type given."""
    rows = "".join(f"{i},{['yes', 'no', 'yes'][i % 3]},{['true', 'FALSE', 'True'][i % 3]},"
                   f"{'tf'[i % 2]},{['yes', 'no'][i % 2]}\n" for i in range(30))
    (pytester.path / "survey.csv").write_text("id,answered,flag,tf,typed\n" + rows)
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.survey]
dataset = "survey.csv"
columns.answered = { values = ["yes", "no"], min_share = "30%" }
columns.flag = { values = [true, false] }
columns.tf = { values = ["t"] }

[tool.mlfunnel.data.typed]
dataset = { path = "survey.csv", options = { types = { typed = "BOOLEAN" } } }
columns.typed = { values = [true] }
columns.tf = { dtype = "string" }
""")
    pytester.runpytest("--funnel", "-p", "no:cacheprovider", "--funnel-json", "report.json")
    found = {name: (c["status"], c["message"]) for name, c in report(pytester, depth=2).items()}
    assert found == {
        "survey::answered.values": ("passed", "answered: every value in ['yes', 'no']"),
        "survey::answered.min_share": ("passed", "answered: smallest class 'no' has 33.33% "
                                                 "of values, expected >= 30% each"),
        "survey::flag.values": ("passed", "flag: every value in [True, False]"),
        "survey::tf.values": ("failed", "tf: 15 values outside ['t'], e.g. 'f'"),
        "typed::typed.values": ("failed", "typed: 15 values outside [True], e.g. False"),
        "typed::tf.dtype": ("passed", "tf: dtype string, expected string")}


def test_a_date_column_against_a_bound_with_a_time_of_day_and_a_newest_value_ahead_of_the_clock(
        pytester: pytest.Pytester) -> None:
    """A day is that day at 00:00: 2026-01-01 is below min 2026-01-01T10:00 (the time was cut
    off, and the min passed). A newest value days ahead of the clock was said to be '0 ms old'
    and passed any max_age: it fails, saying how far ahead it is."""
    ahead = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=3)
    pl.DataFrame({"day": [dt.date(2026, 1, 1), dt.date(2026, 1, 2)],
                  "seen": [ahead, ahead - dt.timedelta(days=5)]}).write_parquet(
        pytester.path / "days.parquet")
    pytester.makepyprojecttoml("""
[tool.mlfunnel.data.days]
dataset = "days.parquet"
columns.day = { min = "2026-01-01T10:00", max = "2026-01-02T10:00" }
columns.seen = { max_age = "1 day" }

[tool.mlfunnel.data.early]
dataset = "days.parquet"
columns.day = { max = "2026-01-01T10:00", min = "2026-01-01T00:00" }
""")
    pytester.runpytest("--funnel", "-p", "no:cacheprovider", "-p", "no:xdist",
                       "--funnel-json", "report.json")
    outcomes = report(pytester, depth=2)
    statuses = {name: c["status"] for name, c in outcomes.items()}
    assert statuses == {"days::day.min": "failed", "days::day.max": "passed",
                        "days::seen.max_age": "failed", "early::day.max": "failed",
                        "early::day.min": "passed"}
    assert outcomes["days::day.min"]["message"] == (
        "day: min 2026-01-01, expected >= 2026-01-01T10:00; e.g. 2026-01-01")
    assert outcomes["early::day.max"]["message"] == (
        "day: max 2026-01-02, expected <= 2026-01-01T10:00; e.g. 2026-01-02")
    message = outcomes["days::seen.max_age"]["message"]
    assert message.startswith(f"seen: newest value {ahead.isoformat(' ')} is 3 days ahead of "
                              "the clock (")
    assert message.endswith("), expected within 1 days: a clock or time zone is off")

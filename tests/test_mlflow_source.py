"""MLflow as a source: real runs logged with mlflow into a SQLite store and a folder store.

The funnel runs in a subprocess (``runpytest_subprocess``) so MLflow and its C extensions are
imported by the run that reads them, as in a user's CI, and never twice in this process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_mlfunnel.sources.mlflow_spec import MLFLOW_KEYS, RUN_KEYS

if importlib.util.find_spec("mlflow") is None:
    if os.environ.get("CI"):
        pytest.fail("mlflow is not installed: the test extra brings it", pytrace=False)
    pytest.skip("mlflow is not installed: pip install -e '.[test]'", allow_module_level=True)

LOG_RUNS = r"""
import json, os, sys, time
import mlflow
from mlflow import MlflowClient

uri = sys.argv[1]
mlflow.set_tracking_uri(uri)
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
experiment = client.create_experiment("churn")
ids = {}
for name, status, f1, depth in [("old", "FINISHED", 0.80, 8), ("new", "FINISHED", 0.86, 10),
                                 ("broken", "FAILED", 0.99, 30)]:
    run = client.create_run(experiment, run_name=name, tags={"team": "growth"})
    client.log_metric(run.info.run_id, "f1", f1)
    client.log_metric(run.info.run_id, "val/auc", 0.9)
    client.log_param(run.info.run_id, "max_depth", depth)
    client.set_terminated(run.info.run_id, status=status)
    ids[name] = run.info.run_id
    time.sleep(0.02)  # distinct start times: "latest" is well defined
client.create_experiment("pricing")
if not uri.startswith("file:"):
    client.create_registered_model("churn")
    for run_id in (ids["old"], ids["new"]):
        client.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("churn", "production", "1")
print(json.dumps(ids))
"""


def log_runs(uri: str, cwd: Path) -> dict[str, str]:
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    done = subprocess.run([sys.executable, "-c", LOG_RUNS, uri], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    ids: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path,
                                                                dict[str, str]]:
    """A SQLite store and a folder store, each with runs old, new (finished) and broken."""
    where = tmp_path_factory.mktemp("mlflow")
    sqlite_ids = log_runs("sqlite:///mlflow.db", where)
    file_ids = log_runs("file:./mlruns", where)
    return where / "mlflow.db", sqlite_ids, where / "mlruns", file_ids


@pytest.fixture
def project(pytester: pytest.Pytester, stores: tuple[Path, dict[str, str], Path,
                                                     dict[str, str]]) -> dict[str, str]:
    """The test's project folder holds mlflow.db and mlruns/; the run ids by name."""
    database, sqlite_ids, folder, file_ids = stores
    shutil.copy(database, pytester.path / "mlflow.db")
    shutil.copytree(folder, pytester.path / "mlruns")
    return {**sqlite_ids, **{f"file_{k}": v for k, v in file_ids.items()}}


def funnel(pytester: pytest.Pytester, config: str, *args: str,
           env: dict[str, str] | None = None) -> pytest.RunResult:
    pytester.makepyprojecttoml(config)
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        return pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", *args,
                                             timeout=240)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def criteria(pytester: pytest.Pytester, report: str = "r.json") -> dict[str, dict[str, object]]:
    data = json.loads((pytester.path / report).read_text())
    return {c["id"].split("::", 1)[1]: c for g in data["gates"] for c in g["criteria"]}


def test_the_latest_finished_run_beats_the_production_model(
        pytester: pytest.Pytester, project: dict[str, str]) -> None:
    result = funnel(pytester, """
        [tool.mlfunnel]
        funnel = ["model"]
        require = "model"

        [tool.mlfunnel.sources]
        candidate = { mlflow = "sqlite:///mlflow.db", experiment = "churn", run = "latest" }
        production = { mlflow = "sqlite:///mlflow.db", model = "churn", alias = "production" }

        [tool.mlfunnel.model.quality]
        metrics = "candidate"
        baseline = "production"
        expect = { f1 = ">= baseline + 0.05", "params.max_depth" = "<= 12", "val/auc" = ">= 0.9" }
        """, "--funnel-json=r.json", "-n", "2")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    found = criteria(pytester)
    f1 = found["model::quality::f1"]
    assert f1["observed"] == 0.86
    assert f1["message"] == "f1 0.86, expected >= 0.85 (baseline + 0.05, baseline 0.8)"
    assert f1["extra"]["source"] == {  # type: ignore[index]
        "mlflow_run": project["new"], "uri": "sqlite:///mlflow.db",
        "selected_by": "experiment churn, latest finished run"}
    assert f1["extra"]["baseline_source"] == {  # type: ignore[index]
        "mlflow_run": project["old"], "uri": "sqlite:///mlflow.db",
        "selected_by": "model churn@production = version 1"}
    assert found["model::quality::params.max_depth"]["observed"] == 10


def test_a_failing_metric_names_the_run_and_the_store(
        pytester: pytest.Pytester, project: dict[str, str]) -> None:
    result = funnel(pytester, """
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.model.quality]
        metrics = { mlflow = "sqlite:///mlflow.db", model = "churn", version = 2 }
        expect = { f1 = ">= 0.9", "tags.team" = "== 1", recall = ">= 0.5" }
        """)
    result.assert_outcomes(failed=3)
    origin = (f"MLflow run {project['new']} (model churn version 2; sqlite:///mlflow.db)")
    result.stdout.fnmatch_lines([
        "f1 0.86, expected >= 0.9",
        f"    source: {origin}",
        f"tags.team in {origin} is 'growth', not a number",
        f"recall: no such metric in {origin} (metrics there: f1, val/auc, params.max_depth, "
        "tags.team)",
    ])


@pytest.mark.parametrize("run", [
    '{ filter = "params.max_depth = \'8\'" }',
    '{ order_by = "metrics.f1 ASC" }',
    '{ filter = "metrics.f1 > 0.5", order_by = ["metrics.f1 DESC"] }',
    "RUN_ID",
])
def test_a_run_is_chosen_by_search_or_by_id(pytester: pytest.Pytester, project: dict[str, str],
                                            run: str) -> None:
    wanted = {"RUN_ID": "new"}.get(run, "broken" if "DESC" in run else "old")
    run = run.replace("RUN_ID", f'"{project[wanted]}"')
    funnel(pytester, f"""
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.model.quality]
        metrics = {{ mlflow = "sqlite:///mlflow.db", experiment = "churn", run = {run} }}
        expect = {{ f1 = ">= 0" }}
        """, "--funnel-json=r.json").assert_outcomes(passed=1)
    source = criteria(pytester)["model::quality::f1"]["extra"]["source"]  # type: ignore[index]
    assert source["mlflow_run"] == project[wanted]


def test_a_folder_store_is_read_like_a_database(pytester: pytest.Pytester,
                                                project: dict[str, str]) -> None:
    funnel(pytester, """
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.sources]
        folder = { mlflow = "./mlruns", experiment = "churn" }
        file_uri = { mlflow = "file:mlruns", experiment = "churn", run = "latest" }

        [tool.mlfunnel.model.folder]
        metrics = "folder"
        expect = { f1 = ">= 0.85" }

        [tool.mlfunnel.model.file_uri]
        metrics = "file_uri"
        expect = { f1 = ">= 0.85" }
        """, "--funnel-json=r.json").assert_outcomes(passed=2)
    found = criteria(pytester)
    assert found["model::folder::f1"]["extra"]["source"]["mlflow_run"] == (  # type: ignore[index]
        project["file_new"])
    assert found["model::file_uri::f1"]["extra"]["source"]["uri"] == "file:mlruns"  # type: ignore[index]


def test_what_is_missing_is_an_error_that_lists_what_exists(
        pytester: pytest.Pytester, project: dict[str, str]) -> None:
    checks = {
        "experiment": 'experiment = "chrun"',
        "alias": 'model = "churn", alias = "prod"',
        "model": 'model = "chrun", alias = "production"',
        "version": 'model = "churn", version = 7',
        "run_id": 'experiment = "churn", run = "0123456789abcdef0123456789abcdef"',
        "filter": 'experiment = "churn", run = { filter = "params.max_depth = \'99\'" }',
        "no_finished": 'experiment = "pricing"',
        "bad_filter": 'experiment = "churn", run = { filter = "f1 >>> 2" }',
    }
    config = '[tool.mlfunnel]\nfunnel = ["model"]\n' + "".join(
        f'\n[tool.mlfunnel.model.{name}]\nmetrics = {{ mlflow = "sqlite:///mlflow.db", {keys} }}'
        f'\nexpect = {{ f1 = ">= 0.5" }}\n' for name, keys in checks.items())
    result = funnel(pytester, config, "--funnel-json=r.json")
    result.assert_outcomes(failed=len(checks))
    messages = {key.split("::")[1]: c["message"] for key, c in criteria(pytester).items()}
    where = "mlflow sqlite:///mlflow.db"
    newest = ", ".join(f"{project[n]} ({s})" for n, s in
                       [("broken", "failed"), ("new", "finished"), ("old", "finished")])
    assert messages["experiment"] == (f"{where} experiment chrun, latest finished run: no "
                                      "experiment 'chrun' (experiments there: pricing, churn, "
                                      "Default)")
    assert messages["alias"] == (f"{where} model churn@prod: model 'churn' has no alias 'prod' "
                                 "(aliases: production -> version 1)")
    assert messages["model"] == (f"{where} model chrun@production: no registered model "
                                 "'chrun' (registered models: churn)")
    assert messages["version"] == (f"{where} model churn version 7: model 'churn' has no "
                                   "version 7 (versions: 1, 2)")
    assert messages["run_id"] == (f"{where} run 0123456789abcdef0123456789abcdef: no run "
                                  "'0123456789abcdef0123456789abcdef' in experiment 'churn' "
                                  f"(newest runs there: {newest})")
    assert messages["filter"] == (f"{where} experiment churn, first run where params.max_depth "
                                  "= '99': no run of experiment 'churn' matches filter "
                                  f"\"params.max_depth = '99'\" (newest runs there: {newest})")
    assert messages["no_finished"] == (f"{where} experiment pricing, latest finished run: no "
                                       "finished run in experiment 'pricing' (newest runs "
                                       "there: none)")
    assert messages["bad_filter"].startswith(f"{where} experiment churn, first run where f1 "
                                             ">>> 2: ")
    assert "Invalid" in messages["bad_filter"] or "invalid" in messages["bad_filter"]


LOG_DELETED = r"""
import json, sys
from mlflow import MlflowClient

uri = sys.argv[1]
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
ids = {}
for experiment_name, run_name in [("retired", "old"), ("churn", "discarded")]:
    experiment = client.create_experiment(experiment_name)
    run = client.create_run(experiment, run_name=run_name)
    client.log_metric(run.info.run_id, "f1", 0.9)
    client.set_terminated(run.info.run_id, status="FINISHED")
    ids[run_name] = run.info.run_id
if not uri.startswith("file:"):
    client.create_registered_model("churn")
    client.create_model_version("churn", f"runs:/{ids['discarded']}/model",
                                run_id=ids["discarded"])
client.delete_experiment(client.get_experiment_by_name("retired").experiment_id)
client.delete_run(ids["discarded"])
print(json.dumps(ids))
"""


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "file:./mlruns"])
def test_a_deleted_run_or_experiment_is_an_error_not_evidence(pytester: pytest.Pytester,
                                                              uri: str) -> None:
    """MLflow keeps what was deleted in its trash until 'mlflow gc', and get_run still answers
    it: a run someone threw away must not pass a gate."""
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    done = subprocess.run([sys.executable, "-c", LOG_DELETED, uri], cwd=pytester.path,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    old, discarded = ids["old"], ids["discarded"]
    checks = {
        "experiment": 'experiment = "retired"',
        "in_deleted_experiment": f'run = "{old}"',
        "run": f'run = "{discarded}"',
    }
    if uri.startswith("sqlite"):
        checks["model"] = 'model = "churn", version = 1'
    config = '[tool.mlfunnel]\nfunnel = ["model"]\n' + "".join(
        f'\n[tool.mlfunnel.model.{name}]\nmetrics = {{ mlflow = "{uri}", {keys} }}'
        f'\nexpect = {{ f1 = ">= 0.5" }}\n' for name, keys in checks.items())
    result = funnel(pytester, config, "--funnel-json=r.json")
    result.assert_outcomes(failed=len(checks))
    messages = {key.split("::")[1]: c["message"] for key, c in criteria(pytester).items()}
    where = f"mlflow {uri}"
    restore_run = "(restore it with 'mlflow runs restore', or choose another run)"
    expected = {
        "experiment": f"{where} experiment retired, latest finished run: experiment 'retired' "
                      "is deleted (restore it with 'mlflow experiments restore', or name "
                      "another: experiments there: churn, Default)",
        # deleting an experiment puts its runs in the trash too
        "in_deleted_experiment": f"{where} run {old}: run {old} is deleted {restore_run}",
        "run": f"{where} run {discarded}: run {discarded} is deleted {restore_run}",
    }
    if uri.startswith("sqlite"):
        expected["model"] = (f"{where} model churn version 1: run {discarded} is deleted "
                             f"{restore_run}")
    assert messages == expected


def test_a_missing_or_foreign_database_is_an_error_and_is_not_created(
        pytester: pytest.Pytester) -> None:
    import sqlite3

    with sqlite3.connect(pytester.path / "usage.db") as connection:
        connection.execute("create table calls (id integer)")
    result = funnel(pytester, """
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.model.missing]
        metrics = { mlflow = "sqlite:///ml/flow.db", experiment = "churn" }
        expect = { f1 = ">= 0.5" }

        [tool.mlfunnel.model.foreign]
        metrics = { mlflow = "sqlite:///usage.db", experiment = "churn" }
        expect = { f1 = ">= 0.5" }

        [tool.mlfunnel.model.folder]
        metrics = { mlflow = "./nowhere", experiment = "churn" }
        expect = { f1 = ">= 0.5" }
        """)
    result.assert_outcomes(failed=3)
    root = pytester.path
    result.stdout.fnmatch_lines_random([
        "mlflow sqlite:///ml/flow.db experiment churn, latest finished run: database file not "
        f"found (expected at {root / 'ml' / 'flow.db'}; an earlier CI step should log the runs)",
        f"mlflow sqlite:///usage.db experiment churn, latest finished run: {root / 'usage.db'} "
        "is not an MLflow database (it has no experiments table)",
        "mlflow ./nowhere experiment churn, latest finished run: no MLflow store at "
        f"{root / 'nowhere'} (folder not found; an earlier CI step should log the runs)",
    ])
    assert not (root / "ml").exists()
    with sqlite3.connect(root / "usage.db") as connection:
        tables = connection.execute("select name from sqlite_master").fetchall()
    assert tables == [("calls",)]


def nobody_listens() -> int:
    """A port of 127.0.0.1 that was free a moment ago: connecting to it is refused."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port: int = closed.getsockname()[1]
    closed.close()
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A real socket on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()
    server.close()


def test_an_unreachable_tracking_server_errors_in_bounded_time_with_the_password_masked(
        pytester: pytest.Pytester, silent_server: int) -> None:
    closed_port = nobody_listens()
    started = time.monotonic()
    result = funnel(pytester, f"""
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.model.refused]
        metrics = {{ mlflow = "http://ci:s3cret-pw@127.0.0.1:{closed_port}", experiment = "churn" }}
        expect = {{ f1 = ">= 0.5" }}

        [tool.mlfunnel.model.silent]
        metrics = {{ mlflow = "http://127.0.0.1:{silent_server}", experiment = "churn" }}
        expect = {{ f1 = ">= 0.5" }}
        """, "--funnel-json=r.json", env={"MLFLOW_HTTP_REQUEST_TIMEOUT": "2"})
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random([
        f"mlflow http://***:***@127.0.0.1:{closed_port} experiment churn, latest finished run: "
        "cannot reach the MLflow tracking server (connection refused; waited at most 2 s, "
        "MLFLOW_HTTP_REQUEST_TIMEOUT changes it)",
        f"mlflow http://127.0.0.1:{silent_server} experiment churn, latest finished run: "
        "cannot reach the MLflow tracking server (timed out; *",
    ])
    assert "s3cret-pw" not in result.stdout.str() + (pytester.path / "r.json").read_text()
    assert elapsed < 60, f"took {elapsed:.0f} s"


def test_an_unreachable_tracking_database_errors_in_seconds_without_mlflows_retries(
        pytester: pytest.Pytester, silent_server: int) -> None:
    # MLflow retries a database it cannot open nine times with a growing pause (about 100 s)
    # and the message spoke of an HTTP timeout; a silent database host waited on TCP
    closed_port = nobody_listens()
    started = time.monotonic()
    result = funnel(pytester, f"""
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.model.refused]
        metrics = {{ mlflow = "postgresql://ci:s3cret-pw@127.0.0.1:{closed_port}/mlflow", experiment = "churn" }}
        expect = {{ f1 = ">= 0.5" }}

        [tool.mlfunnel.model.silent]
        metrics = {{ mlflow = "postgresql+psycopg://127.0.0.1:{silent_server}/mlflow?password=s3cret-pw", experiment = "churn" }}
        expect = {{ f1 = ">= 0.5" }}
        """, "--funnel-json=r.json")
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random([
        f"mlflow postgresql://***:***@127.0.0.1:{closed_port}/mlflow experiment churn, latest "
        "finished run: cannot connect to the tracking database (connection failed: connection "
        f"to server at \"127.0.0.1\", port {closed_port} failed: Connection refused; waited at "
        "most 10 s)",
        f"mlflow postgresql+psycopg://127.0.0.1:{silent_server}/mlflow?password=*** experiment "
        "churn, latest finished run: cannot connect to the tracking database (*timeout*; "
        "waited at most 10 s)",
    ])
    assert "s3cret-pw" not in result.stdout.str() + (pytester.path / "r.json").read_text()
    assert elapsed < 60, f"took {elapsed:.0f} s"


def test_bad_mlflow_sources_are_config_errors_with_key_paths(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.sources]
        both = { mlflow = "sqlite:///mlflow.db", model = "churn", run = "latest", alias = "p" }
        typo = { mlflow = "sqlite:///mlflow.db", experimnet = "churn" }
        order = { mlflow = "sqlite:///mlflow.db", experiment = "churn", run = { order_by = 3 } }
        search = { mlflow = "sqlite:///mlflow.db", experiment = "churn", run = { sort = "x" } }
        orderby = { mlflow = "sqlite:///mlflow.db", experiment = "churn", run = { orderby = "x" } }
        version = { mlflow = "sqlite:///mlflow.db", model = "churn", version = "three" }
        alias = { mlflow = "sqlite:///mlflow.db", experiment = "churn", alias = "production" }
        nothing = { mlflow = "sqlite:///mlflow.db" }
        uri = { mlflow = 5, experiment = "churn" }
        two = { mlflow = "sqlite:///mlflow.db", model = "churn", alias = "p", version = 1 }

        [tool.mlfunnel.model.quality]
        metrics = { mlflow = "./mlruns", run = "latest" }
        expect = { f1 = ">= 0.5" }
        """)
    result = pytester.runpytest("--funnel")
    assert result.ret == 4
    prefix = "ERROR: pyproject.toml: tool.mlfunnel"
    result.stderr.fnmatch_lines([
        f"{prefix}.sources.both.run: give either model (a registered model's run) or run, not "
        "both",
        f"{prefix}.sources.typo.experimnet: unknown key in an mlflow source (allowed: mlflow, "
        "experiment, run, model, alias, version, description); did you mean 'experiment'?",
        f"{prefix}.sources.order.run.order_by: expected a string or a list of strings such as "
        "\"metrics.f1 DESC\", got 3",
        f"{prefix}.sources.search.run.sort: unknown key in a run search (allowed: filter, "
        "order_by)",
        f"{prefix}.sources.orderby.run.orderby: unknown key in a run search (allowed: filter, "
        "order_by); did you mean 'order_by'?",
        f"{prefix}.sources.version.version: expected a version number such as 3, got 'three'",
        f"{prefix}.sources.alias.alias: alias selects a version of a registered model: give "
        "model too",
        f"{prefix}.sources.nothing: an mlflow source needs experiment (with run = \"latest\", a "
        "run id or { filter, order_by }), run = \"<run id>\", or model (with alias or version)",
        f"{prefix}.sources.uri.mlflow: expected a tracking URI such as \"sqlite:///mlflow.db\", "
        "\"./mlruns\" or \"http://mlflow.internal:5000\", got 5",
        f"{prefix}.sources.two: a registered model needs exactly one of alias (\"production\") "
        "or version (3), not both",
        f"{prefix}.model.quality.metrics: run: run = \"latest\" needs the experiment to look in",
    ], consecutive=False)
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_mlflow_is_imported_only_when_an_mlflow_source_is_read(
        pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.model.quality]
        metrics = { mlflow = "sqlite:///mlflow.db", experiment = "churn" }
        expect = { f1 = ">= 0.5" }
        """)
    code = ("import sys, pytest; code = pytest.main(['--funnel', '--collect-only', '-q', "
            "'-p', 'no:cacheprovider']); print('MLFLOW-LOADED', 'mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=pytester.path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert "pyproject.toml::model::quality::f1" in done.stdout
    assert done.stdout.strip().endswith("MLFLOW-LOADED False")


def test_without_the_extra_the_criterion_says_what_to_install(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.model.quality]
        metrics = { mlflow = "sqlite:///mlflow.db", experiment = "churn" }
        expect = { f1 = ">= 0.5" }
        """)
    # sys.modules[name] = None is how Python spells "this module cannot be imported"
    code = ("import sys; sys.modules['mlflow'] = None; import pytest; "
            "sys.exit(pytest.main(['--funnel', '-p', 'no:cacheprovider']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=pytester.path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert ("mlflow sqlite:///mlflow.db experiment churn, latest finished run: reading MLflow "
            "needs the mlflow extra (pip install 'pytest-mlfunnel[mlflow]'): import of mlflow "
            "halted; None in sys.modules") in done.stdout


def test_an_mlflow_source_is_not_a_table(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("""
        [tool.mlfunnel]
        funnel = ["data"]

        [tool.mlfunnel.data.train]
        dataset = { mlflow = "sqlite:///mlflow.db", experiment = "churn" }
        rows = ">= 1"
        """)
    result = pytester.runpytest("--funnel")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mlflow sqlite:///mlflow.db experiment churn, latest finished "
                                 "run: an MLflow source holds a run's metrics, params and tags, "
                                 "not a table: read it with a metrics check*"])


def test_every_mlflow_key_is_in_the_reference() -> None:
    reference = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
                 ).read_text()
    missing = [k for k in (*MLFLOW_KEYS, *RUN_KEYS) if f"`{k}`" not in reference]
    assert not missing


@pytest.fixture(scope="session")
def tracking_server(stores: tuple[Path, dict[str, str], Path, dict[str, str]],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 over a copy of the SQLite store; its URL."""
    where = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(stores[0], where / "mlflow.db")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (where / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{where / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        cwd=where, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                tail = (where / "server.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"mlflow server did not start (exit {server.poll()}):\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
        log.close()


def test_runs_are_read_from_a_tracking_server(pytester: pytest.Pytester,
                                              stores: tuple[Path, dict[str, str], Path,
                                                            dict[str, str]],
                                              tracking_server: str) -> None:
    ids = stores[1]
    funnel(pytester, f"""
        [tool.mlfunnel]
        funnel = ["model"]

        [tool.mlfunnel.sources]
        candidate = {{ mlflow = "{tracking_server}", experiment = "churn" }}
        production = {{ mlflow = "{tracking_server}", model = "churn", alias = "production" }}

        [tool.mlfunnel.model.quality]
        metrics = "candidate"
        baseline = "production"
        expect = {{ f1 = ">= baseline + 0.05" }}
        """, "--funnel-json=r.json").assert_outcomes(passed=1)
    extra = criteria(pytester)["model::quality::f1"]["extra"]
    assert extra["source"]["mlflow_run"] == ids["new"]  # type: ignore[index]
    assert extra["source"]["uri"] == tracking_server  # type: ignore[index]
    assert extra["baseline_source"]["mlflow_run"] == ids["old"]  # type: ignore[index]


def test_the_mlflow_example_project_passes_its_model_gate(pytester: pytest.Pytester) -> None:
    example = Path(__file__).resolve().parent.parent / "example_project" / "mlflow"
    for name in ("train.py", "pyproject.toml"):
        shutil.copy(example / name, pytester.path / name)
    trained = subprocess.run([sys.executable, "train.py"], cwd=pytester.path,
                             capture_output=True, text=True, timeout=300, check=False)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "registered run" in trained.stdout
    result = pytester.runpytest_subprocess("--funnel", "-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["stage reached: model (1/1) · required: model · OK"])

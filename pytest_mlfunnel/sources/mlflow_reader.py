"""Metrics from MLflow: one run's metrics, ``params.<name>`` and ``tags.<name>``.

    candidate  = { mlflow = "sqlite:///mlflow.db", experiment = "churn", run = "latest" }
    production = { mlflow = "sqlite:///mlflow.db", model = "churn", alias = "production" }

MLflow itself (the ``mlflow`` extra: ``mlflow-skinny`` with SQLAlchemy and Alembic for
database stores) is imported only when such a source is read. Local stores are found relative
to the rootdir and must exist: MLflow would otherwise create an empty one. A remote tracking
server is asked with a bounded timeout and no retries (MLflow's own environment variables win
when set), so an unreachable server costs seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_mlfunnel import secrets
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.metrics import MetricSet
from pytest_mlfunnel.sources.mlflow_spec import DEFAULT_ORDER, LATEST, MlflowSelector
from pytest_mlfunnel.sources.spec import SourceSpec

#: Seconds per request to a tracking server, and retries (MLflow's defaults: 120 s, 7 retries
#: with exponential backoff — minutes before an unreachable server is reported).
HTTP_TIMEOUT_S = "10"
HTTP_RETRIES = "0"
LISTED = 8
#: Seconds to connect to a tracking database, and the driver's name for that limit
DATABASE_TIMEOUT_S = 10
_CONNECT_TIMEOUT_ARGS = {"postgresql": "connect_timeout", "postgres": "connect_timeout",
                         "mysql": "connect_timeout", "mariadb": "connect_timeout"}
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
DELETED = "deleted"  # MLflow's lifecycle stage of a run or experiment in its trash


def read_mlflow_metrics(spec: SourceSpec, rootdir: Path) -> MetricSet:
    selector = spec.mlflow
    assert selector is not None
    where = spec.display()
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as exc:
        raise CriterionError(f"{where}: reading MLflow needs the mlflow extra (pip install "
                             f"'pytest-mlfunnel[mlflow]'): {exc}") from None
    uri, environment = _tracking_uri(selector.uri, rootdir, where)
    with _environment(environment), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's deprecation notes are not the user's
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            run, how = _find_run(client, selector, where, MlflowException)
        except CriterionError:
            raise
        except Exception as exc:  # MLflow wraps store, network and SQL errors alike
            raise CriterionError(f"{where}: {_reason(exc)}") from None
    shown_uri = secrets.mask_url(selector.uri)
    values: dict[str, Any] = dict(run.data.metrics)
    values.update({f"params.{k}": v for k, v in run.data.params.items()})
    values.update({f"tags.{k}": v for k, v in run.data.tags.items()
                   if not k.startswith("mlflow.")})
    run_id = run.info.run_id
    origin = f"MLflow run {run_id} ({how}; {shown_uri})"
    evidence = {"mlflow_run": run_id, "uri": shown_uri, "selected_by": how}
    return MetricSet(values, origin, evidence=evidence)


# ---------------------------------------------------------------------- where the store is
def _tracking_uri(written: str, rootdir: Path, where: str) -> tuple[str, dict[str, str]]:
    """The URI MLflow is given (local stores made absolute) and the environment to read it."""
    scheme = urlsplit(written).scheme.lower() if "://" in written or written.startswith(
        "file:") else ""
    if scheme in ("", "file"):
        path = _local_path(written[len("file:"):] if scheme else written, rootdir)
        if not path.is_dir():
            raise CriterionError(f"{where}: no MLflow store at {path} (folder not found; an "
                                 "earlier CI step should log the runs)")
        # MLflow 3 refuses to open a folder store unless told; reading one is harmless
        return path.as_uri(), {"MLFLOW_ALLOW_FILE_STORE": "true"}
    if scheme == "sqlite":
        rest = written.split("://", 1)[1]
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise CriterionError(f"{where}: expected sqlite:///path/to/mlflow.db (a file, "
                                 "relative to the rootdir, or sqlite:////absolute/path)")
        path = _local_path(rest[1:].split("?", 1)[0], rootdir)
        _check_sqlite_store(path, where)
        return f"sqlite:///{path}", {}
    if scheme in ("http", "https"):
        return written, {"MLFLOW_HTTP_REQUEST_TIMEOUT": HTTP_TIMEOUT_S,
                         "MLFLOW_HTTP_REQUEST_MAX_RETRIES": HTTP_RETRIES}
    if scheme.split("+", 1)[0] in _CONNECT_TIMEOUT_ARGS:
        _check_database(written, scheme.split("+", 1)[0], where)
    return written, {}


def _check_database(uri: str, dialect: str, where: str) -> None:
    """Connect once, in bounded time, before MLflow does: MLflow retries a database it cannot
    open nine times with a doubling pause (about 100 s), and a silent host waits on TCP."""
    import sqlalchemy

    limit = _CONNECT_TIMEOUT_ARGS[dialect]
    try:
        # a limit written into the URI (?connect_timeout=30) is the user's: it stays
        engine = sqlalchemy.create_engine(
            uri, connect_args={} if f"{limit}=" in uri else {limit: DATABASE_TIMEOUT_S},
            poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as exc:  # the driver's own errors, a missing driver, a bad URL
        cause = getattr(exc, "orig", None) or exc
        text = " ".join(str(cause).split("\n")[0].split()) or type(cause).__name__
        waited = "" if f"{limit}=" in uri else f"; waited at most {DATABASE_TIMEOUT_S} s"
        raise CriterionError(f"{where}: cannot connect to the tracking database "
                             f"({secrets.redact(text)}{waited})") from None


def _local_path(text: str, rootdir: Path) -> Path:
    if text.startswith("//"):  # file:///abs -> "///abs" after the scheme
        text = text[2:]
    path = Path(text).expanduser()
    return path if path.is_absolute() else rootdir / path


def _check_sqlite_store(path: Path, where: str) -> None:
    """The database exists and holds MLflow's tables (MLflow would create them anywhere)."""
    if not path.is_file():
        raise CriterionError(f"{where}: database file not found (expected at {path}; an "
                             "earlier CI step should log the runs)")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True,
                                                timeout=10)) as connection:
            found = connection.execute("select count(*) from sqlite_master where type = "
                                       "'table' and name = 'experiments'").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise CriterionError(f"{where}: cannot read {path}: {exc}") from None
    if not found:
        raise CriterionError(f"{where}: {path} is not an MLflow database (it has no "
                             "experiments table)")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set the variables the user has not set, for the duration of one read."""
    added = [name for name in values if name not in os.environ]
    for name in added:
        os.environ[name] = values[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


# ---------------------------------------------------------------------- which run
def _find_run(client: Any, selector: MlflowSelector, where: str, mlflow_error: type[Exception]
              ) -> tuple[Any, str]:
    if selector.model is not None:
        return _model_run(client, selector, where, mlflow_error)
    experiment = None
    if selector.experiment is not None:
        experiment = client.get_experiment_by_name(selector.experiment)
        if experiment is None or experiment.lifecycle_stage == DELETED:
            names = [e.name for e in client.search_experiments(max_results=100)]
            if experiment is None:
                raise CriterionError(f"{where}: no experiment {selector.experiment!r} "
                                     f"(experiments there: {_listing(names)})")
            raise CriterionError(f"{where}: experiment {selector.experiment!r} is deleted "
                                 f"(restore it with 'mlflow experiments restore', or name "
                                 f"another: experiments there: {_listing(names)})")
    if selector.run not in (None, LATEST):
        run = _get_run(client, selector.run, where, mlflow_error, experiment)
        if experiment is not None and run.info.experiment_id != experiment.experiment_id:
            raise CriterionError(f"{where}: run {selector.run} belongs to another experiment "
                                 f"(id {run.info.experiment_id}), not {selector.experiment!r}")
        return run, selector.describe()
    assert experiment is not None
    if selector.run == LATEST:
        filter_string, order_by = "attributes.status = 'FINISHED'", list(DEFAULT_ORDER)
    else:
        filter_string = selector.run_filter or ""
        order_by = list(selector.run_order_by or DEFAULT_ORDER)
    runs = client.search_runs([experiment.experiment_id], filter_string=filter_string,
                              order_by=order_by, max_results=1)
    if not runs:
        raise CriterionError(f"{where}: {_no_run_found(client, selector, experiment)}")
    return runs[0], selector.describe()


def _get_run(client: Any, run_id: str, where: str, mlflow_error: type[Exception], experiment: Any
             ) -> Any:
    try:
        run = client.get_run(run_id)
    except mlflow_error as exc:
        if getattr(exc, "error_code", None) not in _MISSING:
            raise
    else:
        # MLflow answers runs in its trash too (deleting an experiment puts its runs there):
        # what someone deleted is not evidence
        if run.info.lifecycle_stage == DELETED:
            raise CriterionError(f"{where}: run {run_id} is deleted (restore it with 'mlflow "
                                 "runs restore', or choose another run)")
        return run
    message = f"{where}: no run {run_id!r}"
    if experiment is not None:
        recent = client.search_runs([experiment.experiment_id], max_results=LISTED + 1)
        message += (f" in experiment {experiment.name!r} (newest runs there: "
                    f"{_run_listing(recent)})")
    raise CriterionError(message)


def _no_run_found(client: Any, selector: MlflowSelector, experiment: Any) -> str:
    runs = client.search_runs([experiment.experiment_id], max_results=LISTED + 1)
    there = f"newest runs there: {_run_listing(runs)}"
    if selector.run == LATEST:
        return f"no finished run in experiment {experiment.name!r} ({there})"
    return (f"no run of experiment {experiment.name!r} matches filter "
            f"{selector.run_filter or ''!r} ({there})")


def _model_run(client: Any, selector: MlflowSelector, where: str, mlflow_error: type[Exception]
               ) -> tuple[Any, str]:
    name = selector.model
    try:
        model = client.get_registered_model(name)
    except mlflow_error as exc:
        if getattr(exc, "error_code", None) not in _MISSING:
            raise
        names = [m.name for m in client.search_registered_models(max_results=100)]
        raise CriterionError(f"{where}: no registered model {name!r} (registered models: "
                             f"{_listing(names)})") from None
    if selector.alias is not None:
        aliases = dict(model.aliases or {})
        if selector.alias not in aliases:
            shown = [f"{a} -> version {v}" for a, v in sorted(aliases.items())]
            raise CriterionError(f"{where}: model {name!r} has no alias {selector.alias!r} "
                                 f"(aliases: {_listing(shown)})")
        version = client.get_model_version_by_alias(name, selector.alias)
        how = f"model {name}@{selector.alias} = version {version.version}"
    else:
        try:
            version = client.get_model_version(name, str(selector.version))
        except mlflow_error as exc:
            if getattr(exc, "error_code", None) not in _MISSING:
                raise
            quoted = name.replace("'", "\\'") if name else ""
            versions = sorted(int(v.version) for v in
                              client.search_model_versions(f"name = '{quoted}'"))
            raise CriterionError(f"{where}: model {name!r} has no version {selector.version} "
                                 f"(versions: {_listing([str(v) for v in versions])})"
                                 ) from None
        how = f"model {name} version {version.version}"
    if not version.run_id:
        raise CriterionError(f"{where}: {how} was not registered from a run, so it has no "
                             "metrics (register it with mlflow.register_model('runs:/<run "
                             "id>/model', ...))")
    return _get_run(client, version.run_id, where, mlflow_error, None), how


# ---------------------------------------------------------------------- words
def _listing(names: Sequence[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def _run_listing(runs: Sequence[Any]) -> str:
    described = [f"{r.info.run_id} ({str(r.info.status).lower()})" for r in runs]
    if len(described) > LISTED:
        return ", ".join(described[:LISTED]) + " and more"
    return ", ".join(described) or "none"


def _reason(exc: BaseException) -> str:
    """MLflow's message in one line; a connection failure said plainly."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    if any(word in lowered for word in ("connection refused", "max retries exceeded",
                                        "failed to establish", "timed out", "read timeout",
                                        "name or service not known")):
        cause = "connection refused" if "refused" in lowered else (
            "timed out" if "timed out" in lowered or "timeout" in lowered else
            "host not found" if "not known" in lowered else "no answer")
        timeout = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_S)
        return (f"cannot reach the MLflow tracking server ({cause}; waited at most "
                f"{timeout} s, MLFLOW_HTTP_REQUEST_TIMEOUT changes it)")
    return secrets.redact(text if len(text) <= 500 else text[:499] + "…")

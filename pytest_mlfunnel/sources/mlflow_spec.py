"""Which MLflow run a source names: ``{ mlflow = URI, experiment, run }`` or
``{ mlflow = URI, model, alias | version }``. Only the description: reading it needs the
``mlflow`` extra and lives in ``mlflow_reader``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_mlfunnel.suggest import did_you_mean

#: Keys of an MLflow source table (``description`` is accepted by every source).
MLFLOW_KEYS = ("mlflow", "experiment", "run", "model", "alias", "version")
RUN_KEYS = ("filter", "order_by")
LATEST = "latest"
#: The newest run first when ``order_by`` is not given.
DEFAULT_ORDER = ("attributes.start_time DESC",)


class MlflowSpecError(ValueError):
    """A key of an MLflow source that cannot be understood; ``key`` is its path inside the
    source table (``run.order_by``), empty for the table as a whole."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class MlflowSelector:
    uri: str  # as written: a tracking URI or a local folder (relative to the rootdir)
    experiment: str | None = None
    run: str | None = None  # "latest" or a run id; None with a search or a model
    run_filter: str | None = None
    run_order_by: tuple[str, ...] = ()
    model: str | None = None
    alias: str | None = None
    version: int | None = None

    @property
    def searches(self) -> bool:
        return self.experiment is not None and self.run in (None, LATEST)

    def describe(self) -> str:
        """``experiment churn, latest run`` / ``model churn@production`` / ``model churn v3``."""
        if self.model is not None:
            return (f"model {self.model}@{self.alias}" if self.alias is not None
                    else f"model {self.model} version {self.version}")
        if self.run not in (None, LATEST):
            return f"run {self.run}"
        if self.run_filter is not None or self.run_order_by:
            words = [f"experiment {self.experiment}, first run"]
            if self.run_filter:
                words.append(f"where {self.run_filter}")
            if self.run_order_by:
                words.append(f"by {', '.join(self.run_order_by)}")
            return " ".join(words)
        return f"experiment {self.experiment}, latest finished run"


def parse_mlflow(table: dict[str, Any]) -> MlflowSelector:
    """An ``mlflow = ...`` source table -> MlflowSelector, or MlflowSpecError naming the key."""
    for key in table:
        if key not in MLFLOW_KEYS and key != "description":
            raise MlflowSpecError(f"unknown key in an mlflow source (allowed: "
                                  f"{', '.join(MLFLOW_KEYS)}, description)"
                                  f"{did_you_mean(key, (*MLFLOW_KEYS, 'description'))}", key)
    uri = _text(table, "mlflow", "a tracking URI such as \"sqlite:///mlflow.db\", "
                                 "\"./mlruns\" or \"http://mlflow.internal:5000\"")
    experiment = _text(table, "experiment", "an experiment name") if "experiment" in table \
        else None
    model = _text(table, "model", "a registered model name") if "model" in table else None
    if model is not None:
        for other in ("run", "experiment"):
            if other in table:
                raise MlflowSpecError(f"give either model (a registered model's run) or "
                                      f"{other}, not both", other)
        return _model_selector(uri, model, table)
    for key in ("alias", "version"):
        if key in table:
            raise MlflowSpecError(f"{key} selects a version of a registered model: give "
                                  "model too", key)
    run = table.get("run", LATEST if experiment is not None else None)
    if run is None:
        raise MlflowSpecError("an mlflow source needs experiment (with run = \"latest\", a "
                              "run id or { filter, order_by }), run = \"<run id>\", or model "
                              "(with alias or version)")
    if isinstance(run, dict):
        if experiment is None:
            raise MlflowSpecError("a run search needs the experiment to search in", "run")
        return _search_selector(uri, experiment, run)
    if not isinstance(run, str) or not run.strip():
        raise MlflowSpecError(f"expected \"latest\", a run id or {{ filter = \"...\", "
                              f"order_by = \"...\" }}, got {run!r}", "run")
    run = run.strip()
    if run == LATEST and experiment is None:
        raise MlflowSpecError("run = \"latest\" needs the experiment to look in", "run")
    return MlflowSelector(uri=uri, experiment=experiment, run=run)


def _model_selector(uri: str, model: str, table: dict[str, Any]) -> MlflowSelector:
    if ("alias" in table) == ("version" in table):
        raise MlflowSpecError("a registered model needs exactly one of alias "
                              "(\"production\") or version (3)"
                              + (", not both" if "alias" in table else ""))
    if "alias" in table:
        return MlflowSelector(uri=uri, model=model, alias=_text(table, "alias", "an alias"))
    version = table["version"]
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise MlflowSpecError(f"expected a version number such as 3, got {version!r}",
                              "version")
    return MlflowSelector(uri=uri, model=model, version=version)


def _search_selector(uri: str, experiment: str, run: dict[str, Any]) -> MlflowSelector:
    for key in run:
        if key not in RUN_KEYS:
            raise MlflowSpecError(f"unknown key in a run search (allowed: "
                                  f"{', '.join(RUN_KEYS)}){did_you_mean(key, RUN_KEYS)}",
                                  f"run.{key}")
    run_filter = run.get("filter")
    if run_filter is not None and not isinstance(run_filter, str):
        raise MlflowSpecError("expected a search filter string such as \"metrics.f1 > 0.8 "
                              f"and params.model = 'xgb'\", got {run_filter!r}", "run.filter")
    order_by = run.get("order_by", [])
    if isinstance(order_by, str):
        order_by = [order_by]
    if not isinstance(order_by, list) or not all(
            isinstance(o, str) and o.strip() for o in order_by):
        raise MlflowSpecError("expected a string or a list of strings such as "
                              f"\"metrics.f1 DESC\", got {run.get('order_by')!r}",
                              "run.order_by")
    return MlflowSelector(uri=uri, experiment=experiment,
                          run_filter=(run_filter or "").strip() or None,
                          run_order_by=tuple(o.strip() for o in order_by))


def _text(table: dict[str, Any], key: str, what: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MlflowSpecError(f"expected {what}, got {value!r}", key)
    return value.strip()

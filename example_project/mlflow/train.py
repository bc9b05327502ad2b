"""Train two churn rules, log both runs to MLflow, register the first as production.

    pip install 'pytest-mlfunnel[mlflow]'
    python train.py          # a fresh mlflow.db: experiment "churn", model "churn"@production
    pytest --funnel          # the candidate (newest run) against the production model

Standard library plus mlflow: the data is drawn from a seeded generator, the "models" are
scoring rules, so the example runs in seconds and gives the same numbers every time.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from mlflow import MlflowClient

HERE = Path(__file__).parent
STORE = HERE / "mlflow.db"


def customers(n: int = 4000, seed: int = 7) -> list[tuple[int, int, int]]:
    """(support_calls, tenure_months, churned) per customer."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        calls = min(12, int(rng.expovariate(1 / 2.5)))
        tenure = rng.randint(0, 72)
        risk = 1 / (1 + math.exp(-(0.8 * calls - 0.06 * tenure - 1.2)))
        rows.append((calls, tenure, int(rng.random() < risk)))
    return rows


def evaluate(rows: list[tuple[int, int, int]], predict: object) -> dict[str, float]:
    assert callable(predict)
    tp = fp = fn = tn = 0
    for calls, tenure, churned in rows:
        said = bool(predict(calls, tenure))
        tp += said and churned
        fp += said and not churned
        fn += (not said) and churned
        tn += (not said) and not churned
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": round((tp + tn) / len(rows), 4), "precision": round(precision, 4),
            "recall": round(recall, 4), "f1": round(f1, 4)}


def main() -> None:
    STORE.unlink(missing_ok=True)
    uri = f"sqlite:///{STORE}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("churn")
    rows = customers()
    models = {
        # production: one feature, many support calls mean churn
        "calls-only": ({"features": "support_calls", "n_features": 1, "threshold": 4},
                       lambda calls, tenure: calls >= 4),
        # candidate: long-standing customers forgive more calls
        "calls-tenure": ({"features": "support_calls,tenure_months", "n_features": 2,
                          "threshold": 2.5},
                         lambda calls, tenure: calls - tenure / 24 >= 2.5),
    }
    run_ids = []
    for name, (params, predict) in models.items():
        run = client.create_run(experiment, run_name=name, tags={"team": "retention"})
        for key, value in params.items():
            client.log_param(run.info.run_id, key, value)
        for key, value in evaluate(rows, predict).items():
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id)
        run_ids.append(run.info.run_id)
        print(f"logged run {run.info.run_id} ({name}): {evaluate(rows, predict)}")
    client.create_registered_model("churn")
    version = client.create_model_version("churn", f"runs:/{run_ids[0]}/model",
                                          run_id=run_ids[0])
    client.set_registered_model_alias("churn", "production", version.version)
    print(f"registered run {run_ids[0]} as churn version {version.version} @production")


if __name__ == "__main__":
    main()

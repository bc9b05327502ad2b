"""Train the churn model and write the evidence the model gate reads.

    python train.py              # models/churn.json, reports/eval.json and
                                 # reports/holdout_predictions.parquet (holdout rows: the
                                 # model's and the production model's predictions side by side)
    python train.py --baseline   # also reports/prod_eval.json (production model: 2 features)

A logistic regression fitted by gradient descent with numpy: small, deterministic, good enough.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
PLANS = ["basic", "pro", "team"]
NUMERIC = ["age", "tenure_months", "monthly_spend", "support_calls"]
FEATURES = NUMERIC + [f"plan_{p}" for p in PLANS]


def load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    columns = duckdb.sql(
        f"select customer_id, coalesce(age, 40) as age, tenure_months, monthly_spend, "
        f"support_calls, plan, churned from read_parquet('{path.as_posix()}') "
        f"order by customer_id"
    ).fetchnumpy()
    plan = np.asarray(columns["plan"]).astype(str)
    x = np.column_stack([np.asarray(columns[c], dtype=float) for c in NUMERIC]
                        + [(plan == p).astype(float) for p in PLANS])
    return (x, np.asarray(columns["churned"], dtype=float), plan,
            np.asarray(columns["customer_id"]))


def write_predictions(path: Path, ids: np.ndarray, y: np.ndarray, plan: np.ndarray,
                      model: dict, x: np.ndarray, production: dict, x_production: np.ndarray
                      ) -> None:
    """One row per holdout customer: the truth, the model's and production's predictions."""
    score = predict(model, x)
    production_score = predict(production, x_production)
    pq.write_table(pa.table({
        "customer_id": ids, "plan": plan, "churned": y.astype(int),
        "pred": (score >= model["threshold"]).astype(int), "proba": score,
        "prod_pred": (production_score >= production["threshold"]).astype(int),
        "prod_proba": production_score,
    }), path)


def fit(x: np.ndarray, y: np.ndarray, steps: int = 3000, rate: float = 0.3) -> dict:
    means, scales = x.mean(axis=0), x.std(axis=0)
    scales[scales == 0] = 1.0
    z = (x - means) / scales
    coef, intercept = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ coef + intercept)))
        coef -= rate * (z.T @ (p - y) / len(y) + 1e-3 * coef)
        intercept -= rate * float(np.mean(p - y))
    return {"features": FEATURES, "coef": coef.tolist(), "intercept": intercept,
            "means": means.tolist(), "scales": scales.tolist(), "threshold": 0.5}


def predict(model: dict, x: np.ndarray) -> np.ndarray:
    z = (x - np.asarray(model["means"])) / np.asarray(model["scales"])
    return 1 / (1 + np.exp(-(z @ np.asarray(model["coef"]) + model["intercept"])))


def auc(y: np.ndarray, score: np.ndarray) -> float:
    order = np.argsort(score)
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(model: dict, x: np.ndarray, y: np.ndarray, plan: np.ndarray) -> dict:
    score = predict(model, x)
    guess = (score >= model["threshold"]).astype(float)

    def scores(mask: np.ndarray) -> dict:
        yt, yp = y[mask], guess[mask]
        tp = float(((yt == 1) & (yp == 1)).sum())
        precision = tp / max(yp.sum(), 1)
        recall = tp / max(yt.sum(), 1)
        return {"n": int(mask.sum()), "precision": round(precision, 4),
                "recall": round(recall, 4)}

    everyone = np.ones(len(y), dtype=bool)
    overall = scores(everyone)
    f1 = 2 * overall["precision"] * overall["recall"] / max(
        overall["precision"] + overall["recall"], 1e-9)
    return {
        "accuracy": round(float((guess == y).mean()), 4),
        "f1": round(f1, 4),
        "auc": round(auc(y, score), 4),
        "precision": overall["precision"],
        "recall": overall["recall"],
        "rows": len(y),
        "slices": {p: scores(plan == p) for p in PLANS},
    }


def production_model(x: np.ndarray, y: np.ndarray) -> tuple[dict, list[int]]:
    """The model in production today: two features and a lower threshold."""
    keep = [FEATURES.index("tenure_months"), FEATURES.index("monthly_spend")]
    narrow = fit(x[:, keep], y)
    narrow["threshold"] = 0.3  # the production rule calls more people, it sees less
    return narrow, keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", action="store_true",
                        help="also write reports/prod_eval.json (the 2-feature production model)")
    args = parser.parse_args()
    x, y, plan, ids = load(HERE / "data" / "customers.parquet")
    rng = np.random.default_rng(7)
    test = rng.random(len(y)) < 0.25
    model = fit(x[~test], y[~test])
    (HERE / "models").mkdir(exist_ok=True)
    (HERE / "reports").mkdir(exist_ok=True)
    (HERE / "models" / "churn.json").write_text(json.dumps(model, indent=2) + "\n")
    metrics = evaluate(model, x[test], y[test], plan[test])
    (HERE / "reports" / "eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"holdout: accuracy {metrics['accuracy']}, f1 {metrics['f1']}, auc {metrics['auc']}")
    narrow, keep = production_model(x[~test], y[~test])
    write_predictions(HERE / "reports" / "holdout_predictions.parquet", ids[test], y[test],
                      plan[test], model, x[test], narrow, x[test][:, keep])
    print(f"holdout predictions: {int(test.sum())} rows in reports/holdout_predictions.parquet")
    if args.baseline:
        narrow_metrics = evaluate(narrow, x[test][:, keep], y[test], plan[test])
        (HERE / "reports" / "prod_eval.json").write_text(
            json.dumps(narrow_metrics, indent=2) + "\n")
        print(f"production baseline: accuracy {narrow_metrics['accuracy']}, "
              f"f1 {narrow_metrics['f1']}")


if __name__ == "__main__":
    main()

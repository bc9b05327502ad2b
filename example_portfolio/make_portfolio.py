"""Write the histories of a dozen synthetic ML projects, as ``--funnel-record`` writes them.

    python example_portfolio/make_portfolio.py            # into example_portfolio/repos/
    mlfunnel portfolio example_portfolio/repos --as-of 2026-11-29 --html portfolio.html

The dates are chosen so that the picture tells the usual story of an ML portfolio: many
projects at data and problem, a cemetery in front of organization (models that work, stuck
for months waiting for budget, sign-off or owners), and few maintained in production.
Each project is a folder ``repos/<name>/.mlfunnel/history.jsonl``, like a monorepo or a
folder of CI artifacts. Nothing is random: the same files every time.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

FUNNEL = ["data", "problem", "model", "organization", "deployment", "usage", "effectiveness",
          "maintenance"]
HERE = Path(__file__).resolve().parent

#: project -> [(date, stage)]: one recorded release per entry, in order.
PROJECTS: dict[str, list[tuple[str, int]]] = {
    # In front of data: no usable data yet.
    "supplier-risk": [("2026-05-04", 0), ("2026-06-15", 0), ("2026-08-03", 0)],
    "voice-of-customer": [("2026-10-12", 0), ("2026-11-16", 0)],
    # Data in place, the business problem not written down or signed off.
    "lead-scoring": [("2026-02-02", 0), ("2026-03-09", 1), ("2026-05-11", 1)],
    "returns-forecast": [("2026-06-01", 0), ("2026-07-06", 1), ("2026-09-14", 1),
                         ("2026-11-09", 1)],
    "store-layout": [("2026-09-07", 1), ("2026-10-19", 1)],
    # A stated problem, the model not good enough yet.
    "ad-bidding": [("2026-03-02", 0), ("2026-04-06", 1), ("2026-06-08", 2), ("2026-09-21", 2),
                   ("2026-11-02", 2)],
    # The cemetery: models that pass, stuck in front of organization for months.
    "invoice-ocr": [("2025-10-06", 0), ("2025-11-10", 1), ("2026-01-12", 2), ("2026-03-02", 3),
                    ("2026-05-04", 3), ("2026-08-10", 3)],
    "churn": [("2025-09-01", 1), ("2025-11-03", 2), ("2026-02-02", 3), ("2026-06-01", 3),
              ("2026-09-07", 3)],
    "route-optimizer": [("2025-12-01", 0), ("2026-02-02", 1), ("2026-03-16", 2),
                        ("2026-05-18", 3), ("2026-07-06", 3)],
    # Deployed once, then fell back: the sign-off expired.
    "support-triage": [("2025-07-07", 1), ("2025-09-01", 2), ("2025-11-03", 3),
                       ("2026-01-05", 5), ("2026-04-06", 3), ("2026-10-05", 3)],
    # Used, its effect on the KPI not shown yet.
    "demand-forecast": [("2025-05-05", 1), ("2025-07-07", 2), ("2025-09-08", 3),
                        ("2025-11-03", 4), ("2026-01-12", 6), ("2026-06-01", 6),
                        ("2026-10-05", 6)],
    # Through every gate, and maintained.
    "search-ranking": [("2025-03-03", 2), ("2025-05-05", 3), ("2025-08-04", 5),
                       ("2025-10-06", 7), ("2026-01-05", 8), ("2026-06-01", 8),
                       ("2026-11-02", 8)],
}


def history_line(project: str, number: int, day: str, stage: int) -> str:
    gates = []
    for index, gate in enumerate(FUNNEL, start=1):
        status = ("passed" if index <= stage else "failed" if index == stage + 1 else
                  "failed" if index <= stage + 3 else "empty")
        total = 0 if status == "empty" else 4
        gates.append({"name": gate, "status": status, "total": total,
                      "passed": total if status == "passed" else min(total, 2)})
    reached = FUNNEL[stage - 1] if stage else None
    verdict = f"stage reached: {reached or 'none'} ({stage}/8) · required: none · OK"
    entry = {"schema": "mlfunnel-report/1", "project": project, "release": f"v0.{number}.0",
             "commit": None, "created": f"{day}T10:00:00Z", "funnel": FUNNEL,
             "required": "none", "reached": reached, "stage": stage, "ok": True,
             "partial": False, "verdict": verdict, "reasons": [], "gates": gates}
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


def write(out: Path) -> list[Path]:
    written = []
    for project, releases in PROJECTS.items():
        path = out / project / ".mlfunnel" / "history.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [history_line(project, n, day, stage)
                 for n, (day, stage) in enumerate(releases, start=1)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "repos",
                        help="folder to write the projects into (default: example_portfolio/"
                             "repos; replaced)")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    written = write(args.out)
    print(f"wrote {len(written)} histories under {args.out}")


if __name__ == "__main__":
    main()

"""Regenerate the pictures in docs/img/ from the example project.

    python scripts/docs_screenshots.py            # needs chromium (or $MLFUNNEL_CHROMIUM)

The example is copied to a temporary directory (its committed history stays untouched) and
run as its README says: the model is trained when no evaluation exists yet, ``coverage run``
measures its tests, and ``pytest --funnel`` records the run as release v1.4.0 on top of the
committed past releases, writing the HTML and JSON reports.
Headless Chromium then photographs the HTML page, and ``mlfunnel badge`` draws the badge.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
IMAGES = ROOT / "docs" / "img"
RELEASE = "v1.4.0"


def chromium() -> str:
    for candidate in (os.environ.get("MLFUNNEL_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate:
            return candidate
    sys.exit("docs_screenshots: no chromium found (set MLFUNNEL_CHROMIUM)")


def run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=cwd, text=True, capture_output=True, check=False)
    if check and done.returncode not in (0, 1):  # 1: the funnel may well be below its gate
        sys.exit(f"docs_screenshots: {command[0]} failed ({done.returncode}):\n"
                 f"{done.stdout}\n{done.stderr}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1900)
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlfunnel-docs-") as tmp:
        project = Path(tmp) / "example_project"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(
            "__pycache__", ".pytest_cache", "*.lock"))
        # The example's own pipeline (README): train, measure the model's tests, then the funnel.
        if (project / "train.py").exists() and not (project / "reports" / "eval.json").exists():
            run([sys.executable, "train.py"], cwd=project)
        run([sys.executable, "-m", "coverage", "run", "--branch", "-m", "pytest", "tests", "-q",
             "-p", "no:cacheprovider"], cwd=project)
        html, report = Path(tmp) / "report.html", Path(tmp) / "report.json"
        done = run([sys.executable, "-m", "pytest", "--funnel", f"--funnel-record={RELEASE}",
                    f"--funnel-html={html}", f"--funnel-json={report}", "-p",
                    "no:cacheprovider", "-q"], cwd=project)
        summary = done.stdout[done.stdout.find("= ml funnel ="):]
        print(summary.rstrip())
        run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--force-device-scale-factor=1", f"--window-size={args.width},{args.height}",
             f"--screenshot={IMAGES / 'report.png'}", html.as_uri()], cwd=project)
        run([sys.executable, "-m", "pytest_mlfunnel.cli", "badge", "--report", str(report),
             "-o", str(IMAGES / "badge.svg")], cwd=project)
        history = run([sys.executable, "-m", "pytest_mlfunnel.cli", "history"], cwd=project)
        print(history.stdout.rstrip())
    print(f"wrote {IMAGES / 'report.png'} and {IMAGES / 'badge.svg'}")


if __name__ == "__main__":
    main()

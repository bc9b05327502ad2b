"""Regenerate docs/img/portfolio.png: the portfolio page of the example's dozen projects.

    python scripts/portfolio_screenshot.py        # needs chromium (or $MLFUNNEL_CHROMIUM)

The example histories are written afresh into a temporary directory by
``example_portfolio/make_portfolio.py``, summarized with ``mlfunnel portfolio --html`` as of
the example's date, and photographed with headless Chromium.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from docs_screenshots import chromium

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "img"
AS_OF = "2026-11-29"


def run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, text=True, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        sys.exit(f"portfolio_screenshot: {command[0]} failed ({done.returncode}):\n"
                 f"{done.stdout}\n{done.stderr}")
    if done.stdout.strip():
        print(done.stdout.rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1150)
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlfunnel-portfolio-") as tmp:
        repos, page = Path(tmp) / "repos", Path(tmp) / "portfolio.html"
        run([sys.executable, str(ROOT / "example_portfolio" / "make_portfolio.py"), "--out",
             str(repos)])
        run([sys.executable, "-m", "pytest_mlfunnel.cli", "portfolio", str(repos), "--as-of",
             AS_OF, "--html", str(page)])
        run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--force-device-scale-factor=1", f"--window-size={args.width},{args.height}",
             f"--screenshot={IMAGES / 'portfolio.png'}", page.as_uri()])
    print(f"wrote {IMAGES / 'portfolio.png'}")


if __name__ == "__main__":
    main()

"""The built wheel is what users install: it carries its templates and runs end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = {"MODEL_CARD.md", "mlfunnel.toml", "problem.md", "runbook.md"}


def run(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_the_built_wheel_installs_in_a_fresh_venv_and_runs_init_and_the_funnel(
        tmp_path: Path) -> None:
    """Build from a copy of the sources, install the wheel alone into a new venv, and run it.

    The venv's dependencies (pytest, pydantic, DuckDB ...) come from this test environment
    through a path file, so the test needs no network; ``.ci/run`` installs the wheel with its
    dependencies from the index as well. The package itself is imported from the wheel.
    """
    source = tmp_path / "source"
    shutil.copytree(ROOT / "pytest_mlfunnel", source / "pytest_mlfunnel",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"),
                 str(source)], tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("pytest_mlfunnel-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"pytest_mlfunnel/templates/{t}" for t in TEMPLATES} <= names
    assert "pytest_mlfunnel/py.typed" in names

    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                        "['purelib'])"], tmp_path).stdout.strip())
    # this environment's site-packages after the venv's own: dependencies only, since a
    # plain path entry does not run the editable install's .pth hook
    (purelib / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run([sys.executable, "-m", "pip", "--python", str(python), "install",
                     "--no-deps", "--no-index", str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stderr

    project = tmp_path / "project"
    project.mkdir()
    where = run([str(python), "-c", "import pytest_mlfunnel; print(pytest_mlfunnel.__file__)"],
                project)
    assert Path(where.stdout.strip()).is_relative_to(purelib), where.stdout + where.stderr
    script = python.parent / ("mlfunnel.exe" if os.name == "nt" else "mlfunnel")
    init = run([str(script), "init"], project)
    assert init.returncode == 0, init.stderr
    for name in ("pyproject.toml", "docs/problem.md", "MODEL_CARD.md", "docs/runbook.md"):
        assert (project / name).is_file(), name
    funnel = run([str(python), "-m", "pytest", "--funnel", "-p", "no:cacheprovider"], project)
    assert funnel.returncode == 0, funnel.stdout + funnel.stderr
    assert "= ml funnel =" in funnel.stdout
    assert "stage reached: none (0/8) · required: none · REPORT ONLY" in funnel.stdout
    assert "problem::statement::section-problem: docs/problem.md: section 'Problem'" in (
        funnel.stdout)


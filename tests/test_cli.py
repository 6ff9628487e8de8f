"""A stage's command line and how it fails."""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from stages import cli, files
from stages.cli import StageError
from tests.conftest import REPO


def train(experiment: str) -> None:
    """A stage's main with one argument."""
    raise cli.StageError(f"{experiment} went wrong")


def run(main, argv, capsys):
    code = cli.run(main, argv=argv)
    out, err = capsys.readouterr()
    return code, err.strip().splitlines()


def test_the_arguments_follow_the_mains_parameters(capsys):
    code, lines = run(train, [], capsys)
    assert code == 2 and lines[0] == f"usage: python -m {__name__} [-h] experiment"
    assert lines[-1].endswith("error: the following arguments are required: experiment")
    assert run(train, ["a", "b"], capsys)[0] == 2
    assert run(train, ["cnn"], capsys) == (2, ["error: test_cli@cnn: cnn went wrong"])


def test_help_describes_the_stage_and_its_arguments_and_exits_0(capsys):
    assert cli.run(train, argv=["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m {__name__} [-h] experiment\n\nA stage's command line and how it fails.")
    assert "A stage's main with one argument" not in out  # the module's docstring, not main's
    assert "experiment  the name of an experiment under `experiments:` in params.yaml" in out


@pytest.mark.parametrize("stage", ["download", "translate", "train", "evaluate", "invariance", "seeds", "compare",
                                   "report"])
def test_every_stage_answers_help_without_running(stage):
    result = subprocess.run([sys.executable, "-m", f"stages.{stage}", "--help"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m stages.{stage} [-h]")
    assert f"Stage `{stage}`" in result.stdout  # the module's docstring


@pytest.mark.parametrize("raised, expected", [
    (MemoryError(), "not enough memory"),
    (OSError(errno.ENOSPC, "No space left on device", "data/x.npz"), "no space left on the device for data/x.npz"),
    (PermissionError(errno.EACCES, "Permission denied", "reports/y"), "no permission to write reports/y"),
])
def test_failures_a_user_meets_are_one_line(capsys, raised, expected):
    def main():
        raise raised

    code, lines = run(main, [], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: test_cli: ") and expected in lines[0]


def test_an_interrupted_stage_says_how_to_continue(capsys):
    def main():
        raise KeyboardInterrupt

    assert run(main, [], capsys) == (130, ["test_cli: interrupted; run it again to continue"])


def test_sigterm_ends_a_stage_like_ctrl_c_with_its_writes_cleaned_up(capsys, tmp_path):
    def main():
        with files.atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal arrives before this ends

    assert run(main, [], capsys) == (143, ["test_cli: terminated (SIGTERM); no output was left half-written; run it "
                                          "again to continue"])
    assert list(tmp_path.iterdir()) == []


def test_an_error_message_is_one_bounded_line(capsys):
    def main():
        raise StageError("a value\nover lines " + "x" * 5000)

    code, lines = run(main, [], capsys)
    assert code == 2 and len(lines) == 1 and len(lines[0]) < 700 and lines[0].endswith("...")


@pytest.mark.parametrize("bug", [KeyError("x"), ZeroDivisionError(), FileNotFoundError(errno.ENOENT, "gone", "z")])
def test_a_bug_keeps_its_traceback(bug):
    def main():
        raise bug

    with pytest.raises(type(bug)):
        cli.run(main, argv=[])


def test_the_traceback_behind_a_one_line_error_on_request(capsys, monkeypatch):
    monkeypatch.setenv("STAGES_TRACEBACK", "1")
    code, lines = run(train, ["cnn"], capsys)
    assert code == 2 and lines[0] == "Traceback (most recent call last):" and lines[-1].startswith("error: ")


def test_importing_keras_through_the_stages_prints_none_of_tensorflows_loading_notices():
    """TensorFlow's native libraries print notices while they load (absl, oneDNN, CUDA probing): stages/__init__.py
    holds them back, also after cli.backend_problem has looked the package up without importing it."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"KERAS_BACKEND": "tensorflow"}
    code = "import stages, keras; from stages import training; keras.ops.ones(1)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode == 0 and result.stderr == ""

import errno
import os
import signal
import time

import pytest

from stages import cli, files
from stages.cli import StageError


def train(experiment: str) -> None:
    """A stage's main with one argument."""
    raise cli.StageError(f"{experiment} went wrong")


def run(main, argv, capsys):
    code = cli.run(main, argv=argv)
    out, err = capsys.readouterr()
    return code, err.strip().splitlines()


def test_the_arguments_follow_the_mains_parameters(capsys):
    assert run(train, [], capsys) == (2, ["usage: python -m stages.test_cli <experiment>"])
    assert run(train, ["a", "b"], capsys)[0] == 2
    assert run(train, ["cnn"], capsys) == (2, ["error: test_cli@cnn: cnn went wrong"])


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

"""Sharing results through a DVC remote (docs/sharing.md): one clone pushes what it
computed, a teammate's clone pulls it and has nothing left to run. Each remote is a real one,
started on this machine by the test: a local folder always; an S3-compatible server (moto's) and an
SSH server (asyncssh's SFTP, tests/sftp_server.py) where their packages are installed (the `test`
extra installs them; otherwise the test says which is missing and is skipped)."""

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import sh
from tests.test_pipeline import ran

pytestmark = pytest.mark.e2e

# moto accepts any credentials; DVC's S3 client reads them from the environment as boto3 does.
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
SSH_PASSWORD = "test-only"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {seconds} s")


@contextlib.contextmanager
def serving(command: list[str], port: int):
    """A server process started with `command`, once it listens on `port`; stopped on leaving."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def s3_endpoint():
    """moto's S3 server on a free port, with one empty bucket `shared`; stopped after the test."""
    why = "no S3-compatible server to test against: {} is not installed (pip install -e '.[test]' installs it)"
    pytest.importorskip("moto.server", reason=why.format("moto[server]"))
    pytest.importorskip("dvc_s3", reason=why.format("dvc-s3"))
    import boto3

    port = free_port()
    with serving([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port):
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket="shared")
        yield endpoint


@pytest.fixture
def ssh_port():
    """An SSH server with SFTP (tests/sftp_server.py) on a free port, password SSH_PASSWORD; stopped after the test."""
    why = "no SSH server to test against: {} is not installed (pip install -e '.[test]' installs it)"
    pytest.importorskip("asyncssh", reason=why.format("asyncssh"))
    pytest.importorskip("dvc_ssh", reason=why.format("dvc-ssh"))
    port = free_port()
    with serving([sys.executable, str(Path(__file__).with_name("sftp_server.py")), str(port), SSH_PASSWORD], port):
        yield port


def add_remote(root, kind: str, tmp_path, request) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Make `shared` the project's default remote, committed to git as a team would. Returns the
    environment its commands need and the settings each clone keeps in its own .dvc/config.local
    (a password is nobody else's)."""
    env, own = {}, []
    if kind == "local":
        sh("dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote"), cwd=root)
    elif kind == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        sh("dvc", "remote", "add", "-d", "shared", "s3://shared/translated-mnist", cwd=root)
        sh("dvc", "remote", "modify", "shared", "endpointurl", endpoint, cwd=root)
        env = FAKE_AWS
    else:
        port = request.getfixturevalue("ssh_port")
        sh("dvc", "remote", "add", "-d", "shared", f"ssh://test@127.0.0.1:{port}{tmp_path / 'remote'}", cwd=root)
        own = [("password", SSH_PASSWORD)]
    sh("git", "add", ".dvc/config", cwd=root)
    sh("git", "commit", "-q", "-m", "a shared remote", cwd=root)
    return env, own


@pytest.mark.parametrize("kind", ["local", "s3", "ssh"])
def test_a_teammates_clone_pulls_every_result_and_has_nothing_to_run(project_copy, tmp_path, request, kind):
    root, teammate = project_copy, tmp_path / "teammate"
    env, own = add_remote(root, kind, tmp_path, request)
    sh("git", "clone", "-q", str(root), str(teammate), cwd=tmp_path)
    for clone in (root, teammate):
        for option, value in own:
            sh("dvc", "remote", "modify", "--local", "shared", option, value, cwd=clone)
    assert "files pushed" in sh("dvc", "push", "--run-cache", cwd=root, env=env).stdout

    assert not (teammate / "data").exists()  # git carries the code and the lock, not the data
    sh("dvc", "pull", cwd=teammate, env=env)
    for model in sorted((root / "data/models").glob("*.keras")):
        assert (teammate / "data/models" / model.name).read_bytes() == model.read_bytes()
    assert "Data and pipelines are up to date." in sh("dvc", "status", "dvc.yaml", cwd=teammate, env=env).stdout
    assert ran(sh("dvc", "repro", cwd=teammate, env=env).stdout) == set()

"""Faults a user can cause or meet, each run the way the user meets it: the stage as a subprocess in
a copy of a small project (tests/conftest.py). Every case checks the exit code, that the stage says
what is wrong in one line (naming the key or the file), and that no output changed, or, for the
recovery cases, the final state.

TensorFlow prints a few lines of its own when it is imported (CUDA probing, oneDNN); they are not
the stage's and are left out when counting lines.
"""

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import sh, user_env

pytestmark = pytest.mark.faults

TENSORFLOW_CHATTER = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl|To enable the following "
                                r"instructions|Epoch \d|\d+/\d+ - )")


@pytest.fixture(scope="module")
def project(small_project, tmp_path_factory):
    """One copy of the small project for the module: each case puts back what it breaks."""
    root = tmp_path_factory.mktemp("faults") / "project"
    shutil.copytree(small_project[0], root, symlinks=True)
    return root


def outputs(root: Path) -> dict[str, str]:
    """sha256 of every file under data/ and reports/."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in ("data", "reports") for path in sorted((root / folder).rglob("*")) if path.is_file()}


def run_stage(root: Path, *command: str, env=None, preexec_fn=None) -> subprocess.CompletedProcess:
    stage, *args = command
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", *args], cwd=root, capture_output=True, text=True,
                          env=os.environ | (env or {}), preexec_fn=preexec_fn)


def stage_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip() and not TENSORFLOW_CHATTER.match(line)]


def fails_clearly(result, *expected: str) -> str:
    """The stage exited 2 with exactly one line on stderr, an `error:` that contains each of `expected`."""
    lines = stage_lines(result)
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@contextmanager
def changed_params(root: Path, edit):
    """params.yaml as `edit` makes it (from the parsed file or its text), put back afterwards."""
    path = root / "params.yaml"
    original = path.read_text()
    try:
        if isinstance(edit, str):
            path.write_text(edit)
        else:
            raw = yaml.safe_load(original)
            edit(raw)
            path.write_text(yaml.safe_dump(raw, sort_keys=False))
        yield
    finally:
        path.write_text(original)


# --- bad params: every key wrong in type, range, presence; names; duplicates; the YAML itself ------

def setter(*keys, value):
    def edit(raw):
        node = raw
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


def remover(*keys):
    def edit(raw):
        node = raw
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return edit


def renamed_experiment(name):
    def edit(raw):
        raw["experiments"][name] = raw["experiments"].pop("linear_mnist")
    return edit


def every_experiment(key, value):
    def edit(raw):
        for exp in [raw["defaults"], *raw["experiments"].values()]:
            exp[key] = value
    return edit


def twice(text, key_line):
    """The params text with one line repeated right after itself (a key given twice)."""
    assert key_line in text
    return text.replace(key_line, key_line + key_line.split(":")[0] + ": " + key_line.split(":", 1)[1].strip() + "\n", 1)


EXP = ("experiments", "mlp_translated")
BAD_PARAMS = [
    # (id, stage command, edit, texts the error must contain)
    ("unknown section", ("translate",), setter("trian", value={}), ["trian: unknown key", "allowed: data,"]),
    ("missing section", ("translate",), remover("invariance"), ["invariance: missing"]),
    ("missing defaults", ("translate",), remover("defaults"), ["defaults: missing"]),
    ("data not a mapping", ("translate",), setter("data", value=[1, 2]), ["data = [1, 2]"]),
    ("unknown source", ("translate",), setter("data", "sources", value=["keras", "ftp"]), ["data.sources[1] = 'ftp'", "'local', 'keras'"]),
    ("repeated source", ("translate",), setter("data", "sources", value=["keras", "keras"]), ["data.sources", "at most once"]),
    ("no source", ("translate",), setter("data", "sources", value=[]), ["data.sources = []"]),
    ("sources not a list", ("translate",), setter("data", "sources", value=7), ["data.sources = 7"]),
    ("idx_dir a number", ("translate",), setter("data", "idx_dir", value=3), ["data.idx_dir = 3"]),
    ("validation size 0", ("translate",), setter("data", "validation_size", value=0), ["data.validation_size = 0", "greater than or equal to 1"]),
    ("validation size negative", ("translate",), setter("data", "validation_size", value=-1), ["data.validation_size = -1"]),
    ("validation size a string", ("translate",), setter("data", "validation_size", value="100"), ["data.validation_size = '100'", "integer"]),
    ("validation size a float", ("translate",), setter("data", "validation_size", value=1.5), ["data.validation_size = 1.5"]),
    ("validation size all digits", ("translate",), setter("data", "validation_size", value=600), ["data.validation_size = 600", "< 600"]),
    ("unknown data key", ("translate",), setter("data", "mirror", value="x"), ["data.mirror: unknown key", "allowed: sources, idx_dir, validation_size"]),
    ("canvas below 28", ("translate",), setter("translate", "canvas", value=27), ["translate.canvas = 27", "greater than or equal to 28"]),
    ("canvas a string", ("translate",), setter("translate", "canvas", value="40"), ["translate.canvas = '40'"]),
    ("canvas a bool", ("translate",), setter("translate", "canvas", value=True), ["translate.canvas = True"]),
    ("canvas too large for memory", ("translate",), setter("translate", "canvas", value=10000), ["translate.canvas = 10000", "TiB", "this machine has"]),
    ("unknown offsets", ("translate",), setter("translate", "offsets", value="half"), ["translate.offsets = 'half'", "'full' or 'notebook'"]),
    ("negative seed", ("translate",), setter("translate", "seed", value=-5), ["translate.seed = -5"]),
    ("missing seed", ("translate",), remover("translate", "seed"), ["translate.seed: missing"]),
    ("unknown model", ("train", "mlp_translated"), setter(*EXP, "model", value="resnet"), ["experiments.mlp_translated.model = 'resnet'"]),
    ("unknown optimizer", ("train", "mlp_translated"), setter(*EXP, "optimizer", value="lbfgs"), [".optimizer = 'lbfgs'", "'sgd' or 'adam'"]),
    ("zero learning rate", ("train", "mlp_translated"), setter(*EXP, "learning_rate", value=0), [".learning_rate = 0", "greater than 0"]),
    ("negative learning rate", ("train", "mlp_translated"), setter(*EXP, "learning_rate", value=-0.1), [".learning_rate = -0.1"]),
    ("infinite learning rate", ("train", "mlp_translated"), setter(*EXP, "learning_rate", value=float("inf")), [".learning_rate = inf", "finite"]),
    ("learning rate not a number", ("train", "mlp_translated"), setter(*EXP, "learning_rate", value=float("nan")), [".learning_rate = nan", "finite"]),
    ("learning rate a word", ("train", "mlp_translated"), setter(*EXP, "learning_rate", value="fast"), [".learning_rate = 'fast'"]),
    ("unknown schedule", ("train", "mlp_translated"), setter(*EXP, "schedule", value="linear"), [".schedule = 'linear'"]),
    ("negative warm-up", ("train", "mlp_translated"), setter(*EXP, "warmup_epochs", value=-1), [".warmup_epochs = -1"]),
    ("batch size 0", ("train", "mlp_translated"), setter(*EXP, "batch_size", value=0), [".batch_size = 0"]),
    ("batch size a float", ("train", "mlp_translated"), setter(*EXP, "batch_size", value=2.5), [".batch_size = 2.5"]),
    ("epochs 0", ("train", "mlp_translated"), setter(*EXP, "epochs", value=0), [".epochs = 0"]),
    ("max_steps 0", ("train", "mlp_translated"), setter(*EXP, "max_steps", value=0), [".max_steps = 0"]),
    ("patience 0", ("train", "mlp_translated"), setter(*EXP, "patience", value=0), [".patience = 0"]),
    ("target accuracy above 1", ("train", "mlp_translated"), setter(*EXP, "target_accuracy", value=1.5), [".target_accuracy = 1.5"]),
    ("target accuracy 0", ("train", "mlp_translated"), setter(*EXP, "target_accuracy", value=0), [".target_accuracy = 0"]),
    ("negative max_seconds", ("train", "mlp_translated"), setter(*EXP, "max_seconds", value=-1), [".max_seconds = -1"]),
    ("negative experiment seed", ("train", "mlp_translated"), setter(*EXP, "seed", value=-1), [".seed = -1"]),
    ("unknown placement", ("train", "mlp_translated"), setter(*EXP, "placement", value="random"), [".placement = 'random'"]),
    ("unknown data file", ("train", "mlp_translated"), setter(*EXP, "data", value="rotated"), [".data = 'rotated'"]),
    ("unknown experiment key", ("train", "mlp_translated"), setter(*EXP, "lr", value=0.1), ["experiments.mlp_translated.lr: unknown key", "allowed: data, placement"]),
    ("missing experiment key", ("train", "mlp_translated"), remover(*EXP, "seed"), ["experiments.mlp_translated.seed: missing"]),
    ("moving centred digits", ("train", "linear_mnist"), setter("experiments", "linear_mnist", "placement", value="fresh"), ["experiments.linear_mnist.placement = 'fresh'", "only 'fixed'"]),
    ("no experiments", ("translate",), setter("experiments", value={}), ["experiments = {}"]),
    ("a bad default", ("translate",), setter("defaults", "optimizer", value="rmsprop"), ["defaults.optimizer = 'rmsprop'"]),
    ("name leaving the models folder", ("translate",), renamed_experiment("../models"), ["the name '../models' is not allowed", "lower-case letters"]),
    ("name leaving the project", ("translate",), renamed_experiment("../../victim"), ["the name '../../victim' is not allowed"]),
    ("name with markup", ("translate",), renamed_experiment("<b>x</b>"), ["the name '<b>x</b>' is not allowed"]),
    ("name in capitals", ("translate",), renamed_experiment("Linear"), ["the name 'Linear' is not allowed"]),
    ("name starting with a digit", ("translate",), renamed_experiment("1st"), ["the name '1st' is not allowed"]),
    ("name too long", ("translate",), renamed_experiment("x" * 41), ["is not allowed", "1 to 40"]),
    ("name with a space", ("translate",), renamed_experiment("a b"), ["the name 'a b' is not allowed"]),
    ("invariance of centred digits", ("translate",), setter("invariance", "experiments", value=["linear_mnist"]), ["invariance.experiments[0] = 'linear_mnist'", "translated data"]),
    ("invariance of an unknown experiment", ("translate",), setter("invariance", "experiments", value=["nope"]), ["invariance.experiments[0] = 'nope'"]),
    ("invariance twice", ("translate",), setter("invariance", "experiments", value=["mlp_translated", "mlp_translated"]), ["invariance.experiments", "at most once"]),
    ("invariance of no digit", ("translate",), setter("invariance", "test_digits", value=0), ["invariance.test_digits = 0"]),
    ("more invariance digits than the test set", ("invariance", "mlp_translated"), setter("invariance", "test_digits", value=500), ["invariance.test_digits = 500", "only 200"]),
    ("seeds without an experiment", ("translate",), remover("seeds", "cnn_centre"), ["no entry for the experiment 'cnn_centre'"]),
    ("seeds of an unknown experiment", ("translate",), setter("seeds", "nope", value=2), ["seeds.nope = 2: not an experiment"]),
    ("no seed run", ("seeds", "linear_mnist"), setter("seeds", "linear_mnist", value=0), ["seeds.linear_mnist = 0", "greater than or equal to 1"]),
    ("seed runs as text", ("seeds", "linear_mnist"), setter("seeds", "linear_mnist", value="5"), ["seeds.linear_mnist = '5'", "integer"]),
    ("not a mapping at all", ("translate",), "- just\n- a list\n", ["params.yaml: must be a mapping"]),
    ("empty file", ("translate",), "", ["params.yaml: must be a mapping"]),
    ("broken YAML", ("translate",), "data: [unclosed\n", ["params.yaml, line 2: expected ',' or ']'"]),
]


@pytest.mark.parametrize("command, edit, expected", [case[1:] for case in BAD_PARAMS], ids=[c[0] for c in BAD_PARAMS])
def test_bad_params_stop_the_stage_with_one_line_and_change_nothing(project, command, edit, expected):
    before = outputs(project)
    with changed_params(project, edit):
        fails_clearly(run_stage(project, *command), *expected)
    assert outputs(project) == before


@pytest.mark.parametrize("key_line", ["  canvas: 32\n", "    learning_rate: 0.002\n", "translate:\n"])
def test_a_key_given_twice_is_refused_with_its_line(project, key_line):
    text = (project / "params.yaml").read_text()
    line = text[:text.index(key_line)].count("\n") + 2
    with changed_params(project, twice(text, key_line)):
        fails_clearly(run_stage(project, "translate"), f"params.yaml, line {line}",
                      f"the key '{key_line.split(':')[0].strip()}' appears twice")


def test_wrong_arguments_say_how_to_call_the_stage(project):
    for command, usage in ((("train",), "usage: python -m stages.train <experiment>"),
                           (("evaluate", "a", "b"), "usage: python -m stages.evaluate <experiment>"),
                           (("translate", "x"), "usage: python -m stages.translate")):
        result = run_stage(project, *command)
        assert result.returncode == 2 and stage_lines(result) == [usage]
    fails_clearly(run_stage(project, "train", "nope"), "error: train@nope: unknown experiment 'nope'; params.yaml "
                                                       "defines: linear_mnist, mlp_translated")


# --- missing and corrupt inputs, for every stage --------------------------------------------

def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def random_bytes(data: bytes) -> bytes:
    return np.random.default_rng(0).bytes(max(len(data), 100))


def replaced_by(content: bytes):
    return lambda data: content


def npz_without(name: str):
    def damage(data: bytes) -> bytes:
        import io

        with np.load(io.BytesIO(data)) as npz:
            arrays = {key: npz[key] for key in npz.files if key != name}
        out = io.BytesIO()
        np.savez(out, **arrays)
        return out.getvalue()
    return damage


@contextmanager
def damaged(root: Path, relative: str, damage):
    """The file broken by `damage` (None: removed) for the duration of the block."""
    path = root / relative
    original = path.read_bytes()
    try:
        if damage is None:
            path.unlink()
        else:
            path.write_bytes(damage(original))
        yield
    finally:
        path.write_bytes(original)


CORRUPT_INPUTS = [
    ("translate: raw MNIST truncated", ("translate",), "data/raw/mnist.npz", truncated,
     ["data/raw/mnist.npz is not readable", "run `dvc repro download`", "`dvc checkout data/raw/mnist.npz`"]),
    ("translate: raw MNIST random bytes", ("translate",), "data/raw/mnist.npz", random_bytes, ["data/raw/mnist.npz is not readable"]),
    ("translate: raw MNIST missing", ("translate",), "data/raw/mnist.npz", None, ["data/raw/mnist.npz is missing", "dvc repro download"]),
    ("translate: raw MNIST without test images", ("translate",), "data/raw/mnist.npz", npz_without("x_test"), ["no array x_test"]),
    ("train: translated data truncated", ("train", "mlp_translated"), "data/translated/translated.npz", truncated,
     ["data/translated/translated.npz is not readable", "dvc repro translate"]),
    ("train: centred data random bytes", ("train", "linear_mnist"), "data/translated/centred.npz", random_bytes, ["data/translated/centred.npz is not readable"]),
    ("train: data without labels", ("train", "linear_mnist"), "data/translated/centred.npz", npz_without("y_train"), ["no array y_train"]),
    ("evaluate: model truncated", ("evaluate", "linear_mnist"), "data/models/linear_mnist.keras", truncated,
     ["data/models/linear_mnist.keras is not readable", "dvc repro train@linear_mnist"]),
    ("evaluate: model missing", ("evaluate", "linear_mnist"), "data/models/linear_mnist.keras", None, ["data/models/linear_mnist.keras is missing"]),
    ("evaluate: training summary not JSON", ("evaluate", "linear_mnist"), "data/training/linear_mnist/metrics.json",
     replaced_by(b"{not json"), ["data/training/linear_mnist/metrics.json is not readable", "dvc repro train@linear_mnist"]),
    ("evaluate: training summary incomplete", ("evaluate", "linear_mnist"), "data/training/linear_mnist/metrics.json",
     replaced_by(b'{"epochs": 1}'), ["no steps, seconds, stopped_by, params"]),
    ("invariance: model random bytes", ("invariance", "mlp_translated"), "data/models/mlp_translated.keras", random_bytes,
     ["data/models/mlp_translated.keras is not readable"]),
    ("invariance: centred data missing", ("invariance", "mlp_translated"), "data/translated/centred.npz", None, ["data/translated/centred.npz is missing"]),
    ("compare: predictions missing", ("compare",), "reports/predictions/mlp_translated.csv", None,
     ["reports/predictions/mlp_translated.csv is missing", "dvc repro evaluate@mlp_translated"]),
    ("compare: predictions of another test set", ("compare",), "reports/predictions/cnn_centre.csv",
     replaced_by(b"index,actual,predicted,confidence\n0,1,1,0.9\n"),
     ["reports/predictions/cnn_centre.csv is not readable", "its labels are not the test set's"]),
    ("report: comparisons missing", ("report",), "reports/comparisons.json", None,
     ["reports/comparisons.json is missing", "dvc repro compare"]),
    ("seeds: own run's metrics missing", ("seeds", "linear_mnist"), "reports/metrics/linear_mnist.json", None,
     ["reports/metrics/linear_mnist.json is missing", "dvc repro evaluate@linear_mnist"]),
    ("seeds: data truncated", ("seeds", "linear_mnist"), "data/translated/centred.npz", truncated,
     ["data/translated/centred.npz is not readable"]),
    ("report: seed study missing", ("report",), "reports/metrics/seeds/linear_mnist.json", None,
     ["reports/metrics/seeds/linear_mnist.json is missing", "dvc repro seeds@linear_mnist"]),
    ("report: metrics not JSON", ("report",), "reports/metrics/mlp_translated.json", replaced_by(b"\x00\x01"),
     ["reports/metrics/mlp_translated.json is not readable", "dvc repro evaluate@mlp_translated", "git checkout --"]),
    ("report: invariance grid missing", ("report",), "reports/metrics/invariance/cnn_centre.json", None,
     ["reports/metrics/invariance/cnn_centre.json is missing", "dvc repro invariance@cnn_centre"]),
    ("report: predictions garbled", ("report",), "reports/predictions/cnn_centre.csv", replaced_by(b"index,actual,predicted,confidence\n1,2\n"),
     ["reports/predictions/cnn_centre.csv is not readable", "dvc repro evaluate@cnn_centre"]),
    ("report: training curve garbled", ("report",), "reports/training/linear_mnist/plots/metrics/train/loss.tsv",
     replaced_by(b"step\tloss\nx\ty\n"), ["reports/training/linear_mnist/plots/metrics/train/loss.tsv is not readable"]),
    ("report: model truncated", ("report",), "data/models/cnn_centre.keras", truncated, ["data/models/cnn_centre.keras is not readable"]),
]


@pytest.mark.parametrize("command, relative, damage, expected", [c[1:] for c in CORRUPT_INPUTS],
                         ids=[c[0] for c in CORRUPT_INPUTS])
def test_a_missing_or_corrupt_input_is_one_line_naming_the_file_and_what_to_do(project, command, relative, damage,
                                                                               expected):
    before = outputs(project)
    with damaged(project, relative, damage):
        fails_clearly(run_stage(project, *command), *expected)
    assert outputs(project) == before


def test_download_names_each_source_and_why_it_failed(project, tmp_path):
    idx = tmp_path / "idx"
    idx.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (idx / name).write_bytes(b"\x00\x00\x08\x03\x00\x00")  # an IDX header, cut short
    before = outputs(project)
    with changed_params(project, setter("data", "sources", value=["local"])):
        fails_clearly(run_stage(project, "download", env={"MNIST_IDX_DIR": str(idx)}),
                      "error: download: no MNIST source worked (local: failed:", "truncated IDX header")
    assert outputs(project) == before


# --- a full disk at each write, a read-only folder, too little memory ------------------------

def can_mount() -> str | None:
    """Why tmpfs mounts are not possible here, or None."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    probe = Path(f"/tmp/translated-mnist-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)], capture_output=True)
        if mounted.returncode:
            return f"this machine refuses tmpfs mounts ({mounted.stderr.decode().strip()})"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


NO_MOUNT = can_mount()
FILLER = ".filler"


@contextmanager
def full_disk(root: Path, relative: str, free: int = 0, read_only: bool = False):
    """root/relative, its files kept, on a tmpfs of its own with only `free` bytes left (or read-only)."""
    folder, saved = root / relative, root / ".saved" / relative
    folder.mkdir(parents=True, exist_ok=True)
    saved.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(saved)
    folder.mkdir()
    try:
        size = sum(path.stat().st_size for path in saved.rglob("*") if path.is_file()) + (8 << 20)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
        try:
            shutil.copytree(saved, folder, dirs_exist_ok=True)
            with open(folder / FILLER, "wb") as f:
                disk = os.statvfs(folder)
                os.posix_fallocate(f.fileno(), 0, max(1, disk.f_bavail * disk.f_frsize - free))
            if read_only:
                subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    finally:
        folder.rmdir()
        saved.rename(folder)


def leftovers(root: Path) -> list[str]:
    return [str(path) for path in root.rglob(".tmp-*")]


def without_checkpoints(snapshot: dict[str, str]) -> dict[str, str]:
    """Checkpoints are a training run's scratch, not an output; a filler is the test's own."""
    return {key: value for key, value in snapshot.items()
            if not key.startswith("data/checkpoints/") and not key.endswith(FILLER)}


DISK_FULL = [
    ("translate", ("translate",), "data/translated", 0, "data/translated/centred.npz"),
    ("train: checkpoint", ("train", "linear_mnist"), "data/checkpoints", 0, "data/checkpoints/linear_mnist/epoch-0001.npz"),
    ("train: model", ("train", "linear_mnist"), "data/models", 0, "data/models/linear_mnist.keras"),
    ("train: training log", ("train", "linear_mnist"), "data/training", 0, "data/training/linear_mnist"),
    ("evaluate: published log", ("evaluate", "linear_mnist"), "reports/training", 0, "reports/training/linear_mnist/"),
    ("evaluate: metrics", ("evaluate", "linear_mnist"), "reports/metrics", 0, "reports/metrics/linear_mnist.json"),
    ("evaluate: predictions", ("evaluate", "linear_mnist"), "reports/predictions", 0, "reports/predictions/linear_mnist.csv"),
    ("seeds", ("seeds", "linear_mnist"), "reports/metrics/seeds", 0, "reports/metrics/seeds/linear_mnist.json"),
    ("invariance", ("invariance", "mlp_translated"), "reports/metrics/invariance", 0, "reports/metrics/invariance/mlp_translated.json"),
    ("report", ("report",), "reports/figures", 0, "reports/figures/"),
]


@pytest.mark.skipif(NO_MOUNT is not None, reason=f"no full disk to test on: {NO_MOUNT}")
@pytest.mark.parametrize("command, folder, free, names", [c[1:] for c in DISK_FULL], ids=[c[0] for c in DISK_FULL])
def test_a_full_disk_is_one_line_and_overwrites_nothing(project, command, folder, free, names):
    before = without_checkpoints(outputs(project))
    with full_disk(project, folder, free):
        fails_clearly(run_stage(project, *command), "no space left on the device for " + names, "free some space")
        assert without_checkpoints(outputs(project)) == before and not leftovers(project)
    shutil.rmtree(project / "data/checkpoints", ignore_errors=True)


@pytest.mark.skipif(NO_MOUNT is not None, reason=f"no full disk to test on: {NO_MOUNT}")
def test_translate_replaces_both_datasets_or_neither(project):
    before = outputs(project)
    centred = (project / "data/translated/centred.npz").stat().st_size
    with full_disk(project, "data/translated", free=centred + (64 << 10)):  # room for one file, not two
        fails_clearly(run_stage(project, "translate"), "no space left on the device")
        assert without_checkpoints(outputs(project)) == without_checkpoints(before) and not leftovers(project)


@pytest.mark.skipif(NO_MOUNT is not None, reason=f"no read-only folder to test on: {NO_MOUNT}")
def test_a_read_only_output_folder_is_one_line(project):
    before = outputs(project)
    with full_disk(project, "reports/figures", free=1 << 20, read_only=True):
        fails_clearly(run_stage(project, "report"), "no permission to write reports/figures/", "Read-only file system")
    assert outputs(project) == before


def test_too_little_memory_is_one_line(project):
    """translate, with 20 MB more address space than its imports took: placing digits on a large canvas fails."""
    capped = ("import re, resource, runpy; from stages import canvas, cli, files, params, paths; "
              "used = int(re.search(r'VmSize:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024; "
              "resource.setrlimit(resource.RLIMIT_AS, (used + (20 << 20),) * 2); "
              "runpy.run_module('stages.translate', run_name='__main__', alter_sys=True)")
    before = outputs(project)
    with changed_params(project, setter("translate", "canvas", value=200)):
        result = subprocess.run([sys.executable, "-c", capped], cwd=project, capture_output=True, text=True)
        fails_clearly(result, "error: translate: not enough memory")
    assert outputs(project) == before


# --- training that fails, is killed or interrupted ------------------------------------------

@pytest.mark.parametrize("changes, expected", [
    ({"learning_rate": 1e6}, "train@mlp_translated: training diverged (the loss became not finite or exploded)"),
    ({"learning_rate": 1e-9}, "train@mlp_translated: training learned nothing: validation accuracy"),
], ids=["diverging", "learning nothing"])
def test_a_failed_training_run_keeps_the_last_model_and_log(project, changes, expected):
    before = outputs(project)
    with changed_params(project, lambda raw: raw["experiments"]["mlp_translated"].update(changes)):
        fails_clearly(run_stage(project, "train", "mlp_translated"), expected,
                      "nothing was saved (`dvc checkout train@mlp_translated` restores the last committed model)")
    assert outputs(project) == before and not (project / "data/checkpoints/mlp_translated").exists()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill -9", "Ctrl-C"])
def test_training_stopped_mid_run_resumes_to_the_same_bytes(project, sig):
    name = "cnn_centre"
    before = outputs(project)
    state = project / f"data/checkpoints/{name}/state.json"
    # Ctrl-C as a terminal delivers it, even where this run inherited SIGINT ignored (a shell's background job)
    process = subprocess.Popen([sys.executable, "-m", "stages.train", name], cwd=project, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(sig)
    _, stderr = process.communicate()
    assert process.returncode == (-9 if sig == signal.SIGKILL else 130), stderr[-2000:]
    stopped_at = json.loads(state.read_text())["epoch"]
    assert 1 <= stopped_at < 4
    assert without_checkpoints(outputs(project)) == before  # nothing half-written
    if sig == signal.SIGINT:
        assert [line for line in stderr.splitlines() if "interrupted" in line] == [
            f"train@{name}: interrupted; run it again to continue (training resumes from its last epoch)"]

    resumed = run_stage(project, "train", name)
    assert resumed.returncode == 0 and f"resuming {name} after epoch {stopped_at} of 4" in resumed.stdout
    log = f"data/training/{name}/metrics.json"
    assert {k: v for k, v in outputs(project).items() if k != log} == {k: v for k, v in before.items() if k != log}
    summary = json.loads((project / log).read_text())
    assert summary["steps"] == 80 and summary["epochs"] == 4  # only the time it took may differ


def test_two_repros_at_once_the_second_stops_at_dvcs_lock(project_copy):
    dvc = str(Path(sys.executable).parent / "dvc")
    with changed_params(project_copy, setter("experiments", "cnn_gap_translated", "epochs", value=5)):
        first = subprocess.Popen([dvc, "repro"], cwd=project_copy, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, env=user_env())
        for line in first.stdout:  # wait until it trains, reading the data a second repro would check
            if line.startswith("Running stage 'train@"):
                break
        second = sh("dvc", "repro", cwd=project_copy, check=False)
        out = line + first.communicate()[0]
        assert first.returncode == 0, out
        assert second.returncode != 0 and "is busy, it is being blocked by" in second.stderr, second.stderr
        assert "Data and pipelines are up to date" in sh("dvc", "repro", cwd=project_copy).stdout

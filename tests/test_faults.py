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
    ("unknown section", ("translate", "mnist"), setter("trian", value={}), ["trian: unknown key", "allowed: data,"]),
    ("missing section", ("translate", "mnist"), remover("invariance"), ["invariance: missing"]),
    ("missing defaults", ("translate", "mnist"), remover("defaults"), ["defaults: missing"]),
    ("data not a mapping", ("translate", "mnist"), setter("data", value=[1, 2]), ["data = [1, 2]"]),
    ("unknown source", ("translate", "mnist"), setter("data", "sources", value=["keras", "ftp"]), ["data.sources[1] = 'ftp'", "'local', 'keras'"]),
    ("repeated source", ("translate", "mnist"), setter("data", "sources", value=["keras", "keras"]), ["data.sources", "at most once"]),
    ("no source", ("translate", "mnist"), setter("data", "sources", value=[]), ["data.sources = []"]),
    ("sources not a list", ("translate", "mnist"), setter("data", "sources", value=7), ["data.sources = 7"]),
    ("idx_dir a number", ("translate", "mnist"), setter("data", "idx_dir", value=3), ["data.idx_dir = 3"]),
    ("validation size 0", ("translate", "mnist"), setter("data", "validation_size", value=0), ["data.validation_size = 0", "greater than or equal to 1"]),
    ("validation size negative", ("translate", "mnist"), setter("data", "validation_size", value=-1), ["data.validation_size = -1"]),
    ("validation size a string", ("translate", "mnist"), setter("data", "validation_size", value="100"), ["data.validation_size = '100'", "integer"]),
    ("validation size a float", ("translate", "mnist"), setter("data", "validation_size", value=1.5), ["data.validation_size = 1.5"]),
    ("validation size all digits", ("translate", "mnist"), setter("data", "validation_size", value=600), ["data.validation_size = 600", "< 600"]),
    ("unknown data key", ("translate", "mnist"), setter("data", "mirror", value="x"), ["data.mirror: unknown key", "allowed: sources, idx_dir, validation_size"]),
    ("canvas below 28", ("translate", "mnist"), setter("translate", "canvas", value=27), ["translate.canvas = 27", "greater than or equal to 28"]),
    ("canvas a string", ("translate", "mnist"), setter("translate", "canvas", value="40"), ["translate.canvas = '40'"]),
    ("canvas a bool", ("translate", "mnist"), setter("translate", "canvas", value=True), ["translate.canvas = True"]),
    ("canvas too large for memory", ("translate", "mnist"), setter("translate", "canvas", value=10000), ["translate.canvas = 10000", "TiB", "this machine has"]),
    ("unknown offsets", ("translate", "mnist"), setter("translate", "offsets", value="half"), ["translate.offsets = 'half'", "'full' or 'notebook'"]),
    ("negative seed", ("translate", "mnist"), setter("translate", "seed", value=-5), ["translate.seed = -5"]),
    ("missing seed", ("translate", "mnist"), remover("translate", "seed"), ["translate.seed: missing"]),
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
    ("no experiments", ("translate", "mnist"), setter("experiments", value={}), ["experiments = {}"]),
    ("a bad default", ("translate", "mnist"), setter("defaults", "optimizer", value="rmsprop"), ["defaults.optimizer = 'rmsprop'"]),
    ("name leaving the models folder", ("translate", "mnist"), renamed_experiment("../models"), ["the name '../models' is not allowed", "lower-case letters"]),
    ("name leaving the project", ("translate", "mnist"), renamed_experiment("../../victim"), ["the name '../../victim' is not allowed"]),
    ("name with markup", ("translate", "mnist"), renamed_experiment("<b>x</b>"), ["the name '<b>x</b>' is not allowed"]),
    ("name in capitals", ("translate", "mnist"), renamed_experiment("Linear"), ["the name 'Linear' is not allowed"]),
    ("name starting with a digit", ("translate", "mnist"), renamed_experiment("1st"), ["the name '1st' is not allowed"]),
    ("name too long", ("translate", "mnist"), renamed_experiment("x" * 41), ["is not allowed", "1 to 40"]),
    ("name with a space", ("translate", "mnist"), renamed_experiment("a b"), ["the name 'a b' is not allowed"]),
    ("invariance of centred digits", ("translate", "mnist"), setter("invariance", "experiments", value=["linear_mnist"]), ["invariance.experiments[0] = 'linear_mnist'", "translated data"]),
    ("invariance of an unknown experiment", ("translate", "mnist"), setter("invariance", "experiments", value=["nope"]), ["invariance.experiments[0] = 'nope'"]),
    ("invariance twice", ("translate", "mnist"), setter("invariance", "experiments", value=["mlp_translated", "mlp_translated"]), ["invariance.experiments", "at most once"]),
    ("invariance of no digit", ("translate", "mnist"), setter("invariance", "test_digits", value=0), ["invariance.test_digits = 0"]),
    ("more invariance digits than the test set", ("invariance", "mlp_translated"), setter("invariance", "test_digits", value=500), ["invariance.test_digits = 500", "only 200"]),
    ("seeds without an experiment", ("translate", "mnist"), remover("seeds", "cnn_centre"), ["no entry for the experiment 'cnn_centre'"]),
    ("seeds of an unknown experiment", ("translate", "mnist"), setter("seeds", "nope", value=2), ["seeds.nope = 2: not an experiment"]),
    ("no seed run", ("seeds", "linear_mnist"), setter("seeds", "linear_mnist", value=0), ["seeds.linear_mnist = 0", "greater than or equal to 1"]),
    ("seed runs as text", ("seeds", "linear_mnist"), setter("seeds", "linear_mnist", value="5"), ["seeds.linear_mnist = '5'", "integer"]),
    ("not a mapping at all", ("translate", "mnist"), "- just\n- a list\n", ["params.yaml: must be a mapping"]),
    ("empty file", ("translate", "mnist"), "", ["params.yaml: must be a mapping"]),
    # the parser's own words: "expected ..." in Python, "did not find expected ..." in ruamel.yaml's C parser
    ("broken YAML", ("translate", "mnist"), "data: [unclosed\n", ["params.yaml, line 2: ", "expected ',' or ']'"]),
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
        fails_clearly(run_stage(project, "translate", "mnist"), f"params.yaml, line {line}",
                      f"the key '{key_line.split(':')[0].strip()}' appears twice")


def test_wrong_arguments_say_how_to_call_the_stage(project):
    for command, usage in ((("train",), "usage: python -m stages.train [-h] experiment"),
                           (("evaluate", "a", "b"), "usage: python -m stages.evaluate [-h] experiment"),
                           (("translate", "mnist", "x"), "usage: python -m stages.translate [-h] dataset")):
        result = run_stage(project, *command)
        assert result.returncode == 2 and stage_lines(result)[0] == usage, result.stderr
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
    ("translate: raw MNIST truncated", ("translate", "mnist"), "data/raw/mnist.npz", truncated,
     ["data/raw/mnist.npz is not readable", "run `dvc repro download@mnist`", "`dvc checkout data/raw/mnist.npz`"]),
    ("translate: raw MNIST random bytes", ("translate", "mnist"), "data/raw/mnist.npz", random_bytes, ["data/raw/mnist.npz is not readable"]),
    ("translate: raw MNIST missing", ("translate", "mnist"), "data/raw/mnist.npz", None, ["data/raw/mnist.npz is missing", "dvc repro download@mnist"]),
    ("translate: raw MNIST without test images", ("translate", "mnist"), "data/raw/mnist.npz", npz_without("x_test"), ["no array x_test"]),
    ("train: translated data truncated", ("train", "mlp_translated"), "data/translated/mnist/translated.npz", truncated,
     ["data/translated/mnist/translated.npz is not readable", "dvc repro translate@mnist"]),
    ("train: centred data random bytes", ("train", "linear_mnist"), "data/translated/mnist/centred.npz", random_bytes, ["data/translated/mnist/centred.npz is not readable"]),
    ("train: data without labels", ("train", "linear_mnist"), "data/translated/mnist/centred.npz", npz_without("y_train"), ["no array y_train"]),
    ("evaluate: model truncated", ("evaluate", "linear_mnist"), "data/models/linear_mnist.keras", truncated,
     ["data/models/linear_mnist.keras is not readable", "dvc repro train@linear_mnist"]),
    ("evaluate: model missing", ("evaluate", "linear_mnist"), "data/models/linear_mnist.keras", None, ["data/models/linear_mnist.keras is missing"]),
    ("evaluate: training summary not JSON", ("evaluate", "linear_mnist"), "data/training/linear_mnist/metrics.json",
     replaced_by(b"{not json"), ["data/training/linear_mnist/metrics.json is not readable", "dvc repro train@linear_mnist"]),
    ("evaluate: training summary incomplete", ("evaluate", "linear_mnist"), "data/training/linear_mnist/metrics.json",
     replaced_by(b'{"epochs": 1}'), ["no steps, stopped_by, params"]),
    ("invariance: model random bytes", ("invariance", "mlp_translated"), "data/models/mlp_translated.keras", random_bytes,
     ["data/models/mlp_translated.keras is not readable"]),
    ("invariance: centred data missing", ("invariance", "mlp_translated"), "data/translated/mnist/centred.npz", None, ["data/translated/mnist/centred.npz is missing"]),
    ("compare: predictions missing", ("compare",), "reports/predictions/mlp_translated.csv", None,
     ["reports/predictions/mlp_translated.csv is missing", "dvc repro evaluate@mlp_translated"]),
    ("compare: predictions of another test set", ("compare",), "reports/predictions/cnn_centre.csv",
     replaced_by(b"index,actual,predicted,confidence\n0,1,1,0.9\n"),
     ["reports/predictions/cnn_centre.csv is not readable", "its labels are not the test set's"]),
    ("report: comparisons missing", ("report",), "reports/comparisons.json", None,
     ["reports/comparisons.json is missing", "dvc repro compare"]),
    ("seeds: own run's metrics missing", ("seeds", "linear_mnist"), "reports/metrics/linear_mnist.json", None,
     ["reports/metrics/linear_mnist.json is missing", "dvc repro evaluate@linear_mnist"]),
    ("seeds: data truncated", ("seeds", "linear_mnist"), "data/translated/mnist/centred.npz", truncated,
     ["data/translated/mnist/centred.npz is not readable"]),
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
        fails_clearly(run_stage(project, "download", "mnist", env={"MNIST_IDX_DIR": str(idx)}),
                      "error: download@mnist: no MNIST source worked (local: failed:", "truncated IDX header")
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
    ("translate", ("translate", "mnist"), "data/translated", 0, "data/translated/mnist/centred.npz"),
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
    centred = (project / "data/translated/mnist/centred.npz").stat().st_size
    with full_disk(project, "data/translated", free=centred + (64 << 10)):  # room for one file, not two
        fails_clearly(run_stage(project, "translate", "mnist"), "no space left on the device")
        assert without_checkpoints(outputs(project)) == without_checkpoints(before) and not leftovers(project)


@pytest.mark.skipif(NO_MOUNT is not None, reason=f"no read-only folder to test on: {NO_MOUNT}")
def test_a_read_only_output_folder_is_one_line(project):
    before = outputs(project)
    with full_disk(project, "reports/figures", free=1 << 20, read_only=True):
        fails_clearly(run_stage(project, "report"), "no permission to write reports/figures/", "Read-only file system")
    assert outputs(project) == before


def test_too_little_memory_is_one_line(project):
    """translate, with 20 MB more address space than its imports took: placing digits on a large canvas fails."""
    capped = ("import re, resource, runpy, sys; from stages import canvas, cli, files, params, paths; "
              "sys.argv[1:] = ['mnist']; "
              "used = int(re.search(r'VmSize:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024; "
              "resource.setrlimit(resource.RLIMIT_AS, (used + (20 << 20),) * 2); "
              "runpy.run_module('stages.translate', run_name='__main__', alter_sys=True)")
    before = outputs(project)
    with changed_params(project, setter("translate", "canvas", value=200)):
        result = subprocess.run([sys.executable, "-c", capped], cwd=project, capture_output=True, text=True)
        fails_clearly(result, "error: translate@mnist: not enough memory")
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


# --- links: no stage writes, deletes or reads through a link inside its outputs ----------------

def tree_digest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@contextmanager
def linked(root: Path, relative: str, victim: Path):
    """root/relative replaced by a link to `victim`, a folder of someone else's files; put back afterwards."""
    path, saved = root / relative, root / ".saved-link" / relative
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "precious.txt").write_text("not the project's")
    (victim / "loss.tsv").write_text("a file with an output's name\n")
    saved.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.rename(saved)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(victim if relative.endswith(("/", "s")) or not Path(relative).suffix else victim / "loss.tsv")
        yield
    finally:
        path.unlink()
        if saved.exists():
            saved.rename(path)


# (id, stage command, the output (or a folder inside one) that is a link)
LINKED_OUTPUTS = [
    ("train: its log folder", ("train", "linear_mnist"), "data/training/linear_mnist"),
    ("train: a folder inside its log", ("train", "linear_mnist"), "data/training/linear_mnist/plots"),
    ("train: its checkpoint folder", ("train", "linear_mnist"), "data/checkpoints/linear_mnist"),
    ("train: its model file", ("train", "linear_mnist"), "data/models/linear_mnist.keras"),
    ("translate: a dataset file", ("translate", "mnist"), "data/translated/mnist/translated.npz"),
    ("download: the source record", ("download", "mnist"), "data/raw/mnist.json"),
    ("evaluate: the published log", ("evaluate", "linear_mnist"), "reports/training/linear_mnist"),
    ("evaluate: inside the published log", ("evaluate", "linear_mnist"), "reports/training/linear_mnist/plots"),
    ("evaluate: the metrics file", ("evaluate", "linear_mnist"), "reports/metrics/linear_mnist.json"),
    ("evaluate: the predictions", ("evaluate", "linear_mnist"), "reports/predictions/linear_mnist.csv"),
    ("seeds: its result", ("seeds", "linear_mnist"), "reports/metrics/seeds/linear_mnist.json"),
    ("invariance: its grid", ("invariance", "mlp_translated"), "reports/metrics/invariance/mlp_translated.json"),
    ("compare: its result", ("compare",), "reports/comparisons.json"),
    ("report: the figures folder", ("report",), "reports/figures"),
]


@pytest.mark.parametrize("command, relative", [c[1:] for c in LINKED_OUTPUTS], ids=[c[0] for c in LINKED_OUTPUTS])
def test_a_link_in_an_output_is_refused_before_anything_is_written_or_deleted(project, tmp_path, command, relative):
    victim = tmp_path / "elsewhere"
    with linked(project, relative, victim):
        before, theirs = outputs(project), tree_digest(victim)
        fails_clearly(run_stage(project, *command), f"{relative} is a link (to ", f"`rm {relative}`")
        assert tree_digest(victim) == theirs and outputs(project) == before
    shutil.rmtree(project / "data/checkpoints", ignore_errors=True)


def test_a_link_for_the_whole_data_folder_keeps_working(project_copy, tmp_path):
    """data/ on a bigger disk, as a user links it: every stage reads and writes through it as before."""
    elsewhere = tmp_path / "bigger-disk" / "data"
    elsewhere.parent.mkdir()
    (project_copy / "data").rename(elsewhere)
    (project_copy / "data").symlink_to(elsewhere)
    model = elsewhere / "models/linear_mnist.keras"
    before = model.read_bytes()
    result = run_stage(project_copy, "train", "linear_mnist")
    assert result.returncode == 0, result.stderr[-2000:]
    assert model.read_bytes() == before and (project_copy / "data").is_symlink()


# --- YAML as DVC reads it ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["null", "true", "1e3", "~", "0x1f", "2018-01-01"])
def test_an_experiment_name_that_yaml_reads_as_no_text_is_refused_in_one_line(project, name):
    text = (project / "params.yaml").read_text()
    assert "\n  mlp_translated:" in text
    before = outputs(project)
    with changed_params(project, text.replace("\n  mlp_translated:", f"\n  {name}:", 1)):
        fails_clearly(run_stage(project, "translate", "mnist"), f"the key {name!r} is read as ", "not as a name",
                      "as DVC reads it")
    assert outputs(project) == before


def test_a_refused_params_file_costs_no_committed_output_under_dvc_repro(project_copy):
    text = (project_copy / "params.yaml").read_text()
    (project_copy / "params.yaml").write_text(text.replace("\n  mlp_translated:", "\n  null:", 1))
    result = sh("dvc", "repro", cwd=project_copy, check=False)
    assert result.returncode != 0
    changed = sh("git", "status", "--porcelain", "--", "reports", cwd=project_copy).stdout
    assert changed == "", changed


def test_a_params_file_that_is_not_utf8_is_one_line(project):
    text = (project / "params.yaml").read_text()
    before = outputs(project)
    path = project / "params.yaml"
    try:
        path.write_bytes(("# caf\xe9\n" + text).encode("latin-1"))
        fails_clearly(run_stage(project, "translate", "mnist"), "params.yaml, line 1: not UTF-8 text (byte 0xe9)")
    finally:
        path.write_text(text)
    assert outputs(project) == before


def test_a_yaml_alias_bomb_is_one_short_line(project):
    levels = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    with changed_params(project, "l0: &l0 [x, x, x, x, x, x, x, x, x]\n" + levels):
        line = fails_clearly(run_stage(project, "translate", "mnist"), "once its aliases (*name) are expanded")
    assert len(line) < 300


@pytest.mark.parametrize("key, value, expected", [
    ("seed", 2**32, "must be less than 4294967296"),
    ("learning_rate", "1e-3", None),  # YAML 1.2: a number, as DVC reads it
], ids=["seed of 2**32", "learning rate 1e-3"])
def test_values_are_read_and_bounded_as_dvc_and_keras_take_them(project, key, value, expected):
    text = (project / "params.yaml").read_text()
    line = next(line for line in text.splitlines() if line.startswith(f"  {key}: "))
    with changed_params(project, text.replace(line, f"  {key}: {value}", 1)):
        result = run_stage(project, "seeds", "cnn_centre")
        if expected:
            fails_clearly(result, f"seed = {value}", expected)
        else:
            assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("backend, expected", [
    ("nonsense", "KERAS_BACKEND = 'nonsense': not a Keras backend"),
    ("openvino", "KERAS_BACKEND = 'openvino', but openvino is not installed"),
], ids=["unknown", "not installed"])
def test_a_keras_backend_that_cannot_load_is_one_line(project, backend, expected):
    result = run_stage(project, "evaluate", "linear_mnist", env={"KERAS_BACKEND": backend})
    assert result.returncode == 2 and stage_lines(result) == [next(line for line in stage_lines(result))]
    assert expected in result.stderr and "Traceback" not in result.stderr


# --- inputs that read but hold the wrong data -------------------------------------------------

def npz_changed(**changes):
    """An .npz damage: arrays replaced by what each function makes of the old array."""
    def damage(data: bytes) -> bytes:
        import io

        with np.load(io.BytesIO(data)) as npz:
            arrays = {key: npz[key] for key in npz.files}
        arrays |= {key: change(arrays[key]) for key, change in changes.items()}
        out = io.BytesIO()
        np.savez(out, **arrays)
        return out.getvalue()
    return damage


def json_changed(change):
    return lambda data: json.dumps(change(json.loads(data))).encode()


def first_prediction(predicted=None, confidence=None):
    """A predictions CSV damage: the first row's predicted class or confidence replaced."""
    def damage(data: bytes) -> bytes:
        header, first, *rest = data.decode().split("\n")
        index, actual, old_predicted, old_confidence = first.split(",")
        first = ",".join([index, actual, predicted or old_predicted, confidence or old_confidence])
        return "\n".join([header, first, *rest]).encode()
    return damage


def label(value):
    def change(labels):
        labels = labels.astype(np.int16)
        labels[3] = value
        return labels
    return change


WRONG_DATA = [
    ("train: a label of 10", ("train", "mlp_translated"), "data/translated/mnist/translated.npz",
     npz_changed(y_train=label(10)), ["data/translated/mnist/translated.npz holds the wrong data", "y_train has labels from 0 to 10"]),
    ("train: a negative label", ("train", "linear_mnist"), "data/translated/mnist/centred.npz",
     npz_changed(y_val=label(-1)), ["y_val has labels from -1", "dvc repro translate@mnist"]),
    ("train: images as floats with NaN", ("train", "linear_mnist"), "data/translated/mnist/centred.npz",
     npz_changed(x_train=lambda x: np.where(x > 100, np.nan, x.astype(np.float64))), ["x_train is float64", "expected uint8"]),
    ("train: fewer labels than images", ("train", "mlp_translated"), "data/translated/mnist/translated.npz",
     npz_changed(y_train=lambda y: y[:-5]), ["images in x_train but", "labels in y_train"]),
    ("train: an offset off the canvas", ("train", "mlp_translated"), "data/translated/mnist/translated.npz",
     npz_changed(offsets_train=lambda o: o + 3), ["offsets_train runs from"]),
    ("evaluate: test images of another size", ("evaluate", "linear_mnist"), "data/translated/mnist/centred.npz",
     npz_changed(x_test=lambda x: np.pad(x, ((0, 0), (1, 1), (1, 1)))), ["x_test has images of 30x30, expected 28"]),
    ("translate: raw labels out of range", ("translate", "mnist"), "data/raw/mnist.npz",
     npz_changed(y_test=label(12)), ["data/raw/mnist.npz holds the wrong data", "y_test has labels from 0 to 12"]),
    ("translate: raw images of another dtype", ("translate", "mnist"), "data/raw/mnist.npz",
     npz_changed(x_train=lambda x: x.astype(np.int32) * 300), ["x_train is int32"]),
    ("evaluate: a model of another architecture", ("evaluate", "linear_mnist"), "data/models/linear_mnist.keras",
     lambda data: (Path(os.environ["FAULTS_PROJECT"]) / "data/models/mlp_translated.keras").read_bytes(),
     ["data/models/linear_mnist.keras holds the wrong data", "model 'mlp' for 32x32x1 images", "expected model 'linear'"]),
    ("report: a model of another architecture", ("report",), "data/models/cnn_centre.keras",
     lambda data: (Path(os.environ["FAULTS_PROJECT"]) / "data/models/cnn_gap_translated.keras").read_bytes(),
     ["data/models/cnn_centre.keras holds the wrong data", "expected model 'cnn'"]),
    ("report: an invariance grid of the wrong shape", ("report",), "reports/metrics/invariance/cnn_centre.json",
     json_changed(lambda d: d | {"grid": d["grid"][:-1]}), ["invariance/cnn_centre.json holds the wrong data", "grid must be 5x5"]),
    ("report: an accuracy above 1", ("report",), "reports/metrics/mlp_translated.json",
     json_changed(lambda d: d | {"test_accuracy": 1.5}), ["mlp_translated.json holds the wrong data", "test_accuracy"]),
    ("report: a comparison without its p-value", ("report",), "reports/comparisons.json",
     json_changed(lambda d: d | {"pairs": {k: {kk: vv for kk, vv in v.items() if kk != "p_value"} for k, v in d["pairs"].items()}}),
     ["reports/comparisons.json holds the wrong data", "p_value"]),
    ("report: a seed study with a run missing", ("report",), "reports/metrics/seeds/linear_mnist.json",
     json_changed(lambda d: d | {"seeds": d["seeds"][:1]}), ["seeds/linear_mnist.json holds the wrong data", "runs = 2"]),
    ("seeds: own metrics as text", ("seeds", "linear_mnist"), "reports/metrics/linear_mnist.json",
     json_changed(lambda d: d | {"test_accuracy": "high"}), ["linear_mnist.json holds the wrong data", "test_accuracy"]),
    ("evaluate: a training summary with a step count of -1", ("evaluate", "linear_mnist"),
     "data/training/linear_mnist/metrics.json", json_changed(lambda d: d | {"steps": -1}), ["holds the wrong data", "steps"]),
    ("compare: a predicted class of 11", ("compare",), "reports/predictions/cnn_centre.csv", first_prediction("11"),
     ["reports/predictions/cnn_centre.csv holds the wrong data", "predicted classes from"]),
    ("report: a confidence above 1", ("report",), "reports/predictions/cnn_centre.csv", first_prediction(None, "1.5"),
     ["reports/predictions/cnn_centre.csv holds the wrong data", "confidence"]),
]


@pytest.mark.parametrize("command, relative, damage, expected", [c[1:] for c in WRONG_DATA], ids=[c[0] for c in WRONG_DATA])
def test_an_input_that_reads_but_is_wrong_is_one_line_naming_it(project, monkeypatch, command, relative, damage, expected):
    monkeypatch.setenv("FAULTS_PROJECT", str(project))
    before = outputs(project)
    with damaged(project, relative, damage):
        fails_clearly(run_stage(project, *command), *expected)
    assert outputs(project) == before
    shutil.rmtree(project / "data/checkpoints", ignore_errors=True)


# --- damaged checkpoints: moved aside, training starts over -----------------------------------

def train_until_checkpointed(root: Path, name: str) -> None:
    """Train `name` and kill it once it has written its first checkpoint."""
    state = root / f"data/checkpoints/{name}/state.json"
    process = subprocess.Popen([sys.executable, "-m", "stages.train", name], cwd=root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait()
    assert state.exists()


def state_changed(change):
    def damage(folder: Path) -> None:
        state = folder / "state.json"
        state.write_text(json.dumps(change(json.loads(state.read_text()))))
    return damage


DAMAGED_CHECKPOINTS = [
    ("state truncated", lambda folder: (folder / "state.json").write_bytes((folder / "state.json").read_bytes()[:40])),
    ("state not JSON", lambda folder: (folder / "state.json").write_bytes(b"\xff\xfe")),
    ("state a list", lambda folder: (folder / "state.json").write_text("[1, 2]")),
    ("epoch as text", state_changed(lambda s: s | {"epoch": "three"})),
    ("history shorter than the epoch", state_changed(lambda s: s | {"history": []})),
    ("variables outside the folder", state_changed(lambda s: s | {"variables": "../../raw/mnist.npz"})),
    ("epoch file missing", lambda folder: next(folder.glob("epoch-*.npz")).unlink()),
    ("epoch file truncated", lambda folder: next(folder.glob("epoch-*.npz")).write_bytes(b"PK\x03\x04")),
    ("epoch file of another model", lambda folder: np.savez(next(folder.glob("epoch-*.npz")), np.zeros(3))),
    ("best weights missing", lambda folder: (folder / "best.npz").unlink()),
]


@pytest.mark.parametrize("damage", [c[1] for c in DAMAGED_CHECKPOINTS], ids=[c[0] for c in DAMAGED_CHECKPOINTS])
def test_a_damaged_checkpoint_is_moved_aside_and_training_starts_over(project, damage):
    name = "cnn_centre"
    before = outputs(project)
    train_until_checkpointed(project, name)
    folder = project / f"data/checkpoints/{name}"
    damage(folder)
    result = run_stage(project, "train", name)
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in stage_lines(result) if "warning" in line]
    assert len(warnings) == 1 and f"moved the checkpoint to data/checkpoints/{name}/damaged/" in warnings[0], warnings
    assert "resuming" not in result.stdout
    log = f"data/training/{name}/metrics.json"
    assert {k: v for k, v in outputs(project).items() if k != log} == {k: v for k, v in before.items() if k != log}
    assert not folder.exists()  # cleared once training succeeded, what was set aside with it


# --- one trainer per checkpoint; a trainer whose parent has gone stops ---------------------------

def test_a_second_trainer_on_the_same_checkpoint_stops_in_one_line(project):
    name = "cnn_centre"
    with changed_params(project, setter("experiments", name, "epochs", value=200)):
        state = project / f"data/checkpoints/{name}/state.json"
        first = subprocess.Popen([sys.executable, "-m", "stages.train", name], cwd=project,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not state.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            second = run_stage(project, "train", name)
            fails_clearly(second, f"another training run (process {first.pid}) is using data/checkpoints/{name}",
                          f"kill {first.pid}")
            assert first.poll() is None
        finally:
            first.kill()
            first.wait()
    shutil.rmtree(project / "data/checkpoints", ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in "ZX"
    except OSError:
        return False


# dvc runs the command in $SHELL -c, else /bin/sh -c; dash (Debian's sh) and bash with a profile stay
# alive between dvc and the trainer, so the trainer's own parent outlives dvc.
@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_a_trainer_whose_dvc_repro_was_terminated_stops_at_its_next_checkpoint(project_copy, shell):
    name = "cnn_centre"
    with changed_params(project_copy, setter("experiments", name, "epochs", value=200)):
        state = project_copy / f"data/checkpoints/{name}/state.json"
        state.unlink(missing_ok=True)
        dvc = subprocess.Popen([str(Path(sys.executable).parent / "dvc"), "repro", "-s", "-f", f"train@{name}"],
                               cwd=project_copy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=user_env(SHELL=shell))
        deadline = time.monotonic() + 120
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        trainer = int((project_copy / f"data/checkpoints/{name}.lock").read_text())
        dvc.send_signal(signal.SIGTERM)  # as a CI runner's timeout does
        dvc.wait(timeout=30)
        deadline = time.monotonic() + 60
        while _running(trainer) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(trainer), "the trainer went on without its dvc repro"
        assert 1 <= json.loads(state.read_text())["epoch"] < 200  # its last checkpoint is kept to resume from


# --- leftovers and outputs replaced together ---------------------------------------------------

def test_temporary_files_of_a_killed_write_are_removed_by_the_next_run(project):
    dead = subprocess.run(["true"]).returncode or subprocess.Popen(["true"])
    dead.wait()
    leftover = project / f"data/models/.tmp-{dead.pid}-abc-linear_mnist.keras"
    alive = project / f"data/models/.tmp-{os.getpid()}-abc-linear_mnist.keras"  # a write still in progress
    leftover.write_bytes(b"half a model")
    alive.write_bytes(b"another process's model, half written")
    try:
        assert run_stage(project, "train", "linear_mnist").returncode == 0
        assert not leftover.exists() and alive.exists()
    finally:
        leftover.unlink(missing_ok=True)
        alive.unlink()


@pytest.mark.skipif(NO_MOUNT is not None, reason=f"no full disk to test on: {NO_MOUNT}")
def test_the_report_with_the_disk_filling_part_way_replaces_nothing(project):
    """Room for some of the figures, not all: the figures, report.md and index.html stay the last report's."""
    before = outputs(project)
    figures = sum(path.stat().st_size for path in (project / "reports/figures").iterdir())
    with full_disk(project, "reports/figures", free=figures // 3):
        fails_clearly(run_stage(project, "report"), "no space left on the device", "no output was overwritten")
        assert without_checkpoints(outputs(project)) == before and not leftovers(project)


# --- datasets (stages/registry.py) -----------------------------------------------------------------

BAD_DATASETS = [
    # (id, stage command, edit, texts the error must contain)
    ("unknown dataset of an experiment", ("train", "linear_mnist"), setter("experiments", "linear_mnist", "dataset",
                                                                           value="cifar"),
     ["experiments.linear_mnist.dataset = 'cifar': not a dataset of stages/registry.py; known: mnist, fashion_mnist"]),
    ("dataset not listed", ("train", "linear_mnist"), setter("datasets", value=["mnist"]),
     ["experiments.fashion_mlp_translated.dataset = 'fashion_mnist': not in `datasets` (mnist)"]),
    ("unknown dataset listed", ("train", "linear_mnist"), setter("datasets", value=["mnist", "svhn"]),
     ["datasets[1] = 'svhn': not a dataset of stages/registry.py"]),
    ("dataset listed twice", ("train", "linear_mnist"), setter("datasets", value=["mnist", "mnist"]),
     ["datasets = ['mnist', 'mnist']: each dataset at most once"]),
    ("no source of the dataset", ("download", "mnist"), setter("data", "sources", value=["zalando", "debian"]),
     ["data.sources = ['zalando', 'debian']: none is a source of MNIST; its sources: local, keras, torchvision, pypi"]),
]


@pytest.mark.parametrize("command, edit, expected", [c[1:] for c in BAD_DATASETS], ids=[c[0] for c in BAD_DATASETS])
def test_a_bad_dataset_setting_is_one_line_naming_the_key_and_the_known_datasets(project, command, edit, expected):
    before = outputs(project)
    with changed_params(project, edit):
        fails_clearly(run_stage(project, *command), *expected)
    assert outputs(project) == before


def test_downloading_an_unknown_dataset_names_the_registrys(project):
    fails_clearly(run_stage(project, "download", "cifar"),
                  "error: download@cifar: unknown dataset 'cifar'; stages/registry.py defines: mnist, fashion_mnist")

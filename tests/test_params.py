import copy
from pathlib import Path

import pytest
import yaml

from stages import params

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())


def load_with(tmp_path, change):
    raw = copy.deepcopy(DEFAULTS)
    change(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return params.load(path)


def test_the_committed_params_are_valid():
    p = params.load(REPO / "params.yaml")
    assert p.translate.canvas >= 28
    assert set(p.experiments) >= {"linear_mnist", "linear_translated", "mlp_translated", "cnn_translated"}


def first_experiment(raw):
    return raw["experiments"][next(iter(raw["experiments"]))]


BAD = [
    ("canvas below 28", lambda r: r["translate"].__setitem__("canvas", 27), r"translate\.canvas = 27: must be greater than or equal to 28"),
    ("canvas not an integer", lambda r: r["translate"].__setitem__("canvas", "40"), r"translate\.canvas = '40'"),
    ("canvas a bool", lambda r: r["translate"].__setitem__("canvas", True), r"translate\.canvas"),
    ("unknown offsets", lambda r: r["translate"].__setitem__("offsets", "half"), r"translate\.offsets = 'half': must be 'full' or 'notebook'"),
    ("unknown source", lambda r: r["data"].__setitem__("sources", ["keras", "ftp"]), r"data\.sources\[1\] = 'ftp': must be 'local', 'keras', 'torchvision' or 'pypi'"),
    ("repeated source", lambda r: r["data"].__setitem__("sources", ["keras", "keras"]), r"data\.sources"),
    ("empty sources", lambda r: r["data"].__setitem__("sources", []), r"data\.sources"),
    ("negative validation size", lambda r: r["data"].__setitem__("validation_size", -1), r"data\.validation_size = -1"),
    ("negative seed", lambda r: r["translate"].__setitem__("seed", -5), r"translate\.seed = -5"),
    ("unknown key", lambda r: r["translate"].__setitem__("canvass", 40), r"translate\.canvass: unknown key"),
    ("missing key", lambda r: r["translate"].pop("seed"), r"translate\.seed: missing"),
    ("unknown section", lambda r: r.__setitem__("trian", {}), r"^trian: unknown key; allowed: data, translate, defaults, experiments, invariance$"),
    ("unknown model", lambda r: first_experiment(r).__setitem__("model", "resnet"), r"experiments\.\w+\.model = 'resnet'"),
    ("unknown optimizer", lambda r: first_experiment(r).__setitem__("optimizer", "lbfgs"), r"\.optimizer = 'lbfgs'"),
    ("zero learning rate", lambda r: first_experiment(r).__setitem__("learning_rate", 0), r"\.learning_rate = 0: must be greater than 0"),
    ("negative learning rate", lambda r: first_experiment(r).__setitem__("learning_rate", -0.1), r"\.learning_rate = -0\.1"),
    ("batch size 0", lambda r: first_experiment(r).__setitem__("batch_size", 0), r"\.batch_size = 0: must be greater than or equal to 1"),
    ("max_steps 0", lambda r: first_experiment(r).__setitem__("max_steps", 0), r"\.max_steps = 0"),
    ("epochs 0", lambda r: first_experiment(r).__setitem__("epochs", 0), r"\.epochs = 0"),
    ("target accuracy above 1", lambda r: first_experiment(r).__setitem__("target_accuracy", 1.5), r"\.target_accuracy = 1\.5"),
    ("unknown experiment key", lambda r: first_experiment(r).__setitem__("lr", 0.1), r"experiments\.\w+\.lr: unknown key"),
    ("invariance of a centred-data model", lambda r: r["invariance"].__setitem__("experiments", ["linear_mnist"]), r"invariance\.experiments\[0\] = 'linear_mnist': must be one of the experiments on translated data"),
    ("invariance of an unknown experiment", lambda r: r["invariance"].__setitem__("experiments", ["cnn_translated", "nope"]), r"invariance\.experiments\[1\] = 'nope'"),
    ("invariance with no test digits", lambda r: r["invariance"].__setitem__("test_digits", 0), r"invariance\.test_digits = 0: must be greater than or equal to 1"),
    ("fresh placement on centred data", lambda r: r["experiments"].__setitem__("x", {**first_experiment(r), "data": "centred", "placement": "fresh"}), r"experiments\.x\.placement"),
]


@pytest.mark.parametrize("change, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_values_name_the_key_and_what_is_allowed(tmp_path, change, message):
    with pytest.raises(params.ParamsError, match=message) as error:
        load_with(tmp_path, change)
    assert "\n" not in str(error.value)


def test_unknown_experiment_lists_the_defined_ones():
    p = params.load(REPO / "params.yaml")
    with pytest.raises(params.ParamsError, match="unknown experiment 'nope'.*linear_mnist"):
        p.experiment("nope")


def test_a_stage_with_bad_params_exits_non_zero_with_one_line(tmp_path, monkeypatch, capsys):
    from stages import cli, translate

    load_with(tmp_path, lambda r: None)  # writes a valid file first
    (tmp_path / "params.yaml").write_text((tmp_path / "params.yaml").read_text().replace("canvas: 40", "canvas: 12"))
    monkeypatch.chdir(tmp_path)
    assert cli.run(translate.main, argv=[]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: translate: translate.canvas = 12") and "\n" not in err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("name", ["../models", "../../victim", "a/b", "<b>x</b>", "Upper", "1st", "", "x" * 41,
                                  "with space", ".hidden", 7])
def test_experiment_names_that_could_leave_their_folders_are_refused(tmp_path, name):
    with pytest.raises(params.ParamsError, match="is not allowed: 1 to 40 lower-case letters"):
        load_with(tmp_path, lambda r: r["experiments"].__setitem__(name, first_experiment(r)))


@pytest.mark.parametrize("name", ["../models", "..", ".", "a/b", "", "/etc"])
def test_paths_built_from_a_name_never_leave_their_folder(name):
    from stages import paths

    with pytest.raises(params.StageError, match="not a plain name"):
        paths.checkpoint_dir(name)
    if "/" in name:  # as a file stem, '..' is just a name: '...keras'
        with pytest.raises(params.StageError, match="not a plain name"):
            paths.model(name)
    assert paths.model("cnn_gap-2") == paths.Path("data/models/cnn_gap-2.keras")


def test_removing_a_folder_refuses_anything_but_an_entry_of_its_parent(tmp_path):
    from stages import files

    (tmp_path / "checkpoints" / "run").mkdir(parents=True)
    (tmp_path / "victim").mkdir()
    (tmp_path / "checkpoints" / "link").symlink_to(tmp_path / "victim")
    for bad in (tmp_path / "checkpoints" / ".." / "victim", tmp_path / "checkpoints", tmp_path / "checkpoints" / "link"):
        with pytest.raises(params.StageError, match="refusing to delete"):
            files.remove_tree(bad, tmp_path / "checkpoints")
    assert (tmp_path / "victim").is_dir()
    files.remove_tree(tmp_path / "checkpoints" / "run", tmp_path / "checkpoints")
    assert not (tmp_path / "checkpoints" / "run").exists()

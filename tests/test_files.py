import errno
import json
from pathlib import Path

import numpy as np
import pytest

from stages import files
from stages.cli import StageError


def test_outputs_written_together_are_all_new_or_all_as_they_were(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    files.write_all({a: b"new a", b: b"new b"})
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"new b")

    def dies(path):
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StageError, match=f"no space left on the device for {b}"):
        files.write_all({a: b"newer a", b: dies})
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"new b")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.txt", "sub"]  # no temporary file left


def test_an_error_that_is_not_the_users_is_not_disguised(tmp_path):
    with pytest.raises(ZeroDivisionError), files.atomic_path(tmp_path / "x") as tmp:
        tmp.write_text("x")
        raise ZeroDivisionError
    assert list(tmp_path.iterdir()) == []


def test_a_missing_or_corrupt_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(files.InputError, match=f"^{tmp_path}/none.json is missing: make it again"):
        files.read_json(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(files.InputError, match="bad.json is not readable"):
        files.read_json(tmp_path / "bad.json")
    (tmp_path / "part.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(files.InputError, match=r"part.json is not readable \(no b, c\)"):
        files.read_json(tmp_path / "part.json", required=("a", "b", "c"))
    files.save_npz(tmp_path / "x.npz", x=np.arange(3))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "x.npz").read_bytes()[:100])
    for name, required in (("cut.npz", ()), ("x.npz", ("y",))):
        with pytest.raises(files.InputError) as error:
            files.load_npz(tmp_path / name, required=required)
        assert "\n" not in str(error.value) and len(str(error.value)) < 400


def test_only_the_arrays_asked_for_are_read(tmp_path):
    files.save_npz(tmp_path / "x.npz", a=np.arange(3), b=np.ones(2))
    assert list(files.load_npz(tmp_path / "x.npz", only=("b",))) == ["b"]


def test_stale_files_are_removed_and_the_rest_kept(tmp_path):
    for name in ("keep.tsv", "old/stale.tsv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    files.remove_others(tmp_path, keep=[files.Path("keep.tsv")])
    assert [p.name for p in tmp_path.rglob("*.tsv")] == ["keep.tsv"]


def test_removing_a_folder_refuses_anything_but_an_entry_of_its_parent(tmp_path):
    (tmp_path / "checkpoints" / "run").mkdir(parents=True)
    (tmp_path / "victim").mkdir()
    (tmp_path / "checkpoints" / "link").symlink_to(tmp_path / "victim")
    checkpoints = tmp_path / "checkpoints"
    for bad in (checkpoints / ".." / "victim", checkpoints, checkpoints / "link"):
        with pytest.raises(StageError, match="refusing to delete"):
            files.remove_tree(bad, tmp_path / "checkpoints")
    assert (tmp_path / "victim").is_dir()
    files.remove_tree(tmp_path / "checkpoints" / "run", tmp_path / "checkpoints")
    assert not (tmp_path / "checkpoints" / "run").exists()


def test_a_sigterm_while_outputs_are_renamed_is_held_until_all_are_replaced(tmp_path, monkeypatch):
    """Outputs written together are renamed together even when SIGTERM comes between two renames."""
    import os
    import signal

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    files.write_all({a: b"old a", b: b"old b"})
    replace = os.replace

    def replace_then_signal(source, target):
        replace(source, target)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(os, "replace", replace_then_signal)
    caught = []
    previous = signal.signal(signal.SIGTERM, lambda sig, frame: caught.append((a.read_bytes(), b.read_bytes())))
    try:
        files.write_all({a: b"new a", b: b"new b"})
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert caught == [(b"new a", b"new b")]  # delivered once, after both were replaced


def test_nothing_is_written_or_deleted_through_a_link_inside_an_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("theirs")
    run = tmp_path / "data/training/exp"
    run.mkdir(parents=True)
    (run / "plots").symlink_to(elsewhere)
    with pytest.raises(files.LinkError, match="data/training/exp/plots is a link"):
        files.write_all({Path("data/training/exp/plots/keep.txt"): b"ours"})
    with pytest.raises(files.LinkError):
        files.remove_others(Path("data/training/exp"), keep=[])
    with pytest.raises(files.LinkError):
        files.read_folder(Path("data/training/exp"))
    assert (elsewhere / "keep.txt").read_text() == "theirs"


def test_a_link_above_the_output_folders_is_followed(tmp_path, monkeypatch):
    """data/ on another disk, linked by the user: written through as before."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "disk").mkdir()
    Path("data").symlink_to(tmp_path / "disk")
    files.write_all({Path("data/models/m.keras"): b"model"})
    assert (tmp_path / "disk/models/m.keras").read_bytes() == b"model"

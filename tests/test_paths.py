import pytest

from stages import paths
from stages.cli import StageError
from tests.conftest import REPO


def test_every_output_of_every_stage_names_the_stage_that_makes_it():
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        for stage in repo.index.stages:
            for out in stage.outs:
                relative = paths.Path(out.fs_path).relative_to(REPO)
                expected = stage.addressing if stage.path_in_repo == "dvc.yaml" else "benchmarks/dvc.yaml"
                assert paths.made_by(relative) == expected, relative


def test_the_remedy_says_how_to_make_or_restore_the_file():
    assert paths.remedy(paths.model("cnn")) == ("run `dvc repro train@cnn` to make it again, or `dvc checkout "
                                                "data/models/cnn.keras` to restore the committed one")
    assert "`git checkout -- reports/metrics/cnn.json`" in paths.remedy(paths.metrics("cnn"))
    assert paths.made_by(paths.Path("elsewhere/x")) is None


@pytest.mark.parametrize("name", ["../models", "..", ".", "a/b", "", "/etc"])
def test_paths_built_from_a_name_never_leave_their_folder(name):
    with pytest.raises(StageError, match="not a plain name"):
        paths.checkpoint_dir(name)
    if "/" in name:  # as a file stem, '..' is just a name: '...keras'
        with pytest.raises(StageError, match="not a plain name"):
            paths.model(name)
    assert paths.model("cnn_gap-2") == paths.Path("data/models/cnn_gap-2.keras")

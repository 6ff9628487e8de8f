"""The plots stage's tables, and what `dvc plots` makes of them in the small project."""

import csv
import io
import json

import pytest
import yaml

from stages import files, paths, plots
from tests.conftest import REPO, metrics_record, sh


def write_log(name: str, accuracies: dict[str, list[float]]) -> None:
    """A training log as DVCLive writes it: one TSV per split and metric, steps from 0."""
    for split, values in accuracies.items():
        for metric in plots.METRICS:
            rows = "".join(f"{step}\t{value}\n" for step, value in enumerate(values))
            path = paths.training_log(name) / "plots" / "metrics" / split / f"{metric}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"step\t{metric}\n{rows}")


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["experiments"] = {name: raw["experiments"][name] for name in ("linear_mnist", "mlp_translated")}
    raw["seeds"] = dict.fromkeys(raw["experiments"], 1)
    raw["invariance"]["experiments"] = ["mlp_translated"]
    paths.PARAMS.write_text(yaml.safe_dump(raw))
    for name, accuracy in (("linear_mnist", 0.9), ("mlp_translated", 0.95)):
        write_log(name, {"train": [0.5, 0.8], "val": [0.4, 0.7]})
        files.write_json(paths.metrics(name), metrics_record(accuracy))
    return tmp_path


def read_csv(path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_every_experiment_every_epoch_and_split_is_one_row(project):
    plots.main()
    rows = read_csv(paths.EPOCHS_TABLE)
    assert len(rows) == 2 * 2 * 2  # experiments x splits x epochs
    assert rows[0] == {"experiment": "linear_mnist", "epoch": "1", "split": "training", "loss": "0.5",
                       "accuracy": "0.5"}
    assert {(row["experiment"], row["split"], row["epoch"]) for row in rows} == {
        (name, split, epoch) for name in ("linear_mnist", "mlp_translated") for split in ("training", "validation")
        for epoch in ("1", "2")}
    tests = read_csv(paths.TEST_ACCURACY_TABLE)
    assert [row["experiment"] for row in tests] == ["linear_mnist", "mlp_translated"]  # params.yaml's order
    assert float(tests[1]["low"]) < float(tests[1]["test_accuracy"]) < float(tests[1]["high"])


def test_a_missing_log_is_one_line_naming_it(project):
    (paths.training_log("mlp_translated") / "plots/metrics/val/loss.tsv").unlink()
    with pytest.raises(files.InputError, match="reports/training/mlp_translated/plots/metrics/val/loss.tsv is missing"):
        plots.main()


@pytest.mark.e2e
def test_dvc_draws_every_declared_plot_with_every_experiment(small_project):
    root, _ = small_project
    shown = json.loads(sh("dvc", "plots", "show", "--json", "-o", "dvc_plots", cwd=root).stdout)
    assert not shown.get("errors")
    experiments = yaml.safe_load((root / "params.yaml").read_text())["experiments"]
    for name in ("Validation accuracy of every experiment", "Training against validation accuracy",
                 "Test accuracy with its 95% interval"):
        (render,) = shown["data"][name]
        assert render["type"] == "vega"
        assert {row["experiment"] for row in render["content"]["data"]["values"]} == set(experiments)
    figures = {name for name, renders in shown["data"].items() if renders[0]["type"] == "image"}
    assert figures == {str(path.relative_to(root)) for path in (root / "reports/figures").glob("*.png")}

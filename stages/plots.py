"""Stage `plots`: the tables that `dvc plots` draws with every experiment in one plot.

    python -m stages.plots

Reads each experiment's published training log (reports/training/<experiment>/, DVCLive's TSVs)
and test metrics (reports/metrics/<experiment>.json) and writes two long tables, one row per
experiment and epoch and split, and one per experiment: reports/plots/epochs.csv and
reports/plots/test_accuracy.csv. dvc.yaml's top-level `plots:` draws them with the templates in
.dvc/plots/ (coloured by experiment, dashed by revision), so an experiment added to params.yaml
appears in every plot without a line in dvc.yaml.
"""

import csv
import io
import math
import sys

from stages import cli, files, params, paths, schemas

SPLITS = {"train": "training", "val": "validation"}
METRICS = ("loss", "accuracy")


def read_tsv(path) -> list[dict[str, str]]:
    """DVCLive's table of one metric: a step and a finite value on every row."""
    with files.reading(path, ValueError, UnicodeDecodeError, csv.Error, TypeError):
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t"))
        if not rows or {"step"} - set(rows[0]):
            raise ValueError("no step column or no rows")
        for row in rows:
            if int(row["step"]) < 0 or not all(math.isfinite(float(value)) for value in row.values()):
                raise ValueError(f"a row that is not a step and finite numbers: {row}")
    return rows


def epoch_rows(name: str) -> list[dict]:
    """One row per epoch and split of experiment `name`'s training log."""
    log = paths.training_log(name) / "plots" / "metrics"
    rows = {}
    for split, label in SPLITS.items():
        for metric in METRICS:
            for row in read_tsv(log / split / f"{metric}.tsv"):
                epoch = int(row["step"]) + 1  # DVCLive counts steps from 0
                row_of_epoch = rows.setdefault((epoch, label), {"experiment": name, "epoch": epoch, "split": label})
                row_of_epoch[metric] = row[metric]
    return [rows[key] for key in sorted(rows, key=lambda key: (key[1], key[0]))]


def to_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def main() -> None:
    experiments = params.load().experiments
    files.check_outputs(paths.EPOCHS_TABLE, paths.TEST_ACCURACY_TABLE)
    epochs = [row for name in experiments for row in epoch_rows(name)]
    tests = []
    for name in experiments:
        m = files.read_json(paths.metrics(name), schema=schemas.Metrics)
        tests.append({"experiment": name, "test_accuracy": m["test_accuracy"], "low": m["test_accuracy_low"],
                      "high": m["test_accuracy_high"]})
    files.write_all({paths.EPOCHS_TABLE: to_csv(epochs), paths.TEST_ACCURACY_TABLE: to_csv(tests)})
    print(f"plots: {len(experiments)} experiments; wrote {paths.EPOCHS_TABLE} and {paths.TEST_ACCURACY_TABLE}")


if __name__ == "__main__":
    sys.exit(cli.run(main))

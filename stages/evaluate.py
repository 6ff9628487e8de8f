"""Stage `evaluate`: test accuracy and loss of one trained experiment, its predictions, and its
training log published for `dvc metrics` and `dvc plots`.

    python -m stages.evaluate <experiment>

Writes reports/headlines/<experiment>.json (test accuracy and its 95% Wilson interval: what
`dvc metrics` and `dvc exp show` compare), reports/metrics/<experiment>.json (those, the loss,
the errors and the training summary, for the report), reports/predictions/<experiment>.csv (one
row per test image, read by compare and by the report for its error gallery) and
reports/training/<experiment>/, a copy of the train stage's DVCLive log: small committed copies
of what the costly, cached train stage wrote. No timings: a rerun that reproduces the same model
writes the same bytes.
"""

import json
import sys

import numpy as np

from stages import cli, datasets, files, params, paths, predictions, schemas, statistics

BATCH = 1000
TRAINING_SUMMARY = ("epochs", "steps", "stopped_by", "params")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "test_accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "test_loss": float(-np.mean(np.log(np.maximum(picked, 1e-12)))),
    }


def main(experiment: str) -> None:
    exp = params.load().experiment(experiment)
    files.check_outputs(paths.metrics(exp.name), paths.headline(exp.name), paths.predictions(exp.name),
                        paths.training_log(exp.name))
    training = files.read_json(paths.training_run(exp.name) / "metrics.json", required=TRAINING_SUMMARY,
                               schema=schemas.TrainingSummary)
    log = files.read_folder(paths.training_run(exp.name))
    data = datasets.load(exp.dataset, exp.data, only=("x_test", "y_test"))
    labels = data["y_test"].astype(np.int64)
    from stages import saved_models  # Keras: seconds to import, so params and data are checked first

    model = saved_models.load(paths.model(exp.name), exp.model, (*data["x_test"].shape[1:], 1))
    probabilities = softmax(np.asarray(model.predict(datasets.as_input(data["x_test"]), batch_size=BATCH, verbose=0)))
    errors = int(np.sum(probabilities.argmax(axis=1) != labels))
    low, high = statistics.wilson(len(labels) - errors, len(labels))
    metrics = score(probabilities, labels) | {
        "test_accuracy_low": low,  # the 95% interval: what the test set's sampling leaves open
        "test_accuracy_high": high,
        "errors": errors,
        "epochs": training["epochs"],
        "steps": training["steps"],
        "stopped_by": training["stopped_by"],
        "params": training["params"],
    }
    headline = {exp.name: {"test_accuracy": metrics["test_accuracy"], "low": low, "high": high}}
    published = paths.training_log(exp.name)
    # All replaced together: a failure half-way leaves them as they were.
    files.write_all({paths.metrics(exp.name): (json.dumps(metrics, indent=2) + "\n").encode(),
                     paths.headline(exp.name): (json.dumps(headline, indent=2) + "\n").encode(),
                     paths.predictions(exp.name): predictions.to_csv(probabilities, labels).encode(),
                     **{published / name: content for name, content in log.items()}})
    files.remove_others(published, keep=log)
    print(f"evaluate: {exp.name}: test accuracy {metrics['test_accuracy']:.2%} "
          f"(95% interval {low:.2%} to {high:.2%}), loss {metrics['test_loss']:.4f}")


if __name__ == "__main__":
    sys.exit(cli.run(main))

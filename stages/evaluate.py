"""Stage `evaluate`: test accuracy and loss of one trained experiment, plus its predictions.

    python -m stages.evaluate <experiment>

Writes reports/metrics/<experiment>.json (tracked by `dvc metrics`) and
reports/predictions/<experiment>.csv (one row per test image, drawn by the
`confusion` template of `dvc plots`, and read by the report for its error gallery).
"""

import sys
import time

import keras
import numpy as np

from stages import cli, datasets, files, params, paths

BATCH = 1000


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "test_accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "test_loss": float(-np.mean(np.log(np.maximum(picked, 1e-12)))),
    }


def predictions_csv(probabilities: np.ndarray, labels: np.ndarray) -> str:
    rows = ["index,actual,predicted,confidence"]
    predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    rows += [f"{i},{a},{p},{c:.4f}" for i, (a, p, c) in enumerate(zip(labels, predicted, confidence))]
    return "\n".join(rows) + "\n"


def main(name: str) -> None:
    exp = params.load().experiment(name)
    data = datasets.load(exp.data)
    labels = data["y_test"].astype(np.int64)
    model = keras.saving.load_model(paths.model(name))
    start = time.perf_counter()
    probabilities = softmax(np.asarray(model.predict(datasets.as_input(data["x_test"]), batch_size=BATCH, verbose=0)))
    seconds = time.perf_counter() - start
    training = files.read_json(paths.training_log(name) / "metrics.json")
    metrics = score(probabilities, labels) | {
        "errors": int(np.sum(probabilities.argmax(axis=1) != labels)),
        "epochs": training["epochs"],
        "steps": training["steps"],
        "train_seconds": training["seconds"],
        "stopped_by": training["stopped_by"],
        "params": training["params"],
        "test_seconds": round(seconds, 2),
    }
    files.write_json(paths.metrics(name), metrics)
    with files.atomic_path(paths.predictions(name)) as tmp:
        tmp.write_text(predictions_csv(probabilities, labels))
    print(f"evaluate: {name}: test accuracy {metrics['test_accuracy']:.2%}, loss {metrics['test_loss']:.4f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m stages.evaluate <experiment>")
    sys.exit(cli.run(main, sys.argv[1]))

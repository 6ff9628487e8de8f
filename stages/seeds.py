"""Stage `seeds`: how much one experiment's test accuracy owes to the luck of its training run.

    python -m stages.seeds <experiment>

Trains the experiment again with the next `seeds.<experiment> - 1` seeds (its `seed` + 1, + 2, ...;
its own run is the train stage's), scores each run on the test set, and writes every run's
accuracy with their mean, standard deviation and range to reports/metrics/seeds/<experiment>.json,
next to the spread that test-set sampling alone gives one run. The extra models are not kept:
only their accuracies are the result. Each run is checkpointed like the train stage's, and the
checkpoints stay until every run is scored, so a killed stage starts again where it stopped.
"""

import math
import sys

import numpy as np

from stages import cli, datasets, files, params, paths, schemas

BATCH = 1000


def summary(seeds: list[int], accuracies: list[float], stopped_by: list[str], test_digits: int) -> dict:
    """The runs' accuracies, their spread from seed to seed, and one run's spread from test-set sampling."""
    mean = float(np.mean(accuracies))
    return {"runs": len(seeds), "seeds": seeds, "test_accuracy": accuracies, "stopped_by": stopped_by,
            "mean": mean, "sd": float(np.std(accuracies, ddof=1)) if len(seeds) > 1 else None,
            "min": float(min(accuracies)), "max": float(max(accuracies)),
            "test_sd": math.sqrt(mean * (1 - mean) / test_digits), "test_digits": test_digits}


def main(experiment: str) -> None:
    p = params.load()
    exp = p.experiment(experiment)
    files.check_outputs(paths.seeds(exp.name))
    own = files.read_json(paths.metrics(exp.name), schema=schemas.Metrics)
    seeds, accuracies, stopped_by = [exp.seed], [own["test_accuracy"]], [own["stopped_by"]]
    extra = [exp.seed + i for i in range(1, p.seeds[exp.name])]
    data = datasets.load(exp.dataset, exp.data, only=None if extra else ("y_test",))
    if extra:
        from stages import live, training  # Keras: seconds to import, so params and data are checked first

        x_test, runs = datasets.as_input(data["x_test"]), []
        for i, seed in enumerate(extra, start=2):
            print(f"seeds: {exp.name}: run {i} of {len(extra) + 1}, seed {seed}", flush=True)
            run = exp.model_copy(update={"seed": seed})
            # '@' is in no experiment's name, so these folders are apart from every train stage's
            name = f"{exp.name}@seed-{seed}"
            runs.append(training.Checkpoints(paths.CHECKPOINTS, name,
                                             training.fingerprint(run, paths.dataset(exp.dataset, exp.data))))
            label = f"seeds: {exp.name}: seed {seed}"
            model, state = training.fit(run, data, runs[-1], lambda state, label=label, name=name, epochs=run.epochs:
                                        live.callbacks(label, name, epochs, state))
            live.clear(name)  # its accuracy is the result, written below
            predicted = np.asarray(model.predict(x_test, batch_size=BATCH, verbose=0)).argmax(axis=1)
            seeds.append(seed)
            accuracies.append(float(np.mean(predicted == data["y_test"])))
            stopped_by.append(state["stopped_by"])
        for checkpoints in runs:
            checkpoints.clear()
    result = summary(seeds, accuracies, stopped_by, len(data["y_test"]))
    files.write_json(paths.seeds(exp.name), result)
    spread = "one run" if result["sd"] is None else (
        f"sd {result['sd']:.2%} over {result['runs']} seeds (test-set sampling alone: {result['test_sd']:.2%})")
    print(f"seeds: {exp.name}: mean test accuracy {result['mean']:.2%}, {spread}; wrote {paths.seeds(exp.name)}")


if __name__ == "__main__":
    sys.exit(cli.run(main))

"""The report's findings in words (stages/findings.py), from tiny made-up metrics."""

import numpy as np

from stages import document, findings, models
from stages.params import Experiment


def exp(name, data="translated", model="linear", placement=None, dataset="mnist"):
    placement = placement or ("fixed" if data == "centred" else "fresh")
    return Experiment(name=name, dataset=dataset, data=data, placement=placement,
                      model=model, optimizer="adam", learning_rate=0.002, schedule="cosine", warmup_epochs=0,
                      batch_size=128, epochs=3, max_steps=None, patience=None, target_accuracy=None,
                      max_seconds=None, seed=1, precision="float32", data_parallel=False)


def metric(accuracy, errors=10, params=100):
    return {"test_accuracy": accuracy, "test_accuracy_low": accuracy - 0.004, "test_accuracy_high": accuracy + 0.003,
            "test_loss": 0.3, "errors": errors, "epochs": 3, "steps": 1290,
            "stopped_by": "epochs", "params": params}


def printed(reported, as_printed, p):
    """The compare stage's test of one of the original's figures (p as adjusted)."""
    return {"reported": reported, "as_printed": as_printed, "p_value": p, "p_adjusted": p, "significant": p < 0.05}


ORIGINAL = {"linear_mnist": printed(0.92, "about 92%", 0.2),
            "linear_translated": {"reported": None, "as_printed": "not reported"},
            "mlp_translated": printed(0.9538, "95.38%", 0.04),
            "cnn_translated": printed(0.9651, "96.51%", 1e-9)}


def comparisons(names, p_values=None):
    """What the compare stage writes: every pair tested, p = 0.5 unless `p_values[(a, b)]` says otherwise."""
    p_values = p_values or {}
    pairs = {}
    for i, a in enumerate(names):
        for b in list(names)[i + 1:]:
            p = p_values.get((a, b), p_values.get((b, a), 0.5))
            pairs[f"{a} vs {b}"] = {"p_value": p, "p_adjusted": p, "significant": p < 0.05}
    return {"test_digits": 10000, "pairs": pairs,
            "original": {name: test for name, test in ORIGINAL.items() if name in names}}


NOTEBOOK = {"linear_mnist": exp("linear_mnist", "centred"), "linear_translated": exp("linear_translated"),
            "mlp_translated": exp("mlp_translated", model="mlp"), "cnn_translated": exp("cnn_translated", model="cnn")}


# --- words and numbers ---

def test_signed_picks_the_word_from_the_sign_and_prints_rounded_points():
    assert findings.signed(0.0123, "gains {}", "loses {}", "same") == "gains 1.23 percentage points"
    assert findings.signed(-0.0123, "gains {}", "loses {}", "same") == "loses 1.23 percentage points"
    assert findings.signed(0.00004, "gains {}", "loses {}", "same") == "same"  # prints as 0.00: say so


def test_results_table_shows_each_experiment_next_to_the_original():
    metrics = {"linear_mnist": metric(0.9253, params=7850), "linear_translated": metric(0.8811),
               "mlp_translated": metric(0.9601, params=805510), "cnn_translated": metric(0.9688)}
    metrics["cnn_translated"]["stopped_by"] = "patience"
    table = findings.results_table(NOTEBOOK, metrics, ORIGINAL)
    rows = {row[0]: row for row in table.rows}
    assert rows["`linear_mnist`"][1] == "mnist" and rows["`linear_mnist`"][3] == "`linear`"
    labelled = findings.results_table(NOTEBOOK, metrics, ORIGINAL, {"mnist": "MNIST"})
    assert labelled.rows[0][1] == "MNIST"
    assert rows["`linear_mnist`"][4:7] == ("92.53%", "92.13–92.83%", "about 92%")
    assert rows["`linear_translated`"][6] == "not reported"
    assert rows["`mlp_translated`"][4:7] == ("96.01%", "95.61–96.31%", "95.38%")
    assert rows["`mlp_translated`"][-1] == "805,510"
    assert rows["`cnn_translated`"][6:8] == ("96.51%", "3 / 1,290 (patience)")
    extra = findings.results_table({"cnn_gap": exp("cnn_gap", model="cnn_gap")}, {"cnn_gap": metric(0.99)}, {})
    assert extra.rows[0][6] == "—"  # not an experiment of the notebook
    markdown = document.table(table)
    assert "| ---: |" in markdown and markdown.count("\n") == len(NOTEBOOK) + 1


def test_discussion_numbers_come_from_the_metrics_and_the_wording_follows_the_sign():
    metrics = {"linear_mnist": metric(0.9253), "linear_translated": metric(0.8811),
               "mlp_translated": metric(0.9601), "cnn_translated": metric(0.9688, errors=312)}
    tests = comparisons(NOTEBOOK, {("linear_mnist", "linear_translated"): 0.0001,
                                   ("cnn_translated", "mlp_translated"): 0.0772})
    text = " ".join(findings.discussion(NOTEBOOK, metrics, tests))
    assert ("`cnn_translated` with 96.88% (96.48–97.18%, 312 test errors); its lead over `mlp_translated` (96.01%) "
            "is within test-set noise (p = 0.077).") in text
    assert "Translation costs the linear model 4.42 percentage points" in text
    assert ("`linear_mnist` scores 92.53% on centred digits, `linear_translated` 88.11% on translated ones; "
            "significant (p < 0.001).") in text
    assert ("the MLP (`mlp_translated`, 96.01%) gains 7.90 percentage points over the linear model "
            "(`linear_translated`, 88.11%); within test-set noise (p = 0.500).") in text
    assert "the CNN (`cnn_translated`, 96.88%) gains 0.87 percentage points over the MLP" in text
    assert ("`cnn_translated` scores 96.88% here against 96.51% in the original: 0.37 percentage points higher, "
            "significant (p < 0.001).") in text
    assert ("`linear_mnist` scores 92.53% here against about 92% in the original: 0.53 percentage points higher, "
            "within test-set noise (p = 0.200).") in text

    # Turn the results around: every comparison must now say the opposite.
    flipped = {"linear_mnist": metric(0.90), "linear_translated": metric(0.91),
               "mlp_translated": metric(0.95), "cnn_translated": metric(0.94)}
    text = " ".join(findings.discussion(NOTEBOOK, flipped, comparisons(NOTEBOOK)))
    assert "Translation gains the linear model 1.00 percentage points" in text
    assert "the CNN (`cnn_translated`, 94.00%) loses 1.00 percentage points to the MLP" in text
    assert "`cnn_translated` scores 94.00% here against 96.51% in the original: 2.51 percentage points lower" in text
    assert "`mlp_translated` scores 95.00% here against 95.38% in the original: 0.38 percentage points lower" in text

    level = {name: metric(0.95) for name in NOTEBOOK}
    text = " ".join(findings.discussion(NOTEBOOK, level, comparisons(NOTEBOOK)))
    assert "leaves the linear model's accuracy unchanged" in text and "matches the MLP" in text


def test_discussion_compares_only_what_params_holds_and_handles_new_experiments():
    experiments = {"cnn_translated": exp("cnn_translated", model="cnn"),
                   "cnn_gap": exp("cnn_gap", model="cnn_gap"),
                   "cnn_centre": exp("cnn_centre", model="cnn", placement="centre")}
    metrics = {"cnn_translated": metric(0.97), "cnn_gap": metric(0.985), "cnn_centre": metric(0.40)}
    text = " ".join(findings.discussion(experiments, metrics, comparisons(experiments)))
    assert "the global-pooling CNN (`cnn_gap`, 98.50%) gains 1.50 percentage points over the CNN" in text
    assert ("Trained only on digits at the canvas centre, the CNN (`cnn_centre`) scores 40.00% on the translated "
            "test set, 57.00 percentage points lower than when trained on translated digits") in text
    assert "Translation" not in text and "MLP" not in text and "mlp" not in text


def seed_runs(mean, sd, runs=3):
    """What the seeds stage writes, in short."""
    return {"runs": runs if sd is not None else 1, "mean": mean, "sd": sd, "min": mean - (sd or 0),
            "max": mean + (sd or 0), "test_sd": 0.002}


def test_seed_table_says_which_noise_is_larger():
    table = findings.seed_table({"a": seed_runs(0.95, 0.004), "b": seed_runs(0.99, 0.001), "c": seed_runs(0.9, None)})
    assert table.rows == (("`a`", "3", "95.00%", "94.60–95.40%", "0.40", "0.20", "seed"),
                          ("`b`", "3", "99.00%", "98.90–99.10%", "0.10", "0.20", "test set"),
                          ("`c`", "1", "90.00%", "90.00–90.00%", "—", "0.20", "—"))


def test_seed_noise_bounds_a_difference_of_two_runs_and_names_what_it_assumes():
    study = {"a": seed_runs(0.95, 0.003), "b": seed_runs(0.96, 0.004), "c": seed_runs(0.97, None)}
    # c has one run: it takes b's 0.4, the largest; two runs of c and a differ by their seeds alone with sd
    # sqrt(0.4^2 + 0.3^2) = 0.5 points: bound 1.00
    beyond, text = findings.seed_noise("c", "a", 0.0101, study)
    assert beyond and text == "beyond seed noise (±1.00 points), taking `c` to vary like the most variable measured"
    assert findings.seed_noise("a", "c", -0.0099, study)[0] is False
    assert findings.seed_noise("c", "c", 0.5, {"c": seed_runs(0.9, None)}) == (None, "not measured (one run each)")


def test_two_seed_studies_are_compared_by_their_means_and_by_whether_their_runs_overlap():
    study = {"a": seed_runs(0.97, 0.003), "b": seed_runs(0.96, 0.004), "c": seed_runs(0.95, None)}
    # means 1.00 point apart against 2 * sqrt(0.3^2 / 3 + 0.4^2 / 3) = 0.58; runs 96.7-97.3 and 95.6-96.4
    assert findings.seed_noise("a", "b", 0.0, study) == (
        True, "over 3 seeds each, means +1.00 points apart: beyond seed noise (±0.58 points); every run of the better "
              "above every run of the other")
    beyond, text = findings.seed_noise("b", "a", 0.0, study)  # the sign follows the order; the judgement does not
    assert beyond and text.startswith("over 3 seeds each, means -1.00 points apart: beyond")
    study["b"] = seed_runs(0.9655, 0.004)  # 0.45 points apart: within the bound, and the runs overlap
    beyond, text = findings.seed_noise("a", "b", 0.0, study)
    assert not beyond and "within seed noise (±0.58 points); not every run" in text
    study["b"] = {**seed_runs(0.96, 0.001), "max": 0.968}  # far apart on average, but one run of b beats one of a
    assert findings.seed_noise("a", "b", 0.0, study)[0] is False
    assert findings.seed_noise("a", "c", 0.02, study)[1].startswith("beyond seed noise (±")  # c has one run


def test_the_goal_sentence_says_whether_seeds_could_move_a_result_across_the_papers_number():
    alike = {"small": seed_runs(0.99, None), "linear": seed_runs(0.9, 0.002)}
    # one run, 0.50 points from the paper; the largest sd measured on its dataset is 0.2 points: bound 0.40
    assert findings.seeds_against("small", 0.010, 0.015, alike) == (
        " Its one run is 0.50 points from that number, beyond seed noise (±0.40 points, taking it to vary like the "
        "most variable experiment measured on its dataset).")
    assert "0.30 points from that number, within seed noise (±0.40" in findings.seeds_against("small", 0.018, 0.015,
                                                                                               alike)
    alike["small"] = seed_runs(0.99, 0.001)  # three runs, 98.9 to 99.1%: errors 0.9 to 1.1%
    assert findings.seeds_against("small", 0.01, 0.012, alike) == " Every one of its 3 runs is below that number."
    assert findings.seeds_against("small", 0.01, 0.0085, alike) == " Every one of its 3 runs is above that number."
    assert findings.seeds_against("small", 0.01, 0.010, alike) == " Its runs fall on both sides of that number."


def test_claims_table_holds_every_comparison_of_the_discussion_against_both_noises():
    accuracy = {"linear_mnist": 0.9253, "linear_translated": 0.8811, "mlp_translated": 0.9601, "cnn_translated": 0.9688}
    study = {"linear_mnist": seed_runs(0.925, 0.002), "linear_translated": seed_runs(0.88, 0.002),
             "mlp_translated": seed_runs(0.96, 0.003), "cnn_translated": seed_runs(0.97, None)}
    tests = comparisons(NOTEBOOK, {("linear_mnist", "linear_translated"): 1e-9,
                                   ("mlp_translated", "linear_translated"): 1e-9,
                                   ("cnn_translated", "mlp_translated"): 0.01})
    rows = {row[0]: row for row in findings.claims_table(NOTEBOOK, accuracy, tests, study).rows}
    assert list(rows) == ["`linear_translated` − `linear_mnist`", "`mlp_translated` − `linear_translated`",
                          "`cnn_translated` − `mlp_translated`"]
    assert rows["`linear_translated` − `linear_mnist`"][1:] == (
        "-4.42", "significant (p < 0.001)",  # both have seed studies: judged over them
        "over 3 seeds each, means -4.50 points apart: beyond seed noise (±0.33 points); every run of the better "
        "above every run of the other", "yes")
    cnn = rows["`cnn_translated` − `mlp_translated`"]  # 0.87 points against 2 * sqrt(0.3^2 + 0.3^2) = 0.85
    assert cnn[2:] == ("significant (p = 0.010)",
                       "beyond seed noise (±0.85 points), taking `cnn_translated` to vary like the most variable "
                       "measured",
                       "yes")
    study["mlp_translated"] = seed_runs(0.96, 0.01)  # a noisier MLP: the same 0.87 points no longer stand out
    rows = {row[0]: row for row in findings.claims_table(NOTEBOOK, accuracy, tests, study).rows}
    assert rows["`cnn_translated` − `mlp_translated`"][4] == "no"


def test_mistakes_count_from_the_predictions_and_ties_go_to_the_lower_digit():
    actual = np.array([8, 8, 8, 1, 2, 3, 5])
    predicted = np.array([3, 3, 8, 7, 2, 3, 4])
    assert findings.mistakes(actual, predicted) == {
        "wrong": 4, "total": 7, "most_frequent": {"digit": "an 8", "read_as": "a 3", "times": 2}}
    assert findings.mistakes(actual[3:], predicted[3:])["most_frequent"] == {"digit": "a 1", "read_as": "a 7",
                                                                             "times": 1}
    assert findings.mistakes(actual, actual) == {"wrong": 0, "total": 7, "most_frequent": None}


def test_layer_table_lists_every_layer_with_its_weights_and_sums_to_the_model():
    model = models.build("cnn_gap", (28, 28, 1))
    table = findings.layer_table(model)
    rows = {row[0]: row for row in table.rows}
    assert rows["`conv`"][1:] == ("Conv2D", "28×28×32", "kernel 5×5×1×32, bias 32", "832")
    assert rows["total"][-1] == f"{model.count_params():,}"
    assert sum(int(row[-1].replace(",", "")) for row in table.rows[:-1]) == model.count_params()


def grid_result(grid, worse=0, better=0):
    """What the invariance stage writes, with made-up counts of offsets beyond noise and a sampling range."""
    grid = np.asarray(grid, dtype=float)
    last = len(grid) - 1
    centre = grid[last // 2, last // 2]
    return {"mean": grid.mean(), "min": grid.min(), "centre": centre,
            "worst_corner": min(grid[0, 0], grid[0, last], grid[last, 0], grid[last, last]),
            "centre_low": centre - 0.02, "centre_high": min(1.0, centre + 0.01), "offsets_worse": worse,
            "offsets_better": better, "measured_range": float(np.ptp(grid)), "sampling_range": 0.02,
            "sampling_range_95": 0.03, "test_digits": 100, "canvas": 30, "grid": grid.tolist(),
            "consistency": {"pairs": 3, "mean": 0.95, "low": 0.9, "high": 0.97,
                            "by_distance": [{"distance": 1, "pairs": 3, "mean": 0.95, "low": 0.9, "high": 0.97}]}}


def test_invariance_findings_say_which_model_loses_how_much_away_from_its_training_position():
    experiments = {"cnn_t": exp("cnn_t", model="cnn"), "cnn_c": exp("cnn_c", model="cnn", placement="centre"),
                   "gap_c": exp("gap_c", model="cnn_gap", placement="centre")}
    peaked = np.full((3, 3), 0.5)
    peaked[1, 1] = 0.99
    results = {"cnn_t": grid_result(np.full((3, 3), 0.98) + np.eye(3) / 100), "cnn_c": grid_result(peaked, worse=8),
               "gap_c": grid_result(np.full((3, 3), 0.97))}
    text = " ".join(findings.invariance_findings(experiments, results))
    assert ("Not by its architecture alone: trained at one position, the original CNN loses 49.00 percentage "
            "points") in text
    assert "varies by 1.00 points across the offsets, where sampling alone gives up to 3.00" in text
    assert "comes mostly from the training data" in text
    assert ("(mean 98.33%): a range of 1.00 points against 2.00 expected from sampling alone (95th percentile 3.00); "
            "0 of its 8 other offsets score lower than the centre beyond sampling noise and 0 higher") in text
    assert ("loses 49.00 percentage points away from where it was trained (mean over all offsets 55.44%); "
            "8 of its") in text
    assert ("global-pooling CNN (`gap_c`) scores 97.00% with the digit at the centre and 97.00% in the worst "
            "corner: it loses nothing") in text
    assert "`gap_c` (global-pooling CNN) keeps most of its accuracy away from the centre (0.00 points lost" in text
    assert "`cnn_c` (CNN) the least (49.00 points)" in text
    table = findings.invariance_table(experiments, results)
    assert table.rows[1] == ("`cnn_c`", "CNN", "trained at the centre", "55.44%", "50.00%", "99.00% (94.55–99.82%)",
                             "50.00% (40.38–59.62%)", "8 / 0", "49.00 / 3.00", "95.00% (90.00–97.00%)", "95.00%")
    grids = findings.invariance_grids(experiments, results)
    assert list(grids) == ["trained on translated digits", "trained at the centre"]
    assert list(grids["trained at the centre"]) == ["CNN", "global-pooling CNN"]


def test_a_printed_figure_read_from_comparisons_json_is_escaped_in_the_markdown():
    hostile = printed(0.92, "*92%*<b>|x`", 0.2)
    text = " ".join(findings.versus_original({"linear_mnist": 0.9253}, {"linear_mnist": hostile}))
    assert r"against \*92%\*\<b\>\|x\` in the original" in text


# --- across datasets ---

def two_datasets():
    experiments = {name: exp(name, model=model, placement=placement, dataset=dataset)
                   for dataset, prefix in (("mnist", ""), ("fashion_mnist", "f_"))
                   for name, model, placement in ((f"{prefix}mlp", "mlp", "fresh"),
                                                  (f"{prefix}gap", "cnn_gap", "fresh"),
                                                  (f"{prefix}gap_centre", "cnn_gap", "centre"))}
    experiments["mlp_centre"] = exp("mlp_centre", model="mlp", placement="centre")  # on MNIST only
    accuracy = {"mlp": 0.976, "gap": 0.995, "gap_centre": 0.988, "f_mlp": 0.86, "f_gap": 0.84, "f_gap_centre": 0.80,
                "mlp_centre": 0.3}
    tests = comparisons([n for n in experiments if not n.startswith("f_")], {("gap", "gap_centre"): 0.0001})
    tests["pairs"] |= comparisons([n for n in experiments if n.startswith("f_")])["pairs"]
    return experiments, accuracy, tests


def test_across_datasets_ranks_each_datasets_models_and_says_when_the_ranking_changes():
    experiments, accuracy, tests = two_datasets()
    found = findings.across_datasets(experiments, accuracy, tests, {}, {"mnist": "MNIST", "fashion_mnist": "Fashion"})
    rows = {row[0]: row for row in found["table"].rows}
    assert rows["MLP"][1:] == ("97.60% (`mlp`, rank 2)", "86.00% (`f_mlp`, rank 1)")
    text = " ".join(found["findings"])
    assert ("changes: on MNIST, global-pooling CNN ≈ MLP; on Fashion, MLP ≈ global-pooling CNN (≈: the two differ "
            "within test-set noise)" in text)
    tests["pairs"]["mlp vs gap"] |= {"p_adjusted": 0.001, "significant": True}
    labels = {"mnist": "MNIST", "fashion_mnist": "Fashion"}
    text = " ".join(findings.across_datasets(experiments, accuracy, tests, {}, labels)["findings"])
    assert "on MNIST, global-pooling CNN \\> MLP; on Fashion, MLP ≈ global-pooling CNN" in text
    assert ("On MNIST, training the global-pooling CNN only at the centre (`gap_centre`, 98.80%) costs 0.70 points"
            in text)
    assert "significant (p < 0.001)" in text and "On Fashion, training" in text
    assert "costs the global-pooling CNN 3.30 points more on Fashion than on MNIST: seed noise not measured" in text
    assert "mlp_centre" not in text  # measured on one dataset: its own discussion tells it


def test_across_datasets_judges_the_difference_of_two_costs_by_the_seed_noise_of_its_four_runs():
    experiments, accuracy, tests = two_datasets()
    labels = {"mnist": "MNIST", "fashion_mnist": "Fashion"}
    wide = {name: seed_runs(accuracy[name], 0.01) for name in ("gap", "f_gap")}  # sd 1 point: bound 2*2 = 4 points
    text = " ".join(findings.across_datasets(experiments, accuracy, tests, wide, labels)["findings"])
    assert "3.30 points more on Fashion than on MNIST: within seed noise (±4.00 points)" in text
    narrow = {name: seed_runs(accuracy[name], 0.001) for name in ("gap", "f_gap")}
    text = " ".join(findings.across_datasets(experiments, accuracy, tests, narrow, labels)["findings"])
    assert "3.30 points more on Fashion than on MNIST: beyond seed noise (±0.40 points)" in text


def test_class_names_read_as_a_sentence_says_them():
    assert [findings.a_class(name) for name in ("7", "8", "Ankle boot", "T-shirt/top", "Bag")] == [
        "a 7", "an 8", "an ankle boot", "a T-shirt/top", "a bag"]
    actual, predicted = np.array([9, 9, 0]), np.array([5, 5, 0])
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert findings.mistakes(actual, predicted, names)["most_frequent"] == {
        "digit": "an ankle boot", "read_as": "a sandal", "times": 2}

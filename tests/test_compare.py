"""The compare stage on predictions whose counts give known answers."""

import json
import shutil

import numpy as np
import pytest

from stages import compare, params, paths, predictions, statistics
from stages.files import InputError
from tests.conftest import REPO

N = 10_000
LABELS = np.arange(N) % 10


def write_predictions(name: str, wrong) -> None:
    """The experiment's predictions: every test digit right except those in `wrong`, read as the next digit."""
    predicted = LABELS.copy()
    predicted[list(wrong)] = (LABELS[list(wrong)] + 1) % 10
    one_hot = np.eye(10)[predicted]
    paths.PREDICTIONS.mkdir(parents=True, exist_ok=True)
    paths.predictions(name).write_text(predictions.to_csv(one_hot, LABELS))


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(REPO / "params.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    names = list(params.load().experiments)
    assert names[:4] == ["linear_mnist", "linear_translated", "mlp_translated", "cnn_translated"]
    # linear_mnist misses digit 0, mlp_translated digits 1 to 999 (90.01% right), cnn_translated the 349 that
    # the original's 96.51% leaves; the rest make no mistake.
    wrong = {"linear_mnist": [0], "mlp_translated": range(1, 1000), "cnn_translated": range(100, 449)}
    for name in names:
        write_predictions(name, wrong.get(name, []))
    return names


def test_every_two_experiments_get_mcnemars_test_on_the_same_digits(project):
    compare.main()
    result = json.loads(paths.COMPARISONS.read_text())
    per_dataset = [sum(exp.dataset == d for exp in params.load().experiments.values()) for d in params.load().datasets]
    assert result["test_digits"] == N and len(result["pairs"]) == sum(n * (n - 1) // 2 for n in per_dataset)
    experiments = params.load().experiments
    assert all(experiments[a].dataset == experiments[b].dataset  # other datasets, other test images
               for a, _, b in (pair.partition(" vs ") for pair in result["pairs"]))
    pair = result["pairs"]["linear_mnist vs mlp_translated"]
    assert (pair["only_first"], pair["only_second"]) == (999, 1) and pair["significant"]
    small = result["pairs"]["linear_mnist vs linear_translated"]  # one digit apart: 1 against 0
    assert (small["only_first"], small["only_second"]) == (0, 1)
    assert small["p_value"] == pytest.approx(1.0) and not small["significant"]
    assert small["difference"] == pytest.approx(-1 / N)


def test_the_originals_figures_are_tested_unpaired_and_the_unreported_one_is_left_alone(project):
    compare.main()
    original = json.loads(paths.COMPARISONS.read_text())["original"]
    assert original["linear_translated"] == {"reported": None, "as_printed": "not reported"}
    same = original["cnn_translated"]  # 9,651 of 10,000 right: exactly the printed 96.51%
    assert same["difference"] == pytest.approx(0) and same["p_value"] == 1.0 and not same["significant"]
    lower = original["mlp_translated"]  # 90.01% against 95.38%
    assert lower["difference"] == pytest.approx(0.9001 - 0.9538)
    assert lower["p_value"] == pytest.approx(statistics.two_proportions(9001, N, 9538, N)) and lower["significant"]
    assert original["linear_mnist"]["as_printed"] == "about 92%"


def test_predictions_of_different_test_digits_are_refused(project):
    write_predictions("cnn_centre", [])
    text = paths.predictions("cnn_centre").read_text().splitlines()
    paths.predictions("cnn_centre").write_text("\n".join(text[:-1]) + "\n")  # one digit short
    with pytest.raises(InputError, match="cnn_centre.csv is not readable .*its labels are not the test set's"):
        compare.main()


def test_each_family_of_tests_is_holm_adjusted_and_judged_on_the_adjusted_p(project):
    """All pairs of every dataset one family: a raw p below 5% that Holm's adjustment lifts above it is not
    called significant."""
    compare.main()
    result = json.loads(paths.COMPARISONS.read_text())
    tests = list(result["pairs"].values())
    assert len(tests) > 36 and all(test["family"] == len(tests) for test in tests)
    expected = statistics.holm([test["p_value"] for test in tests])
    assert [test["p_adjusted"] for test in tests] == pytest.approx(list(expected))
    assert all(test["significant"] == (test["p_adjusted"] < statistics.ALPHA) for test in tests)
    assert all(test["p_adjusted"] >= test["p_value"] for test in tests)
    original = [test for test in result["original"].values() if "p_value" in test]
    assert all(test["family"] == len(original) == 3 for test in original)


def test_a_raw_p_below_five_percent_is_not_significant_once_adjusted():
    tests = compare.adjusted({"a": {"p_value": 0.03}, "b": {"p_value": 0.02}, "c": {"p_value": 0.5}})
    assert tests["b"]["p_adjusted"] == pytest.approx(0.06) and not tests["b"]["significant"]
    assert tests["a"]["p_adjusted"] == pytest.approx(0.06) and not tests["a"]["significant"]
    assert tests["c"]["p_adjusted"] == pytest.approx(0.5)

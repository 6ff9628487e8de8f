"""The statistics against published values and counts small enough to work out by hand."""

import math

import numpy as np
import pytest

from stages import statistics

# Newcombe (1998), Two-sided confidence intervals for the single proportion, Statistics in Medicine 17,
# table II, method 3 (Wilson's score interval without continuity correction).
NEWCOMBE = [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)]


@pytest.mark.parametrize("successes, n, low, high", NEWCOMBE)
def test_wilson_interval_matches_newcombes_table(successes, n, low, high):
    assert [round(x, 4) for x in statistics.wilson(successes, n)] == [low, high]


def test_wilson_interval_stays_inside_0_and_1_and_narrows_with_more_items():
    assert statistics.wilson(29, 29)[1] == 1.0 and statistics.wilson(0, 29)[0] == 0.0
    small, large = statistics.wilson(99, 100), statistics.wilson(9900, 10000)
    assert small[0] < large[0] < 0.99 < large[1] < small[1]
    with pytest.raises(ValueError):
        statistics.wilson(0, 0)


def test_mcnemar_exact_by_hand():
    # 1 item only the first got right, 9 only the second: P(X <= 1 or X >= 9), X ~ Binomial(10, 1/2),
    # = 2 * (1 + 10) / 1024.
    assert statistics.mcnemar(1, 9) == pytest.approx(22 / 1024, rel=1e-12)
    assert statistics.mcnemar(9, 1) == statistics.mcnemar(1, 9)
    assert statistics.mcnemar(5, 5) == pytest.approx(1.0) and statistics.mcnemar(0, 0) == 1.0
    # 0 against 5: 2 / 32, not significant at 5%; 0 against 6: 2 / 64, significant.
    assert statistics.mcnemar(0, 5) == pytest.approx(1 / 16) and statistics.mcnemar(0, 6) == pytest.approx(1 / 32)


def test_mcnemar_on_agrestis_presidential_approval_survey():
    # Agresti, Categorical Data Analysis: 1,600 people asked twice; 150 approved then not, 86 the reverse.
    # The chi-squared statistic is (150 - 86)^2 / 236 = 17.36 (p = 3.1e-5); the exact test is close to it.
    p = statistics.mcnemar(150, 86)
    assert pytest.approx(17.36, abs=0.01) == (150 - 86) ** 2 / 236
    assert 1e-5 < p < 1e-4 and p == pytest.approx(3.716e-5, rel=1e-3)


def test_binomial_test_sums_every_outcome_no_more_likely_than_the_observed():
    n, p = 10, 0.3
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    for observed in range(n + 1):
        expected = sum(q for q in pmf if q <= pmf[observed] * (1 + 1e-7))
        assert statistics.binomial_test(observed, n, p) == pytest.approx(min(1.0, expected), rel=1e-9)
    assert statistics.binomial_test(7000, 10000, 0.7) == pytest.approx(1.0)


def test_two_proportions_by_hand():
    # 45 of 100 against 30 of 100: pooled 0.375, se = sqrt(0.375 * 0.625 * 2 / 100), z = 0.15 / se = 2.19.
    z = 0.15 / math.sqrt(0.375 * 0.625 * 0.02)
    assert statistics.two_proportions(45, 100, 30, 100) == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert statistics.two_proportions(45, 100, 30, 100) == pytest.approx(0.0285, abs=1e-4)
    assert statistics.two_proportions(30, 100, 30, 100) == 1.0


def test_holm_multiplies_the_kth_smallest_by_the_tests_left_and_keeps_the_order():
    adjusted = statistics.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])  # 0.005*4, 0.01*3, max(0.03*2, .), max(0.04, 0.06)
    assert statistics.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_paired_counts_what_only_one_got_right():
    first = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1], bool)
    second = np.array([1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], bool)
    result = statistics.paired(first, second)
    assert (result["only_first"], result["only_second"]) == (2, 1)
    assert result["difference"] == pytest.approx(1 / 12) and result["p_value"] == 1.0 and not result["significant"]
    with pytest.raises(ValueError, match="different test sets"):
        statistics.paired(first, second[:5])


def test_sampling_range_grows_with_cells_and_shrinks_with_digits():
    few_cells, many_cells = statistics.sampling_range(0.99, 1000, 4), statistics.sampling_range(0.99, 1000, 169)
    more_digits = statistics.sampling_range(0.99, 100_000, 169)
    assert few_cells[0] < many_cells[0] <= many_cells[1] and more_digits[1] < many_cells[0] / 5
    # one cell's standard deviation is sqrt(0.99 * 0.01 / 1000) = 0.31 points; 169 of them span about 5 of those
    assert 4 * 0.0031 < many_cells[0] < 6 * 0.0031
    assert statistics.sampling_range(1.0, 1000, 169) == (0.0, 0.0)

"""How much of a measured accuracy, or of a difference between two, is test-set sampling noise.

Pure functions of counts, exact where the counts are small, so the tests check them against
textbook values. Every interval and test here is at the 95% level (two-sided 5%).
"""

import math

import numpy as np

LEVEL = 0.95
ALPHA = 1 - LEVEL
Z = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson's score interval for a proportion: unlike p ± 1.96·se it stays inside [0, 1]
    and keeps its coverage near 0% and 100%, where the best models are."""
    if n <= 0:
        raise ValueError("an interval needs at least one trial")
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _binomial_pmf(k: np.ndarray, n: int, p: float) -> np.ndarray:
    """P(X = k) for X ~ Binomial(n, p), in log space so that n = 10,000 does not overflow."""
    k = np.asarray(k, dtype=np.float64)
    if p in (0.0, 1.0):
        return (k == (n if p == 1.0 else 0)).astype(np.float64)
    log = (math.lgamma(n + 1) - np.vectorize(math.lgamma)(k + 1) - np.vectorize(math.lgamma)(n - k + 1)
           + k * math.log(p) + (n - k) * math.log1p(-p))
    return np.exp(log)


def binomial_test(successes: int, n: int, p: float) -> float:
    """Exact two-sided p-value of `successes` in `n` trials when the true rate is `p`:
    the probability of every outcome no more likely than the one observed."""
    pmf = _binomial_pmf(np.arange(n + 1), n, p)
    observed = pmf[successes]
    return float(min(1.0, pmf[pmf <= observed * (1 + 1e-7)].sum()))


def mcnemar(only_first: int, only_second: int) -> float:
    """McNemar's exact test: p-value that two classifiers scored on the same test items are equally
    accurate, from the items only the first got right and those only the second got right.
    Items both got right or both got wrong say nothing about which is better."""
    discordant = only_first + only_second
    if discordant == 0:
        return 1.0
    return binomial_test(only_first, discordant, 0.5)


def two_proportions(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Two-sided p-value that two rates measured on different, independent samples are equal
    (the pooled z-test; the samples here hold thousands of items, where the normal law holds)."""
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0
    z = (successes_a / n_a - successes_b / n_b) / se
    return math.erfc(abs(z) / math.sqrt(2))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment: reject where adjusted < ALPHA, and the chance of any false
    rejection among all the tests stays below ALPHA."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p))))
    result = np.empty_like(p)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def paired(first_correct: np.ndarray, second_correct: np.ndarray) -> dict:
    """Two classifiers on the same test items: each one's accuracy, what only one got right, McNemar's p."""
    first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    if first.shape != second.shape:
        raise ValueError(f"scored on different test sets ({first.size} and {second.size} items)")
    only_first, only_second = int(np.sum(first & ~second)), int(np.sum(~first & second))
    p = mcnemar(only_first, only_second)
    return {"difference": float(first.mean() - second.mean()), "only_first": only_first,
            "only_second": only_second, "p_value": p, "significant": bool(p < ALPHA)}


def sampling_range(accuracy: float, n: int, cells: int, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Mean and 95th percentile of the range (max - min) of `cells` accuracies, each measured on
    `n` items, when all share the true `accuracy`: the spread that sampling alone produces.
    Each cell drawn independently, so this is an upper bound when the cells share their digits."""
    rng = np.random.default_rng(seed)
    ranges = np.ptp(rng.binomial(n, accuracy, size=(draws, cells)) / n, axis=1)
    return float(ranges.mean()), float(np.quantile(ranges, 0.95))

"""benchmarks/analyze_targets.py's exact binomial interval against its closed forms and by
simulated coverage."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def targets(benchmark_script):
    return benchmark_script("analyze_targets")


@pytest.mark.parametrize("n", [1, 10, 550])
def test_clopper_pearson_matches_its_closed_forms_at_the_ends(targets, n):
    # k = 0: the upper end solves (1 - p)^n = 0.025; k = n: the lower end solves p^n = 0.025
    assert targets.clopper_pearson(0, n) == (0.0, pytest.approx(1 - 0.025 ** (1 / n)))
    assert targets.clopper_pearson(n, n) == (pytest.approx(0.025 ** (1 / n)), 1.0)


def test_clopper_pearson_is_symmetric_and_covers_at_least_its_level(targets):
    lo, hi = targets.clopper_pearson(17, 60)
    lo2, hi2 = targets.clopper_pearson(43, 60)
    assert (lo, hi) == pytest.approx((1 - hi2, 1 - lo2))
    rng = np.random.default_rng(0)
    p, n = 0.915, 550
    ks = rng.binomial(n, p, size=2000)
    bounds = {k: targets.clopper_pearson(int(k), n) for k in np.unique(ks)}
    covered = np.mean([bounds[k][0] <= p <= bounds[k][1] for k in ks])
    assert covered >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 2000)  # exact intervals are conservative
    assert covered <= 0.995


def test_decile_counts_bins_truths_by_true_and_positives_by_fitted_photons(targets):
    # bins [-inf, 150), [150, 400), [400, inf): a truth at exactly 150 belongs to the second
    edges = np.array([-np.inf, 150.0, 400.0, np.inf])
    found = pd.DataFrame({"photons": [100.0, 120.0, 150.0, 390.0, 2000.0],
                          "found": [True, False, True, True, False]})  # fmt: skip
    counts = targets.decile_counts(found, np.array([90.0, 160.0, 500.0]), np.array([140.0]), edges)
    np.testing.assert_array_equal(counts, [[2, 2, 1], [1, 2, 0], [1, 1, 1], [1, 0, 0]])

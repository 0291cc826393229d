"""Calibration metrics on synthetic cases with known answers (diffloc.calibration)."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, norm

from diffloc.calibration import metrics as cal
from diffloc.psi.posterior import summarise

LEVELS = (0.5, 0.8, 0.9, 0.95)
QUANTILES = (0.025, 0.05, 0.1, 0.16, 0.25, 0.5, 0.75, 0.84, 0.9, 0.95, 0.975)


def gaussian_case(seed=0, n=20, k=200, side=10, width=1.0):
    """Truth y0 ~ N(mu, s^2) per pixel and K samples ~ N(mu, (width s)^2): width 1 is the true
    posterior, width 0.5 one twice too narrow."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.2, 0.8, (n, side, side))
    s = rng.uniform(0.02, 0.1, (n, side, side))
    y0 = mu + s * rng.standard_normal(mu.shape)
    samples = mu[:, None] + width * s[:, None] * rng.standard_normal((n, k, side, side))
    return y0, samples, mu, s


def binomial_band(p, n, z=4.0):
    half = z * np.sqrt(p * (1 - p) / n)
    return p - half, p + half


def expected_order_statistic_coverage(level, k):
    """E[F(X_(j))] = j / (K + 1): linear quantiles at fractional ranks q (K - 1) cover
    (h_hi - h_lo) / (K + 1) = c (K - 1) / (K + 1) of a continuous distribution on average."""
    return level * (k - 1) / (k + 1)


@pytest.mark.parametrize("level", LEVELS)
def test_samples_from_the_true_posterior_cover_at_the_nominal_rate(level):
    y0, samples, _, _ = gaussian_case()
    mask = np.ones(y0.shape, dtype=bool)
    expected = expected_order_statistic_coverage(level, samples.shape[1])
    lo_band, hi_band = binomial_band(expected, mask.sum())
    lo, hi = cal.sample_interval(samples, level)
    assert lo_band <= cal.coverage(y0, lo, hi, mask) <= hi_band
    # the same through the stored quantiles of a posterior summary
    s = summarise(samples.astype(np.float32), QUANTILES, 0)
    qlo, qhi = cal.quantile_interval(s["quantiles"], s["quantile_levels"], level)
    assert lo_band - 0.01 <= cal.coverage(y0, qlo, qhi, mask) <= hi_band + 0.01


@pytest.mark.parametrize("level", LEVELS)
def test_a_twice_too_narrow_posterior_under_covers_as_expected(level):
    y0, samples, mu, s = gaussian_case(width=0.5, k=400)
    mask = np.ones(y0.shape, dtype=bool)
    # exact for Gaussian intervals of half the true width: P(|Z| <= z_c / 2)
    expected = 2 * norm.cdf(norm.ppf((1 + level) / 2) / 2) - 1
    lo, hi = cal.gaussian_interval(mu, 0.5 * s, level)
    band = binomial_band(expected, mask.sum())
    assert band[0] <= cal.coverage(y0, lo, hi, mask) <= band[1]
    lo, hi = cal.sample_interval(samples, level)
    assert abs(cal.coverage(y0, lo, hi, mask) - expected) < 0.03
    assert cal.coverage(y0, lo, hi, mask) < level - 0.1


def test_coverage_counts_only_support_pixels_and_closed_intervals():
    truth = np.array([[[0.0, 0.5, 1.0, 2.0]]])
    lo = np.array([[[0.0, 0.6, 0.0, 0.0]]])
    hi = np.array([[[0.0, 1.0, 1.0, 1.0]]])
    mask = np.array([[[True, True, True, False]]])
    inside, total = cal.covered_counts(truth, lo, hi, mask)
    assert inside.tolist() == [2] and total.tolist() == [3]  # 0 in [0, 0] and 1 in [0, 1]
    assert cal.coverage(truth, lo, hi, mask) == pytest.approx(2 / 3)
    assert np.isnan(cal.coverage(truth, lo, hi, np.zeros_like(mask)))
    assert cal.interval_width(lo, hi, mask) == pytest.approx((0 + 0.4 + 1.0) / 3)


def test_support_mask_is_the_union_of_maps_above_the_floor():
    a = np.array([[[0.0, 0.2, 0.04]]])
    b = np.array([[[0.06, 0.0, 0.01]]])
    assert cal.support_mask(0.05, a, b).tolist() == [[[True, True, False]]]
    with pytest.raises(ValueError, match="shape"):
        cal.support_mask(0.05, a, b[..., :2])


def test_quantile_levels_must_be_stored():
    levels = np.array(QUANTILES, dtype=np.float32)
    assert cal.available_levels(levels) == [0.5, 0.68, 0.8, 0.9, 0.95]
    with pytest.raises(ValueError, match=r"0\.005"):
        cal.quantile_interval(np.zeros((1, len(levels), 2, 2)), levels, 0.99)


def test_z_scores_of_calibrated_and_too_narrow_posteriors():
    y0, _, mu, s = gaussian_case(k=2)
    mask = np.ones(y0.shape, dtype=bool)
    z, zero = cal.z_scores(y0, mu, s, mask)
    stats = cal.z_summary(z)
    n = z.size
    assert zero == 0 and abs(stats["z_mean"]) < 4 / np.sqrt(n)
    assert stats["z_std"] == pytest.approx(1, abs=0.05)
    assert stats["z_robust_std"] == pytest.approx(1, abs=0.08)
    assert (
        binom.ppf(1e-5, n, 0.0455) / n <= stats["frac_abs_z_gt2"] <= binom.isf(1e-5, n, 0.0455) / n
    )
    narrow = cal.z_summary(cal.z_scores(y0, mu, 0.5 * s, mask)[0])
    assert narrow["z_std"] == pytest.approx(2, abs=0.1)
    # std = 0 pixels are left out and counted
    s0 = s.copy()
    s0[0, 0, :3] = 0
    z0, zero0 = cal.z_scores(y0, mu, s0, mask)
    assert zero0 == 3 and z0.size == n - 3


def test_z_histogram_is_a_density_with_clipped_tails():
    edges = np.linspace(-2, 2, 5)
    density = cal.z_histogram(np.array([-9.0, -1.5, 0.5, 0.5, 9.0]), edges)
    assert density.sum() * 1.0 == pytest.approx(1.0)  # bin width 1
    assert density.tolist() == [0.4, 0.0, 0.4, 0.2]


def crps_normal_closed_form(y, mu, sigma):
    """Gneiting et al. (2005): sigma (w (2 Phi(w) - 1) + 2 phi(w) - 1 / sqrt(pi))."""
    w = (y - mu) / sigma
    return sigma * (w * (2 * norm.cdf(w) - 1) + 2 * norm.pdf(w) - 1 / np.sqrt(np.pi))


def test_crps_of_samples_matches_the_gaussian_closed_form():
    rng = np.random.default_rng(1)
    mu, sigma = np.full((1, 2, 3), 0.4), np.full((1, 2, 3), 0.1)
    y0 = np.array([[[0.4, 0.45, 0.3], [0.6, 0.1, 0.41]]])
    mask = np.ones(y0.shape, dtype=bool)
    exact = crps_normal_closed_form(y0, mu, sigma)[mask]
    np.testing.assert_allclose(cal.crps_gaussian(y0, mu, 0.1, mask), exact, rtol=1e-10)
    samples = mu[:, None] + sigma[:, None] * rng.standard_normal((1, 20000, 2, 3))
    np.testing.assert_allclose(cal.crps_samples(y0, samples, mask), exact, rtol=0.03, atol=5e-4)
    # the fair estimator is unbiased even for small ensembles: average many 5-member CRPS
    small = mu[:, None] + sigma[:, None] * rng.standard_normal((4000, 5, 2, 3))
    fair = cal.crps_samples(np.broadcast_to(y0, (4000, 2, 3)), small, np.ones((4000, 2, 3), bool))
    np.testing.assert_allclose(fair.reshape(4000, -1).mean(0), exact, rtol=0.05, atol=1e-3)


def test_constant_sigma_fit_is_the_rms_error():
    rng = np.random.default_rng(2)
    est = rng.uniform(0, 1, (5, 20, 20))
    truth = est + 0.07 * rng.standard_normal(est.shape)
    mask = np.ones(est.shape, dtype=bool)
    assert cal.fit_constant_sigma(truth, est, mask) == pytest.approx(0.07, rel=0.03)


def test_conformal_scale_restores_coverage_of_a_too_narrow_posterior():
    fit = gaussian_case(seed=3, width=0.5)
    check = gaussian_case(seed=4, width=0.5)
    level = 0.9
    scales = []
    for y0, samples, _, _ in (fit,):
        mask = np.ones(y0.shape, dtype=bool)
        med = np.median(samples, axis=1)
        lo, hi = cal.sample_interval(samples, level)
        scales.append(cal.conformal_scale(cal.required_scale(y0, med, lo, hi, mask), level))
    (s,) = scales
    assert s == pytest.approx(2.0, rel=0.1)  # the posterior is half as wide as it should be
    y0, samples, _, _ = check
    mask = np.ones(y0.shape, dtype=bool)
    med = np.median(samples, axis=1)
    lo, hi = cal.sample_interval(samples, level)
    cov = cal.coverage(y0, cal.scale_about(med, lo, s), cal.scale_about(med, hi, s), mask)
    assert abs(cov - level) < 0.015


def test_required_scale_and_conformal_rank_on_a_constructed_case():
    truth = np.array([[[1.0, 3.0, 2.0, 2.5, 9.0]]])
    center = np.full(truth.shape, 2.0)
    lo, hi = np.full(truth.shape, 1.5), np.array([[[3.0, 3.0, 3.0, 3.0, 2.0]]])
    mask = np.ones(truth.shape, dtype=bool)
    need = cal.required_scale(truth, center, lo, hi, mask)
    np.testing.assert_allclose(need, [2.0, 1.0, 0.0, 0.5, np.inf])
    assert cal.conformal_scale(need, 0.5) == 1.0  # ceil(6 * 0.5) = 3rd smallest of 0, .5, 1, 2, inf
    assert cal.conformal_scale(need, 0.9) == np.inf


def test_bootstrap_interval_covers_the_true_median():
    rng = np.random.default_rng(5)
    hits, trials = 0, 200
    for _ in range(trials):
        values = rng.lognormal(0.0, 0.5, 60)  # true median exp(0) = 1
        med, lo, hi = cal.bootstrap_median(values, 400, rng)
        assert lo <= med <= hi
        hits += lo <= 1.0 <= hi
    assert 0.88 <= hits / trials <= 0.995  # nominal 95 %
    assert all(np.isnan(cal.bootstrap_median(np.array([np.nan]), 10, rng)))


def test_bootstrap_ratio_resamples_groups():
    rng = np.random.default_rng(6)
    est, lo, hi = cal.bootstrap_ratio(np.array([9, 18, 27]), np.array([10, 20, 30]), 200, rng)
    assert est == pytest.approx(0.9) and lo == pytest.approx(0.9) and hi == pytest.approx(0.9)
    est, lo, hi = cal.bootstrap_ratio(np.array([0, 10]), np.array([10, 10]), 500, rng)
    assert est == 0.5 and lo == 0.0 and hi == 1.0


def test_ratio_and_pearson_on_constructed_maps():
    rng = np.random.default_rng(7)
    ref = rng.uniform(0.01, 0.1, (3, 8, 8))
    mask = np.zeros(ref.shape, dtype=bool)
    mask[:, 2:6, 2:6] = True
    std = 0.5 * ref
    np.testing.assert_allclose(cal.rms_ratio(std, ref, mask), 0.5)
    np.testing.assert_allclose(cal.pearson(std, ref, mask), 1.0)
    np.testing.assert_allclose(cal.pearson(0.2 - ref, ref, mask), -1.0)
    # off-support pixels are ignored
    noisy = std.copy()
    noisy[~mask] = 5.0
    np.testing.assert_allclose(cal.rms_ratio(noisy, ref, mask), 0.5)
    # against numpy on random maps
    other = rng.uniform(0, 1, ref.shape)
    for i in range(3):
        a, b = other[i][mask[i]], ref[i][mask[i]]
        assert cal.pearson(other, ref, mask)[i] == pytest.approx(np.corrcoef(a, b)[0, 1])
        expected = np.sqrt(np.mean(a**2)) / np.sqrt(np.mean(b**2))
        assert cal.rms_ratio(other, ref, mask)[i] == pytest.approx(expected)
    assert np.isnan(cal.rms_ratio(std, ref, np.zeros_like(mask))).all()


def test_association_of_detections_across_samples():
    anchors = np.array([[10.0, 10.0], [30.0, 30.0], [60.0, 20.0]])
    detections = [
        np.array([[10.5, 9.5], [29.0, 31.0], [60.0, 20.0]]),
        np.array([[31.0, 30.0], [9.0, 11.0]]),  # anchor 2 missed; order shuffled
        np.array([[11.0, 10.0], [50.0, 50.0], [30.0, 29.0], [61.0, 21.0]]),  # a spurious one
        np.array([[12.0, 10.0], [10.0, 12.0]]),  # two near anchor 0: one-to-one keeps one
        np.zeros((0, 2)),  # nothing detected
    ]
    tracks = cal.associate(anchors, detections, radius=5.0)
    assert tracks.shape == (3, 5, 2)
    np.testing.assert_allclose(tracks[0, :3], [[10.5, 9.5], [9.0, 11.0], [11.0, 10.0]])
    np.testing.assert_allclose(tracks[1, :3], [[29.0, 31.0], [31.0, 30.0], [30.0, 29.0]])
    np.testing.assert_allclose(tracks[2, 0], [60.0, 20.0])
    assert np.isnan(tracks[2, 1]).all() and np.isnan(tracks[:, 4]).all()
    assert np.isfinite(tracks[0, 3]).all() and np.isnan(tracks[1:, 3]).all()
    summary = cal.track_summary(tracks, (0.68, 0.95))
    assert summary["n_detected"].tolist() == [4, 3, 2]
    assert summary["detection_rate"].tolist() == [0.8, 0.6, 0.4]
    u0 = tracks[0, :4, 0]
    assert summary.loc[0, "mean_u"] == pytest.approx(u0.mean())
    assert summary.loc[0, "std_u"] == pytest.approx(u0.std(ddof=1))
    # 'weibull': rank 0.025 (n + 1) = 0.125 of 4 sorted positions, below the first: the minimum
    assert summary.loc[0, "lo95_u"] == pytest.approx(u0.min())
    assert summary.loc[0, "hi68_u"] == pytest.approx(np.quantile(u0, 0.84, method="weibull"))
    # no anchors at all
    assert cal.associate(np.zeros((0, 2)), detections, 5.0).shape == (0, 5, 2)
    assert len(cal.track_summary(np.zeros((0, 5, 2)), (0.68,))) == 0


def test_localization_calibration_of_calibrated_tracks():
    rng = np.random.default_rng(8)
    n, r, spread = 3000, 39, 0.7
    truth = rng.uniform(10, 70, (n, 2))
    # the truth is a draw from each track's distribution: centres scattered by the spread
    centre = truth + spread * rng.standard_normal((n, 2))
    tracks = centre[:, None, :] + spread * rng.standard_normal((n, r, 2))
    table = cal.track_summary(tracks, (0.68, 0.95))
    table["true_u"], table["true_v"] = truth[:, 0], truth[:, 1]
    out = cal.localization_calibration(table, (0.68, 0.95), nm_per_px=27.075)
    # the track mean's error is sqrt(1 + 1/R) times the spread. With R = 39 the 95 % interval is
    # [X_(1), X_(39)], which covers an exchangeable truth with probability 38/40 = 0.95 exactly;
    # the 68 % one (ranks 6.4 and 33.6) lies between [X_(7), X_(33)] (26/40) and [X_(6), X_(34)]
    # (28/40). Both axes pooled: 2n Bernoullis.
    assert out["n_matched"] == n
    lo, hi = binomial_band(38 / 40, 2 * n)
    assert lo <= out["coverage_95"] <= hi
    lo, hi = binomial_band(26 / 40, 2 * n)[0], binomial_band(28 / 40, 2 * n)[1]
    assert lo <= out["coverage_68"] <= hi
    assert out["z_std"] == pytest.approx(np.sqrt(1 + 1 / r), abs=0.05)
    assert out["rms_spread_axis_nm"] == pytest.approx(spread * 27.075, rel=0.03)
    assert out["rmse_axis_nm"] == pytest.approx(spread * 27.075, rel=0.05)
    # twice too narrow tracks: under-coverage and z std ~ 2
    narrow = cal.track_summary(centre[:, None, :] + 0.5 * (tracks - centre[:, None, :]), (0.68,))
    narrow["true_u"], narrow["true_v"] = truth[:, 0], truth[:, 1]
    out = cal.localization_calibration(narrow, (0.68,), 1.0)
    assert abs(out["coverage_68"] - (2 * norm.cdf(0.5 * norm.ppf(0.84)) - 1)) < 0.04
    assert out["z_std"] == pytest.approx(2.0, rel=0.06)


def test_unmatched_and_single_detection_tracks_are_left_out():
    table = pd.DataFrame(
        {
            "n_detected": [5, 1, 5],
            "detection_rate": [1.0, 0.2, 1.0],
            "mean_u": [1.0, 1.0, 1.0],
            "mean_v": [1.0, 1.0, 1.0],
            "std_u": [0.1, np.nan, 0.1],
            "std_v": [0.1, np.nan, 0.1],
            "lo68_u": [0.9, np.nan, 0.9],
            "hi68_u": [1.1, np.nan, 1.1],
            "lo68_v": [0.9, np.nan, 0.9],
            "hi68_v": [1.1, np.nan, 1.1],
            "true_u": [1.05, 1.0, np.nan],
            "true_v": [1.0, 1.0, np.nan],
        }
    )
    out = cal.localization_calibration(table, (0.68,), 1.0)
    assert out["n_tracks"] == 3 and out["n_matched"] == 1
    assert out["coverage_68"] == 1.0

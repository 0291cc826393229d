"""Metropolis-Hastings against Gaussian targets; the emitter likelihood against the camera model;
the likelihood window; the push-forward against brute-force KDEs."""

import warnings

import numpy as np
import pytest

from diffloc.mcmc.sampler import (
    Setting,
    diagnostics,
    emitter_data,
    locate,
    metropolis,
    push_forward,
    sample_emitters,
)
from diffloc.physics.camera import Camera, poisson_nll
from diffloc.physics.kde import kde_images
from diffloc.physics.psf import expected_counts, pixel_integrals, pixel_integrals_pixels_first

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

Z_MAX = 4.5  # two-sided P(|z| > 4.5) = 7e-6 per check; a few hundred checks -> < 0.3 %


def _mcse(values: np.ndarray) -> np.ndarray:
    """Monte Carlo standard error of the mean of `values` [C, S, K] per K (ArviZ, via its ESS)."""
    dataset = az.convert_to_dataset({"f": values})
    return az.mcse(dataset, method="mean")["f"].to_numpy()


def _gaussian_problems(n: int, seed: int):
    """n 2-D Gaussians: means, covariances (stds 0.3-1.5, correlation up to +-0.8), energies."""
    rng = np.random.default_rng(seed)
    mean = rng.uniform(-3.0, 3.0, (n, 2))
    std = rng.uniform(0.3, 1.5, (n, 2))
    rho = rng.uniform(-0.8, 0.8, n)
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = std[:, 0] ** 2, std[:, 1] ** 2
    cov[:, 0, 1] = cov[:, 1, 0] = rho * std[:, 0] * std[:, 1]
    precision = np.linalg.inv(cov)

    def energy(theta):
        d = theta - mean[:, None, :]
        return 0.5 * np.einsum("nci,nij,ncj->nc", d, precision, d)

    return mean, cov, energy


@pytest.mark.parametrize("beta", [1.0, 0.2])
def test_recovers_mean_and_covariance_of_gaussian_targets(beta):
    n, chains = 30, 4
    mean, cov, energy = _gaussian_problems(n, seed=11)
    rng = np.random.default_rng(12)
    init = mean[:, None, :] + rng.uniform(-3.0, 3.0, (n, chains, 2))  # dispersed starts
    setting = Setting(beta, 6000, 1000, 0.05, target_acceptance=0.35, adapt_every=50)
    out = metropolis(energy, init, setting, np.ones((n, 2)), -1e6, 1e6, rng, ("a", "b"))
    # a tempered Gaussian, exp(-beta * energy), is the Gaussian with covariance cov / beta
    target = cov / beta
    d = out.draws - mean[:, None, None, :]  # [N, C, S, 2]
    # statistics f whose posterior expectation is known: theta - mean, and centred products
    stats = np.stack([d[..., 0], d[..., 1], d[..., 0] ** 2, d[..., 1] ** 2, d[..., 0] * d[..., 1]])
    truth = np.stack(
        [np.zeros(n), np.zeros(n), target[:, 0, 0], target[:, 1, 1], target[:, 0, 1]], axis=1
    )
    values = stats.transpose(2, 3, 0, 1).reshape(chains, -1, 5 * n)  # [C, S, 5 N]
    estimate = values.mean(axis=(0, 1)).reshape(5, n).T
    mcse = _mcse(values).reshape(5, n).T
    z = (estimate - truth) / mcse
    assert np.abs(z).max() < Z_MAX, np.abs(z).max()
    # the tolerance is tight: the MC error of a variance is a few % of it, not tens of %
    assert np.median(mcse[:, 2] / truth[:, 2]) < 0.05
    np.testing.assert_allclose(out.acceptance.mean(axis=1), 0.35, atol=0.05)
    assert np.all(out.step > 0)


def test_fixed_proposal_keeps_its_scale_and_rejects_moves_out_of_the_box():
    n, chains = 5, 4
    mean, _, energy = _gaussian_problems(n, seed=3)
    rng = np.random.default_rng(4)
    init = np.clip(mean[:, None, :] + rng.uniform(-0.1, 0.1, (n, chains, 2)), 0.0, None)
    lower = np.zeros(2)  # a box prior that cuts the targets: no draw may leave it
    setting = Setting(1.0, 2000, 200, 0.05)
    out = metropolis(energy, np.abs(init), setting, np.ones((n, 2)), lower, 1e6, rng, ("a", "b"))
    np.testing.assert_allclose(out.step, np.sqrt(0.05), rtol=1e-15)
    assert out.draws.min() >= 0.0
    assert out.draws.shape == (n, chains, 1800, 2) and out.nll.shape == (n, chains, 1800)
    np.testing.assert_allclose(out.nll, energy(out.draws.reshape(n, -1, 2)).reshape(out.nll.shape))
    thin = out.thinned(7)
    np.testing.assert_array_equal(thin.draws, out.draws[:, :, ::7])


def test_setting_rejects_inconsistent_values():
    with pytest.raises(ValueError, match="burn_in < iterations"):
        Setting(1.0, 100, 100, 0.05)
    with pytest.raises(ValueError, match="adapt_every <= burn_in"):
        Setting(1.0, 1000, 20, 0.05, target_acceptance=0.3, adapt_every=50)
    cfg = {"beta": 0.2, "iterations": 10, "burn_in": 2, "proposal_var": 0.05, "adapt": None}
    assert Setting.from_config(cfg) == Setting(0.2, 10, 2, 0.05)


def _emitters(n, photons, seed, camera, background=0.0, size=20):
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(4.0, size - 4.0, size=(2, n))
    i0 = np.full(n, float(photons))
    omega = expected_counts(u[:, None], v[:, None], i0[:, None], size, 0.92, background)
    return camera.sample(omega, rng), u, v, i0


@pytest.mark.parametrize("fit_photons", [False, True])
def test_emitter_likelihood_equals_the_camera_models_poisson_nll(fit_photons):
    rng = np.random.default_rng(8)
    camera = Camera.scmos((20, 20), 2.0, 100.0, 5.0, 0.05, 2.0, 0.6, rng)
    x, u, v, i0 = _emitters(6, 500, 9, camera, background=1.3)
    data = emitter_data(x, camera, 0.92, 1.3, window=10, photons=i0)  # window = whole image
    assert data.counts.shape == (6, 20, 20)
    theta = np.stack([u, v], axis=-1)[:, None, :] + rng.normal(0.0, 0.3, (6, 3, 2))
    photons = (
        rng.uniform(300.0, 700.0, (6, 3)) if fit_photons else np.broadcast_to(i0[:, None], (6, 3))
    )
    if fit_photons:
        theta = np.concatenate([theta, photons[..., None]], axis=-1)
    omega = expected_counts(theta[..., :1], theta[..., 1:2], photons[..., None], 20, 0.92, 1.3)
    expected = poisson_nll(camera.poisson_counts(x)[:, None], camera.effective_rate(omega))
    np.testing.assert_allclose(data.nll(theta), expected, rtol=1e-12)


@pytest.mark.parametrize("photons", [100, 2000])
def test_likelihood_window_changes_the_posterior_density_by_under_half_a_percent(photons):
    """Beyond the window lies < 1e-5 of the PSF, so wherever the posterior lives the windowed
    and whole-image likelihoods differ by a constant, up to < 5e-3: the posterior density (and
    every expectation under it) changes by a factor within exp(+-0.005), far below the ~2-3 %
    Monte Carlo error of a run. (Measured: <= 1e-3; a window of 4 gives 0.04-0.08.)"""
    camera = Camera.scalar((20, 20), 1.0, 100.0, 5.0)
    x, u, v, i0 = _emitters(40, photons, 10 + photons, camera)
    full = emitter_data(x, camera, 0.92, 0.0, window=10, photons=i0)
    windowed = emitter_data(x, camera, 0.92, 0.0, window=5, photons=i0)
    assert windowed.counts.shape == (40, 10, 10)
    rng = np.random.default_rng(1)
    spread = 6.0 / np.sqrt(photons)  # ~6 posterior stds: the region the chains visit
    theta = np.stack([u, v], axis=-1)[:, None, :] + rng.uniform(-spread, spread, (40, 50, 2))
    difference = full.nll(theta) - windowed.nll(theta)
    variation = difference.max(axis=1) - difference.min(axis=1)
    assert variation.max() < 5e-3, variation.max()


def test_window_and_whole_image_give_the_same_posterior():
    camera = Camera.scalar((20, 20), 1.0, 100.0, 5.0)
    x, _, _, i0 = _emitters(20, 500, 21, camera)
    setting = Setting(1.0, 1500, 500, 0.05, target_acceptance=0.35)
    runs = [
        sample_emitters(
            emitter_data(x, camera, 0.92, 0.0, window, i0),
            setting,
            4,
            1.0,
            False,
            np.random.default_rng(2),
        )
        for window in (5, 10)
    ]
    a, b = (diagnostics(r) for r in runs)
    # same random numbers, same accept decisions unless a uniform falls within 1e-3 of the
    # acceptance probability: the posteriors agree far inside their Monte Carlo error
    std = a["std_u"].to_numpy()
    np.testing.assert_allclose(a["mean_u"], b["mean_u"], atol=0.02 * std.min())
    np.testing.assert_allclose(a["std_u"], b["std_u"], rtol=0.02)


def test_locate_finds_the_emitter_and_the_window_contains_it():
    camera = Camera.scalar((20, 20), 1.0, 100.0, 5.0)
    x, u, v, i0 = _emitters(200, 100, 5, camera)
    centre = locate(camera.poisson_counts(x) - camera.effective_rate(np.zeros((20, 20))))
    err = np.hypot(centre[:, 0] - u, centre[:, 1] - v)
    assert err.max() < 1.0  # LR px: a 3 x 3 centroid, biased towards its pixel centre
    data = emitter_data(x, camera, 0.92, 0.0, window=5, photons=i0)
    margin = np.minimum(u - data.origin[:, 0], data.origin[:, 0] + 10 - u)
    assert margin.min() > 3.5  # >= 3.8 PSF stds of image on every side of every emitter
    assert data.origin.min() >= 0 and data.origin.max() <= 10


@pytest.mark.parametrize("normalize", ["max", "peak"])
def test_push_forward_equals_mean_and_variance_of_brute_force_kdes(normalize):
    rng = np.random.default_rng(3)
    u = 10.0 + 0.2 * rng.standard_normal((3, 301))
    v = 8.7 + 0.1 * rng.standard_normal((3, 301))
    mean, var = push_forward(u, v, 20, 4, 3.0, normalize, batch=64)
    y = kde_images(
        u[..., None], v[..., None], np.ones((3, 301, 1)), 20, 4, 3.0, normalize, np.float64
    )
    np.testing.assert_allclose(mean, y.mean(axis=1), rtol=0, atol=1e-13)
    np.testing.assert_allclose(var, y.var(axis=1, ddof=1), rtol=0, atol=1e-13)
    assert var.max() > 1e-3  # a real spread, not zeros


def test_pixels_first_integrals_are_the_physics_modules_numbers():
    rng = np.random.default_rng(6)
    centres = rng.uniform(-2.0, 12.0, size=(3, 7))
    first = pixel_integrals_pixels_first(centres, 10, 0.92)
    assert first.shape == (10, 3, 7)
    np.testing.assert_allclose(
        np.moveaxis(first, 0, -1), pixel_integrals(centres, 10, 0.92), atol=1e-16
    )

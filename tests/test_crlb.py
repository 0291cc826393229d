"""Cramer-Rao bound against Mortensen et al. 2010, finite differences and Poisson limits."""

import itertools

import numpy as np
import pytest
from scipy import integrate

from diffloc.physics.camera import Camera
from diffloc.physics.crlb import crlb, crlb_std_nm, fisher_information, rate_gradients
from diffloc.physics.psf import expected_counts


def mortensen_variance(photons: float, sigma: float, pixel: float, background: float) -> float:
    """Mortensen et al. 2010 (Nat. Methods 7, 377), MLE variance per axis, no EM excess noise.

    var = sigma_a^2 / N * [1 + int_0^1 ln t / (1 + t / tau) dt]^-1 with sigma_a^2 = sigma^2 +
    a^2/12 and tau = 2 pi sigma_a^2 b / (N a^2), b = background photons per pixel.
    """
    sa2 = sigma**2 + pixel**2 / 12.0
    if background == 0.0:
        return sa2 / photons
    tau = 2.0 * np.pi * sa2 * background / (photons * pixel**2)
    integral, _ = integrate.quad(lambda t: np.log(t) / (1.0 + t / tau), 0.0, 1.0, limit=200)
    return sa2 / photons / (1.0 + integral)


def _noiseless_camera(size: int) -> Camera:
    return Camera.scalar((size, size), 1.0, 100.0, 0.0)


@pytest.mark.parametrize("sigma", [0.92, 2.0, 4.0])
def test_matches_mortensen_without_background_or_readout_noise(sigma):
    size = int(16 * sigma) + 2  # +-8 sigma of image around the emitter: no light is lost
    centre = size / 2.0
    u = centre + np.array([0.0, 0.3, 0.5])
    v = centre - np.array([0.0, 0.17, 0.41])
    var = crlb(u, v, 1000.0, _noiseless_camera(size), sigma, fit_photons=False)
    expected = mortensen_variance(1000.0, sigma, 1.0, 0.0)
    # sigma_a^2 = sigma^2 + a^2/12 is exact to second order in a/sigma; the residual is tiny
    np.testing.assert_allclose(var, expected, rtol=1e-4)


def test_converges_to_mortensen_with_background_as_pixels_shrink():
    errors = []
    for sigma in (1.0, 2.0, 4.0, 8.0):  # pixel size / PSF width 1, 1/2, 1/4, 1/8
        size = int(16 * sigma) + 2
        c = size / 2.0 + 0.3
        var = crlb(c, c - 0.17, 1000.0, _noiseless_camera(size), sigma, 0.5, fit_photons=False)
        expected = mortensen_variance(1000.0, sigma, 1.0, 0.5)
        errors.append(np.abs(var / expected - 1.0).max())
    assert errors[0] < 1e-3
    assert all(later < earlier / 3.0 for earlier, later in itertools.pairwise(errors))
    assert errors[-1] < 1e-5


def test_readout_noise_acts_as_background_w2_over_g2_per_pixel():
    rng = np.random.default_rng(5)
    camera = Camera.scmos((20, 20), 2.0, 100.0, 5.0, 0.1, 3.0, 0.6, rng)
    extra = camera.readout_var.astype(np.float64) / camera.gain.astype(np.float64) ** 2
    u, v = rng.uniform(8.0, 12.0, size=(2, 7))
    with_noise = crlb(u, v, 300.0, camera, 0.92, background=1.5)
    as_background = crlb(u, v, 300.0, _noiseless_camera(20), 0.92, background=1.5 + extra)
    np.testing.assert_allclose(with_noise, as_background, rtol=1e-12)
    bigger = crlb(u, v, 300.0, _noiseless_camera(20), 0.92, background=1.5)
    assert np.all(with_noise > bigger)


def _expected_log_likelihood(theta, theta0, camera, sigma, background):
    """E_{theta0}[log p(n | theta)] up to a constant: sum omega'_0 log omega' - omega'."""
    rates = [
        camera.effective_rate(
            expected_counts(
                t[..., :1], t[..., 1:2], t[..., 2:3], camera.shape[0], sigma, background
            )
        )
        for t in (theta, theta0)
    ]
    return (rates[1] * np.log(rates[0]) - rates[0]).sum(axis=(-2, -1))


def test_fisher_information_is_minus_the_hessian_of_the_expected_log_likelihood():
    rng = np.random.default_rng(7)
    camera = Camera.scmos((20, 20), 1.5, 100.0, 5.0, 0.05, 2.0, 0.6, rng)
    n = 6
    theta0 = np.column_stack(
        [rng.uniform(6.0, 14.0, n), rng.uniform(6.0, 14.0, n), rng.uniform(100.0, 2000.0, n)]
    )
    info = fisher_information(*theta0.T, camera, 0.92, background=0.7)
    steps = np.column_stack([np.full(n, 1e-3), np.full(n, 1e-3), 3e-4 * theta0[:, 2]])
    hess = np.empty((n, 3, 3))
    for i in range(3):
        for j in range(3):
            total = 0.0
            for si, sj, sign in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                theta = theta0.copy()
                theta[:, i] += si * steps[:, i]
                theta[:, j] += sj * steps[:, j]
                total = total + sign * _expected_log_likelihood(theta, theta0, camera, 0.92, 0.7)
            hess[:, i, j] = total / (4.0 * steps[:, i] * steps[:, j])
    scale = np.sqrt(np.einsum("nii,njj->nij", info, info))  # compare entries on their own scale
    np.testing.assert_allclose(-hess / scale, info / scale, atol=1e-6)
    known = fisher_information(*theta0.T, camera, 0.92, background=0.7, fit_photons=False)
    np.testing.assert_array_equal(known, info[:, :2, :2])


def test_analytic_gradients_match_finite_differences_of_the_rate():
    camera = Camera.scalar((20, 20), 1.0, 100.0, 5.0)
    theta = np.array([9.37, 11.2, 500.0])
    _, grads = rate_gradients(*theta, camera, 0.92)
    for i, h in enumerate((1e-6, 1e-6, 1e-4)):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        numeric = (
            rate_gradients(*up, camera, 0.92)[0] - rate_gradients(*down, camera, 0.92)[0]
        ) / (2 * h)
        np.testing.assert_allclose(grads[i], numeric, atol=1e-6 * np.abs(numeric).max())


def test_photon_bound_is_poisson_without_noise_and_position_decouples_at_pixel_centres():
    camera = _noiseless_camera(20)
    var = crlb(np.array([10.5, 9.8]), np.array([10.5, 11.1]), 700.0, camera, 0.92)
    np.testing.assert_allclose(var[:, 2], 700.0, rtol=1e-9)  # var of a Poisson total = its mean
    known = crlb(10.5, 10.5, 700.0, camera, 0.92, fit_photons=False)
    np.testing.assert_allclose(var[0, :2], known, rtol=1e-9)  # symmetric: no u-i0 coupling


def test_vectorised_over_emitters_and_reported_in_nm():
    camera = Camera.scalar((20, 20), 1.0, 100.0, 5.0)
    rng = np.random.default_rng(2)
    u, v = rng.uniform(5.0, 15.0, size=(2, 3, 4))
    photons = np.array([100.0, 200.0, 500.0, 1000.0])  # broadcasts along the last axis
    batch = crlb_std_nm(u, v, photons, camera, 0.92, 108.3, fit_photons=False)
    assert batch.shape == (3, 4, 2)
    one = crlb_std_nm(u[1, 2], v[1, 2], photons[2], camera, 0.92, 108.3, fit_photons=False)
    np.testing.assert_allclose(batch[1, 2], one, rtol=1e-12)
    # more photons -> smaller bound, roughly as 1/sqrt(photons) (readout noise makes it steeper)
    assert np.all(np.diff(batch, axis=1) < 0)
    ratio = batch[..., 0, :] / batch[..., 3, :]
    assert np.all((ratio > np.sqrt(10.0)) & (ratio < 1.5 * np.sqrt(10.0)))

"""Camera noise against closed-form moments; Poisson approximation; likelihood; sCMOS maps."""

import numpy as np
import pytest
from scipy.stats import poisson

from diffloc.physics.camera import Camera, poisson_nll
from diffloc.simulate.scenes import make_camera

K = 20_000  # samples per pixel
Z_MAX = 5.0  # per-pixel z-score bound: P(|z| > 5) * 400 pixels ~ 2e-4 under the null


def _scmos(seed=3):
    return Camera.scmos((20, 20), 2.0, 100.0, 5.0, 0.1, 3.0, 0.6, np.random.default_rng(seed))


def _omega():
    return np.linspace(0.2, 60.0, 400).reshape(20, 20)


def _samples(camera, omega, seed=0):
    rng = np.random.default_rng(seed)
    return camera.sample(np.broadcast_to(omega, (K, 20, 20)), rng)


def _check_mean_var(samples, mean, var, kappa4):
    """z-scores of sample mean and variance against closed forms (kappa4 = 4th cumulant)."""
    z_mean = (samples.mean(0) - mean) / np.sqrt(var / K)
    var_se = np.sqrt((kappa4 + 2.0 * var**2) / K)
    z_var = (samples.var(0, ddof=1) - var) / var_se
    assert np.abs(z_mean).max() < Z_MAX, np.abs(z_mean).max()
    assert np.abs(z_var).max() < Z_MAX, np.abs(z_var).max()


def test_pixel_mean_and_variance_match_gain_offset_readout():
    camera, omega = _scmos(), _omega()
    g, o, w2 = (m.astype(np.float64) for m in (camera.gain, camera.offset, camera.readout_var))
    x = _samples(camera, omega)
    # x = g * Poisson(omega) + N(o, w2): cumulants add, Poisson's are all omega.
    _check_mean_var(x, g * omega + o, g**2 * omega + w2, g**4 * omega)


def test_photon_conversion_has_mean_and_variance_omega_prime():
    camera, omega = _scmos(), _omega()
    n = camera.poisson_counts(_samples(camera, omega, seed=1), clip=False)
    omega_prime = camera.effective_rate(omega)
    g, w2 = camera.gain.astype(np.float64), camera.readout_var.astype(np.float64)
    np.testing.assert_allclose(omega_prime, omega + w2 / g**2)
    _check_mean_var(n, omega_prime, omega_prime, omega)


def test_a_wrong_variance_would_be_detected():
    camera, omega = _scmos(), _omega()
    x = _samples(camera, omega, seed=2)
    g, o, w2 = (m.astype(np.float64) for m in (camera.gain, camera.offset, camera.readout_var))
    with pytest.raises(AssertionError):
        _check_mean_var(x, g * omega + o, 1.2 * (g**2 * omega + w2), g**4 * omega)


def test_poisson_counts_are_clipped_at_zero():
    camera = Camera.scalar((20, 20), 1.0, 100.0, 5.0)
    n = camera.poisson_counts(np.full((20, 20), 50.0))
    assert n.min() == 0.0


def test_photoelectrons_undo_gain_and_offset():
    camera = _scmos()
    s = np.arange(400.0).reshape(20, 20)
    x = camera.gain * s + camera.offset
    np.testing.assert_allclose(camera.photoelectrons(x), s, rtol=1e-5)


def test_nll_equals_negative_poisson_log_pmf_for_integer_counts():
    rng = np.random.default_rng(4)
    omega_prime = rng.uniform(0.5, 40.0, size=(3, 20, 20))
    n = rng.poisson(omega_prime).astype(np.float64)
    expected = -poisson.logpmf(n, omega_prime).sum(axis=(-2, -1))
    np.testing.assert_allclose(poisson_nll(n, omega_prime), expected, rtol=1e-12)


def test_expected_nll_is_minimised_at_the_true_rate():
    omega = np.full((1, 20, 20), 7.0)
    n = np.random.default_rng(5).poisson(np.broadcast_to(omega, (2000, 20, 20))).astype(float)
    scales = np.array([0.9, 1.0, 1.1])
    nll = [poisson_nll(n, s * omega).mean() for s in scales]
    assert np.argmin(nll) == 1


def test_scmos_maps_are_seeded_positive_and_centred():
    cfg = {
        "preset": "scmos",
        "gain": 2.0,
        "offset": 100.0,
        "readout_var": 5.0,
        "scmos": {"gain_log_std": 0.05, "offset_std": 2.0, "readout_var_log_std": 0.6},
    }
    a, b, c = make_camera(cfg, 20, 7), make_camera(cfg, 20, 7), make_camera(cfg, 20, 8)
    np.testing.assert_array_equal(a.readout_var, b.readout_var)
    assert not np.array_equal(a.readout_var, c.readout_var)
    assert a.gain.dtype == np.float32 and a.gain.shape == (20, 20)
    assert np.all(a.gain > 0) and np.all(a.readout_var > 0)
    assert np.median(a.gain) == pytest.approx(2.0, rel=0.02)
    assert np.median(a.readout_var) == pytest.approx(5.0, rel=0.15)
    assert a.offset.mean() == pytest.approx(100.0, abs=0.5)
    assert a.offset.std() == pytest.approx(2.0, rel=0.15)


def test_scalar_preset_is_the_constant_special_case():
    cfg = {"preset": "scalar", "gain": 1.0, "offset": 100.0, "readout_var": 5.0, "scmos": {}}
    camera = make_camera(cfg, 20, 0)
    assert np.all(camera.gain == 1.0) and np.all(camera.offset == 100.0)
    assert np.all(camera.readout_var == 5.0)


def test_invalid_maps_are_rejected():
    good = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="gain"):
        Camera(np.zeros((4, 4), np.float32), good, good)
    with pytest.raises(ValueError, match="shape"):
        Camera(good, np.ones((4, 5), np.float32), good)
    with pytest.raises(ValueError, match="non-finite"):
        Camera(good, np.full((4, 4), np.nan, np.float32), good)

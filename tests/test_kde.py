"""KDE on the HR grid: alignment with the LR image, normalisations, quadrature."""

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from diffloc.physics.kde import isolated_peak, kde_images, normalize_kde
from diffloc.physics.psf import expected_counts

S, L, SIGMA_Y = 4, 20, 3.0


def _single(u, v, normalize="peak"):
    return kde_images(np.array([u]), np.array([v]), np.array([1.0]), L, S, SIGMA_Y, normalize)


def _centroid(image):
    idx = np.arange(image.shape[-1]) + 0.5  # pixel p covers [p, p+1)
    total = image.sum()
    return (image.sum(1) @ idx) / total, (image.sum(0) @ idx) / total


def test_peak_lands_on_the_hr_pixel_containing_s_theta():
    rng = np.random.default_rng(0)
    for u, v in rng.uniform(4.0, 16.0, size=(50, 2)):
        y = _single(u, v)
        assert np.unravel_index(y.argmax(), y.shape) == (math.floor(S * u), math.floor(S * v))


def test_hr_and_lr_centroids_describe_the_same_point():
    rng = np.random.default_rng(1)
    for u, v in rng.uniform(6.0, 14.0, size=(20, 2)):
        cu_hr, cv_hr = _centroid(_single(u, v, "max").astype(np.float64))
        omega = expected_counts(np.array([u]), np.array([v]), np.array([1.0]), L, 0.92)
        cu_lr, cv_lr = _centroid(omega)
        assert cu_hr / S == pytest.approx(u, abs=1e-5) and cv_hr / S == pytest.approx(v, abs=1e-5)
        # binning biases a centroid by ~exp(-2 pi^2 sigma^2) pixels: 1e-7 LR px at sigma_x = 0.92
        assert cu_lr == pytest.approx(u, abs=1e-6) and cv_lr == pytest.approx(v, abs=1e-6)


def test_kde_pixel_matches_quadrature_of_the_kernel():
    u, v = 9.37, 10.81
    raw = kde_images(np.array([u]), np.array([v]), np.array([1.0]), L, S, SIGMA_Y, "peak")
    raw = raw.astype(np.float64) * isolated_peak(SIGMA_Y)
    for p, q in [(37, 43), (30, 50), (40, 40)]:
        expected = integrate.dblquad(
            lambda b, a: norm(S * u, SIGMA_Y).pdf(a) * norm(S * v, SIGMA_Y).pdf(b),
            p,
            p + 1,
            q,
            q + 1,
        )[0]
        assert raw[p, q] == pytest.approx(expected, rel=1e-5)


def test_max_normalisation_scales_each_image_to_one_and_keeps_empty_images_zero():
    u = np.array([[10.0, 12.0], [0.0, 0.0]])
    w = np.array([[1.0, 1.0], [0.0, 0.0]])
    y = kde_images(u, u, w, L, S, SIGMA_Y, "max")
    assert y[0].max() == 1.0
    assert np.all(y[1] == 0.0)


def test_peak_normalisation_counts_molecules():
    y = _single(10.125, 9.875)  # on an HR pixel centre: s * theta = 40.5, 39.5
    assert y.max() == pytest.approx(1.0, rel=1e-6)
    u = np.array([6.0, 14.0])
    v = np.array([6.0, 14.0])
    y2 = kde_images(u, v, np.ones(2), L, S, SIGMA_Y, "peak").astype(np.float64)
    assert y2.sum() * isolated_peak(SIGMA_Y) == pytest.approx(2.0, rel=1e-5)


def test_unknown_normalisation_is_rejected():
    with pytest.raises(ValueError, match="max"):
        normalize_kde(np.ones((1, 2, 2)), "median", SIGMA_Y)

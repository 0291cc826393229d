"""Pixel-integrated Gaussian PSF against numerical quadrature, normalisation and derivatives."""

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from diffloc.physics.psf import (
    expected_counts,
    gaussian_image,
    pixel_integral_gradients,
    pixel_integrals,
)


@pytest.mark.parametrize("sigma", [0.5, 0.92, 3.0])
def test_pixel_integrals_match_quadrature(sigma):
    rng = np.random.default_rng(1)
    centres = rng.uniform(2.0, 18.0, size=5)
    values = pixel_integrals(centres, 20, sigma)
    for c, row in zip(centres, values, strict=True):
        for a in range(20):
            expected, _ = integrate.quad(norm(c, sigma).pdf, a, a + 1, epsabs=1e-14, epsrel=1e-12)
            assert row[a] == pytest.approx(expected, rel=1e-9, abs=1e-14)


def test_pixel_sums_are_one_away_from_edges():
    centres = np.array([8.3, 10.0, 11.71])
    sums = pixel_integrals(centres, 20, 0.92).sum(axis=-1)
    np.testing.assert_allclose(sums, 1.0, rtol=0, atol=1e-12)
    image = expected_counts(np.array([10.2]), np.array([9.7]), np.array([200.0]), 20, 0.92)
    assert image.sum() == pytest.approx(200.0, rel=1e-12)


def test_pixel_sum_at_an_edge_loses_half_the_light():
    assert pixel_integrals(np.array([0.0]), 20, 1.0).sum() == pytest.approx(0.5, abs=1e-12)


def test_gradients_match_finite_differences():
    centres = np.array([3.3, 9.81, 15.02])
    h = 1e-6
    numeric = (pixel_integrals(centres + h, 20, 0.92) - pixel_integrals(centres - h, 20, 0.92)) / (
        2 * h
    )
    np.testing.assert_allclose(pixel_integral_gradients(centres, 20, 0.92), numeric, atol=1e-8)


def test_gaussian_image_against_2d_quadrature_and_linearity():
    u, v, w = np.array([7.4, 12.9]), np.array([11.1, 8.25]), np.array([150.0, 300.0])
    image = gaussian_image(u, v, w, 20, 0.92)
    for i, j in [(7, 11), (12, 8), (10, 10), (3, 15)]:
        expected = sum(
            wn
            * integrate.dblquad(
                lambda y, x, un=un, vn=vn: norm(un, 0.92).pdf(x) * norm(vn, 0.92).pdf(y),
                i,
                i + 1,
                j,
                j + 1,
                epsabs=1e-12,
            )[0]
            for un, vn, wn in zip(u, v, w, strict=True)
        )
        assert image[i, j] == pytest.approx(expected, rel=1e-7, abs=1e-10)
    singles = sum(
        gaussian_image(u[k : k + 1], v[k : k + 1], w[k : k + 1], 20, 0.92) for k in range(2)
    )
    np.testing.assert_allclose(image, singles, rtol=1e-12, atol=1e-13)


def test_padding_emitters_contribute_nothing_and_background_adds():
    u = np.array([[10.0, 0.0]])
    v = np.array([[10.0, 0.0]])
    w = np.array([[200.0, 0.0]])
    with_pad = expected_counts(u, v, w, 20, 0.92, background=3.0)
    without = expected_counts(u[:, :1], v[:, :1], w[:, :1], 20, 0.92, background=3.0)
    np.testing.assert_array_equal(with_pad, without)
    assert with_pad.min() == pytest.approx(3.0, abs=1e-9)


def test_axis_convention_u_is_rows():
    image = gaussian_image(np.array([3.5]), np.array([15.5]), np.array([1.0]), 20, 0.5)
    assert np.unravel_index(image.argmax(), image.shape) == (3, 15)

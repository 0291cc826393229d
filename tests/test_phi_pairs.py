"""benchmarks/phi_pairs.py: the pair-against-single statistic against its small-separation
limit (a weighted least-squares projection, computed here independently), and the
nearest-neighbour and matching helpers on hand-made tables."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import erf

SIGMA, PHOTONS, BACKGROUND = 0.92, 200.0, 5.0


@pytest.fixture(scope="module")
def pairs(benchmark_script):
    return benchmark_script("phi_pairs")


def _spot(u: float, v: float, photons: float, size: int) -> np.ndarray:
    """One pixel-integrated Gaussian spot, with scipy's erf (not the package's PSF code)."""
    edges = np.arange(size + 1.0)
    eu = np.diff(0.5 * erf((edges - u) / (math.sqrt(2) * SIGMA)))
    ev = np.diff(0.5 * erf((edges - v) / (math.sqrt(2) * SIGMA)))
    return photons * np.outer(eu, ev)


def _small_separation_limit(d: float, size: int) -> float:
    """2 KL to second order in the rate difference: the pair's excess over one emitter of twice
    the photons at its centre, minus its Fisher-weighted projection on the single emitter's
    four nuisance directions (u, v, photons, background), as a squared norm with weights
    1 / rate. Valid while the difference is small against the rates (d -> 0, KL ~ d^4)."""
    c, h = size / 2, 1e-5
    base = _spot(c, c, 2 * PHOTONS, size) + BACKGROUND
    pair = _spot(c - d / 2, c, PHOTONS, size) + _spot(c + d / 2, c, PHOTONS, size) + BACKGROUND
    grads = [
        (_spot(c + h, c, 2 * PHOTONS, size) - _spot(c - h, c, 2 * PHOTONS, size)) / (2 * h),
        (_spot(c, c + h, 2 * PHOTONS, size) - _spot(c, c - h, 2 * PHOTONS, size)) / (2 * h),
        _spot(c, c, 1.0, size),
        np.ones((size, size)),
    ]
    a = np.stack([g.ravel() for g in grads], axis=1)
    w = 1.0 / base.ravel()
    r = (pair - base).ravel()
    coef = np.linalg.solve(a.T @ (w[:, None] * a), a.T @ (w * r))
    resid = r - a @ coef
    return float(np.sum(w * resid**2))


def test_coincident_pair_is_one_emitter(pairs):
    assert pairs.pair_statistic(0.0, PHOTONS, SIGMA, BACKGROUND) < 1e-8


@pytest.mark.parametrize("d", [0.2, 0.3])
def test_small_separations_match_the_projection_limit(pairs, d):
    exact = pairs.pair_statistic(d, PHOTONS, SIGMA, BACKGROUND)
    assert exact == pytest.approx(_small_separation_limit(d, pairs.WINDOW), rel=0.01)


def test_statistic_grows_as_the_fourth_power_at_small_separation(pairs):
    small, double = (pairs.pair_statistic(d, PHOTONS, SIGMA, BACKGROUND) for d in (0.1, 0.2))
    assert double / small == pytest.approx(16.0, rel=0.03)


def test_statistic_grows_with_separation_and_photons(pairs):
    values = [pairs.pair_statistic(d, PHOTONS, SIGMA, BACKGROUND) for d in (0.5, 1.0, 1.5, 2.0)]
    assert np.all(np.diff(values) > 0)
    assert pairs.pair_statistic(1.0, 2 * PHOTONS, SIGMA, BACKGROUND) > values[1]


def test_statistic_needs_a_background(pairs):
    with pytest.raises(ValueError, match="background"):
        pairs.pair_statistic(1.0, PHOTONS, SIGMA, 0.0)


def test_nearest_neighbour_per_image(pairs):
    emitters = pd.DataFrame(
        {
            "image": [0, 0, 0, 1, 1, 2],
            "emitter": [0, 1, 2, 0, 1, 0],
            "u_px": [1.0, 4.0, 1.0, 5.0, 5.0, 3.0],
            "v_px": [1.0, 5.0, 2.5, 5.0, 7.0, 3.0],
        }
    )
    got = pairs.nearest_neighbour(emitters)
    assert got[:5] == pytest.approx([1.5, math.hypot(3.0, 2.5), 1.5, 2.0, 2.0])
    assert got[5] == math.inf  # alone in its image


def test_found_emitters_uses_image_and_truth(pairs):
    emitters = pd.DataFrame({"image": [0, 0, 1], "emitter": [0, 1, 0]})
    table = pd.DataFrame({"image": [0, 1, 1], "truth": [1, -1, 0]})
    assert pairs.found_emitters(table, emitters).tolist() == [False, True, True]


def test_physics_table_uses_the_test_split_scene(pairs, default_config, monkeypatch):
    """The test split's fixed photons and background (its scene override, else psf.background)
    plus the readout variance as Poisson-equivalent background; a drawn value is refused."""
    monkeypatch.setattr(pairs, "SEPARATIONS", (1.0,))
    c = default_config
    readout = c["camera"]["readout_var"] / c["camera"]["gain"] ** 2
    c["simulation"]["splits"]["test"]["scene"] = {
        "photons": {"dist": "fixed", "value": 500},
        "background": {"dist": "fixed", "value": 12.0},
    }
    table = pairs.physics_table(c)
    want = pairs.pair_statistic(1.0, 500.0, c["psf"]["sigma_x"], 12.0 + readout)
    assert table["noncentrality"].tolist() == [pytest.approx(want)]
    assert table["photons_each"].tolist() == [500.0]
    c["simulation"]["splits"]["test"]["scene"]["background"] = {
        "dist": "uniform",
        "low": 0,
        "high": 9,
    }
    with pytest.raises(ValueError, match="fixed background on the test split"):
        pairs.physics_table(c)

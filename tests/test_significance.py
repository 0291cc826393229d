"""The score test of "no emitter here" (analyze.significance: score).

Independent truths: without an emitter the statistic is standard normal (its definition: the
score over the square root of the Fisher information, for Poisson counts); with one of i0
photons at the tested position its mean is i0 sqrt(sum_k P_k^2 / w_k) (closed form from the PSF's
pixel integrals); the ring background is the true background when the known emitters' light is
subtracted.
"""

import numpy as np
import pytest
from test_analyze import models, movie, run_cli  # noqa: F401 (fixtures)

from diffloc.analyze.card import read_card
from diffloc.analyze.localise import fit_localisations
from diffloc.analyze.settings import analyze_settings
from diffloc.analyze.significance import RING_PX, ring_background, score_statistic
from diffloc.data.files import read_table
from diffloc.physics.camera import Camera
from diffloc.physics.psf import pixel_integrals

SIZE, SIGMA, BACKGROUND, R = 32, 0.92, 20.0, 3


def _camera(seed: int) -> Camera:
    return Camera.scmos((SIZE, SIZE), 1.0, 100.0, 5.0, 0.05, 2.0, 0.6, np.random.default_rng(seed))


def _frames(camera: Camera, emitters: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n frames (Poisson-approximation counts) of background BACKGROUND plus emitters (u, v, i0)
    [E, 3] in every frame."""
    omega = np.full((n, SIZE, SIZE), BACKGROUND)
    for u, v, i0 in emitters:
        omega += i0 * np.outer(pixel_integrals(u, SIZE, SIGMA), pixel_integrals(v, SIZE, SIGMA))
    x = camera.sample(omega, np.random.default_rng(seed))
    return camera.poisson_counts(x, clip=False)


def _readout(camera: Camera) -> np.ndarray:
    return camera.readout_var.astype(np.float64) / camera.gain.astype(np.float64) ** 2


def test_without_an_emitter_the_statistic_is_standard_normal():
    """4000 tests at random sub-pixel positions of background-only sCMOS frames: mean 0, std 1
    (s.e. ~0.016 and ~0.011), and the tail beyond 2 at its normal rate."""
    camera, n = _camera(1), 4000
    counts = _frames(camera, np.zeros((0, 3)), n, 2)
    rng = np.random.default_rng(3)
    theta = np.column_stack([rng.uniform(8, SIZE - 8, (n, 2)), np.zeros(n), np.full(n, 20.0)])
    z = score_statistic(counts, _readout(camera), np.arange(n), theta, R, SIGMA)
    assert abs(z.mean()) < 0.06 and abs(z.std() - 1) < 0.04, (z.mean(), z.std())
    assert abs(np.mean(z > 2) - 0.02275) < 0.008


def test_with_an_emitter_its_mean_is_the_closed_form():
    """150 photons at the tested position: mean z = i0 sqrt(sum P^2 / (b + w^2/g^2)) from the
    PSF's pixel integrals on the window, within 4 s.e. of 2000 frames."""
    camera, n = _camera(4), 2000
    u, v, i0 = 15.3, 16.6, 150.0
    counts = _frames(camera, np.array([[u, v, i0]]), n, 5)
    theta = np.tile([u, v, i0, BACKGROUND], (n, 1))
    z = score_statistic(counts, _readout(camera), np.arange(n), theta, R, SIGMA)
    rows, cols = slice(15 - R, 15 + R + 1), slice(16 - R, 16 + R + 1)
    psf = np.outer(pixel_integrals(u, SIZE, SIGMA), pixel_integrals(v, SIZE, SIGMA))[rows, cols]
    null = BACKGROUND + _readout(camera)[rows, cols]
    expected = i0 * np.sqrt((psf**2 / null).sum())
    assert abs(z.mean() - expected) < 4 * z.std() / np.sqrt(n), (z.mean(), expected)


def test_the_ring_background_subtracts_a_known_neighbour():
    """A 3000-photon emitter inside the ring of the tested position: the ring mean is the true
    background once its PSF is subtracted, and biased upwards without."""
    camera, n = _camera(6), 500
    neighbour = np.array([[16.5, 16.5 + R + 2, 3000.0]])
    counts = _frames(camera, neighbour, n, 7)
    residual = counts - _readout(camera)
    image, u, v = np.arange(n), np.full(n, 16.5), np.full(n, 16.5)
    light = neighbour[0, 2] * np.outer(
        pixel_integrals(neighbour[0, 0], SIZE, SIGMA), pixel_integrals(neighbour[0, 1], SIZE, SIGMA)
    )
    known = ring_background(residual - light, image, u, v, R)
    blind = ring_background(residual, image, u, v, R)
    ring_pixels = (2 * (R + RING_PX) + 1) ** 2 - (2 * R + 1) ** 2
    assert abs(known.mean() - BACKGROUND) < 4 * np.sqrt(BACKGROUND / ring_pixels / n)
    assert blind.mean() - BACKGROUND > 5.0


def test_the_score_test_keeps_dim_emitters_the_wald_ratio_drops():
    """Emitters of 110 photons on background 20 (about 5 CRLB stds): with a threshold of 4.5
    the score test keeps more of them than the Wald ratio at 5, fitted the same way; an unknown
    significance is refused."""
    camera, n = _camera(8), 200
    counts = _frames(camera, np.array([[16.5, 16.5, 110.0]]), n, 9)
    kept = {}
    for significance, threshold in (("wald", 5.0), ("score", 4.5)):
        found = fit_localisations(
            counts, camera, np.arange(n), np.full(n, 16.5), np.full(n, 16.5), R, SIGMA,
            position="mle", min_snr=threshold, significance=significance,
        )  # fmt: skip
        kept[significance] = len(found["image"]) / n
    assert kept["score"] > kept["wald"] + 0.1, kept
    with pytest.raises(ValueError, match="significance must be one of"):
        fit_localisations(counts, camera, np.arange(1), [16.5], [16.5], R, SIGMA, significance="x")


def test_the_cli_analyses_with_the_score_test(models, movie, tmp_path):  # noqa: F811
    """`--significance score` end to end: localisations written, the choice in the metadata;
    the settings refuse an unknown test."""
    out = tmp_path / "out"
    extra = ["--psi-frames", "0", "--significance", "score", "--min-snr", "4.5"]
    assert run_cli(movie[0] / "movie.tif", models[0], out, extra) == 0
    table, meta = read_table(out / "localisations.parquet")
    assert len(table) > 0 and meta["significance"] == "score" and meta["min_snr"] == 4.5
    with pytest.raises(ValueError, match="significance must be one of"):
        analyze_settings({"significance": "likelihood"}, read_card(models[0]), 1)
    with pytest.raises(ValueError, match="invalid analysis settings"):
        analyze_settings({"residual_rounds": -1}, read_card(models[0]), 1)

"""Dihedral batch augmentation: the symmetries it applies are exact symmetries of the forward
model (checked by rendering transformed emitters), images and targets move together."""

import itertools

import numpy as np
import pytest

from diffloc.physics.kde import kde_images
from diffloc.physics.psf import expected_counts
from diffloc.training.augment import augment_batch, dihedral_batch, dihedral_transform
from diffloc.training.loop import TrainSettings

LR, S = 12, 4


def _coordinates(u: np.ndarray, v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Emitter positions (LR px) under element k, written out by hand: transpose swaps u and v,
    flipping axis -2 maps u -> LR - u, axis -1 maps v -> LR - v (pixel i spans [i, i + 1))."""
    if k & 1:
        u, v = v, u
    if k & 2:
        u = LR - u
    if k & 4:
        v = LR - v
    return u, v


@pytest.mark.parametrize("k", range(8))
def test_each_symmetry_is_the_image_of_the_transformed_emitters(k):
    rng = np.random.default_rng(k)
    u, v = rng.uniform(1, LR - 1, (2, 5)), rng.uniform(1, LR - 1, (2, 5))
    photons, weights = rng.uniform(100, 2000, (2, 5)), np.ones((2, 5))
    camera = expected_counts(u, v, photons, LR, 0.92)
    kde = kde_images(u, v, weights, LR, S, 1.5, "max", np.float64)
    tu, tv = _coordinates(u, v, k)
    np.testing.assert_allclose(
        dihedral_transform(camera, k), expected_counts(tu, tv, photons, LR, 0.92), atol=1e-9
    )
    np.testing.assert_allclose(
        dihedral_transform(kde, k),
        kde_images(tu, tv, weights, LR, S, 1.5, "max", np.float64),
        atol=1e-9,
    )


def test_the_eight_elements_are_distinct_and_closed_under_composition():
    probe = np.arange(16.0).reshape(4, 4)
    images = [dihedral_transform(probe, k).tobytes() for k in range(8)]
    assert len(set(images)) == 8
    for a, b in itertools.product(range(8), repeat=2):
        assert dihedral_transform(dihedral_transform(probe, a), b).tobytes() in images


def test_every_array_of_an_image_gets_the_same_symmetry():
    rng = np.random.default_rng(1)
    photons = rng.normal(size=(400, 6, 6)).astype(np.float32)
    batch = {
        "photons": photons,
        "y": np.repeat(np.repeat(photons, S, 1), S, 2),
        "cond": np.repeat(np.repeat(photons, S, 1), S, 2)[:, None].repeat(2, axis=1),
    }
    out = dihedral_batch(batch, np.random.default_rng(2))
    up = np.repeat(np.repeat(out["photons"], S, 1), S, 2)
    np.testing.assert_array_equal(out["y"], up)
    np.testing.assert_array_equal(out["cond"][:, 0], up)
    np.testing.assert_array_equal(out["cond"][:, 1], up)
    ops = [
        next(k for k in range(8) if np.array_equal(dihedral_transform(p, k), q))
        for p, q in zip(photons, out["photons"], strict=True)
    ]
    counts = np.bincount(ops, minlength=8)
    assert counts.min() > 25  # 400 draws of 8 equally likely elements: 50 +- 6.6 each
    assert batch["photons"] is photons and np.array_equal(batch["photons"], photons)


def test_the_same_generator_state_gives_the_same_batch():
    batch = {"y": np.random.default_rng(3).normal(size=(16, 8, 8))}
    a = augment_batch(batch, "dihedral", np.random.default_rng(5))
    b = augment_batch(batch, "dihedral", np.random.default_rng(5))
    np.testing.assert_array_equal(a["y"], b["y"])
    assert augment_batch(batch, "none", np.random.default_rng(5)) is batch


def test_bad_settings_and_shapes_are_refused():
    with pytest.raises(ValueError, match=r"train\.augment 'rot'"):
        augment_batch({"y": np.zeros((2, 4, 4))}, "rot", np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"train\.augment 'flip'"):
        TrainSettings(1, 1, 1e-3, 1, 0.0, 0.0, 1, 1, 0.0, "cpu", False, 1, "flip")
    with pytest.raises(ValueError, match="square images; 'y'"):
        dihedral_batch({"y": np.zeros((2, 4, 5))}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="different image counts"):
        dihedral_batch(
            {"a": np.zeros((2, 4, 4)), "b": np.zeros((3, 4, 4))}, np.random.default_rng(0)
        )

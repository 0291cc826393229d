"""Synthetic movies with their truth, from the project's own forward model (tests, benchmarks),
and a phi with fixed filter weights (`analytic_phi`) that localises bright emitters untrained.

Emitters are uniform over the square frame with a Poisson number per frame (mean: density in
emitters per um^2 times the frame's area), photons from a config photon distribution
(simulate.scenes.sample_photons), a background for the movie or per frame (photons per pixel); camera
images x = g Poisson(omega) + N(o, w^2) (physics.camera), every draw from the stream
("synthetic_movie", name) of `seed`.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from diffloc import seeding
from diffloc.phi.network import Phi, build_phi
from diffloc.physics.camera import Camera
from diffloc.physics.psf import expected_counts
from diffloc.simulate.scenes import sample_photons


@dataclass(frozen=True)
class SyntheticMovie:
    """Frames (ADU float32 [N, S, S]), camera, and truth: one row per emitter with frame,
    x_px, y_px (LR px: x columns, y rows, pixel i covers [i, i + 1)) and photons."""

    frames: np.ndarray
    camera: Camera
    truth: pd.DataFrame


def synthetic_movie(
    *,
    n_frames: int,
    size: int,
    density_per_um2: float,
    photons: dict,
    background: float | np.ndarray,
    camera: Camera,
    pixel_size_nm: float,
    sigma_x: float,
    seed: int,
    name: str = "movie",
    emitters: np.ndarray | None = None,
) -> SyntheticMovie:
    """A movie of `n_frames` frames of size x size px; `background` photons per px, one value or
    one per frame ([N, 1, 1]); `emitters` [E, 4] (frame, x_px, y_px, photons) replaces the random
    scene when given."""
    rng = seeding.rng(seed, "synthetic_movie", name)
    if emitters is None:
        area_um2 = (size * pixel_size_nm / 1000.0) ** 2
        counts = rng.poisson(density_per_um2 * area_um2, size=n_frames)
        frame = np.repeat(np.arange(n_frames), counts)
        xy = rng.uniform(0.0, size, size=(len(frame), 2))
        i0 = sample_photons(photons, (len(frame),), rng)
        emitters = np.column_stack([frame, xy, i0])
    emitters = np.asarray(emitters, dtype=np.float64).reshape(-1, 4)
    frame = emitters[:, 0].astype(np.int64)
    counts = np.bincount(frame, minlength=n_frames)
    m = max(1, int(counts.max(initial=0)))
    slot = np.arange(len(frame)) - np.repeat(np.cumsum(counts) - counts, counts)
    u, v, w = (np.zeros((n_frames, m)) for _ in range(3))
    order = np.argsort(frame, kind="stable")
    f, sl = frame[order], slot
    u[f, sl], v[f, sl], w[f, sl] = emitters[order, 2], emitters[order, 1], emitters[order, 3]
    omega = expected_counts(u, v, w, size, sigma_x, background)
    frames = camera.sample(omega, rng).astype(np.float32)
    truth = pd.DataFrame(
        {
            "frame": f,
            "x_px": emitters[order, 1],
            "y_px": emitters[order, 2],
            "photons": emitters[order, 3],
        }
    )
    return SyntheticMovie(frames, camera, truth)


def analytic_phi(model: dict, scale: float, background: float) -> Phi:
    """A phi of the `phi.model` config whose weights make it a fixed filter (no training):
    photons, nearest 4x upsampling, 3 x 3 binomial smoothing (in each refinement block of a
    resize_conv head, in the output convolution of a pixel_shuffle head), then
    (value - background) * scale (photons per px -> KDE units), clamped to [0, 1]. Same FLOPs
    as a trained phi of that config."""
    phi = build_phi(model, 4)
    smooth = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    with torch.no_grad():
        for module in phi.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.zero_()
                module.bias.zero_()
        phi.context[0][0].weight[0, 0, 1, 1] = 1.0
        if phi.head == "pixel_shuffle":
            phi.shuffle.weight[:16, 0, 1, 1] = 1.0  # hr channel 0 at all 16 sub-pixel positions
            phi.out.weight[0, 0] = smooth * scale
        else:
            for block in phi.up:
                block[0].weight[0, 0, 1, 1] = 1.0
            for block in phi.refine:
                block[0].weight[0, 0] = smooth
            phi.out.weight[0, 0, 0, 0] = scale
        phi.out.bias[0] = -background * scale
    return phi.eval()

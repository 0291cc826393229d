"""Frames to KDEs: photon conversion as in training, phi on whole frames, psi's tiles.

phi is fully convolutional, so it runs on whole frames of any size (frames per forward pass
bounded by a pixel budget); psi's U-Net normalises (GroupNorm) and attends over the whole
feature map, so it runs on tiles of its training size. A tile is `tile` LR px square: a core of
`tile - 2 margin` px that owns the localisations in it, with `margin` px of context on every
side; cores tile the frame without overlap, so every localisation belongs to exactly one tile.
Beyond the frame the KDE is zero (empty, as in training images).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffloc.phi.network import Phi, predict_kde
from diffloc.physics.camera import Camera


def to_photons(frames: np.ndarray, camera: Camera) -> np.ndarray:
    """phi's input: (x - o) / g in photoelectrons, float32 [N, H, W], as phi was trained."""
    return camera.photoelectrons(frames).astype(np.float32)


def frames_per_pass(shape: tuple[int, int], batch_pixels: int) -> int:
    """Frames of `shape` (LR px) per phi forward pass within a budget of LR pixels (>= 1)."""
    return max(1, batch_pixels // (shape[0] * shape[1]))


def phi_kde(phi: Phi, photons: np.ndarray, batch_pixels: int, device: torch.device) -> np.ndarray:
    """phi's KDE estimate yhat float32 [N, sH, sW] in [0, 1] of whole photon frames [N, H, W]."""
    size = frames_per_pass(photons.shape[1:], batch_pixels)
    return predict_kde(phi, photons, size, device, fold_head=True)


@dataclass(frozen=True)
class Tiling:
    """psi tiles over a frame of `shape` (LR px): tile i along an axis covers LR
    [i * core - margin, i * core - margin + tile), its core [i * core, (i + 1) * core)."""

    shape: tuple[int, int]
    tile: int
    margin: int

    @property
    def core(self) -> int:
        """Side of a tile's core (LR px)."""
        return self.tile - 2 * self.margin

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles along rows and columns."""
        return tuple(math.ceil(n / self.core) for n in self.shape)

    def owner(self, u_px: np.ndarray, v_px: np.ndarray) -> np.ndarray:
        """Flat index (row-major over `grid`) of the tile whose core holds each position (LR px)."""
        gu, gv = self.grid
        iu = np.clip(np.floor(np.asarray(u_px) / self.core).astype(np.intp), 0, gu - 1)
        iv = np.clip(np.floor(np.asarray(v_px) / self.core).astype(np.intp), 0, gv - 1)
        return iu * gv + iv

    def origins(self) -> np.ndarray:
        """LR position [T, 2] of each tile's first pixel (may be negative), row-major."""
        gu, gv = self.grid
        iu, iv = np.meshgrid(np.arange(gu), np.arange(gv), indexing="ij")
        return np.stack([iu.ravel(), iv.ravel()], axis=1) * self.core - self.margin

    def cut(self, kde: np.ndarray, s: int) -> np.ndarray:
        """Tiles [T, s tile, s tile] of one frame's KDE [s H, s W] (zero beyond the frame)."""
        gu, gv = self.grid
        m, c, t = s * self.margin, s * self.core, s * self.tile
        padded = np.zeros((gu * c + 2 * m, gv * c + 2 * m), dtype=np.float32)
        padded[m : m + kde.shape[0], m : m + kde.shape[1]] = kde
        windows = np.lib.stride_tricks.sliding_window_view(padded, (t, t))[::c, ::c]
        return np.ascontiguousarray(windows[:gu, :gv].reshape(gu * gv, t, t))

    def stitch(self, tiles: np.ndarray, s: int) -> np.ndarray:
        """A frame's map [s H, s W] from the cores of per-tile maps [T, s tile, s tile]."""
        gu, gv = self.grid
        m, c = s * self.margin, s * self.core
        cores = tiles[:, m : m + c, m : m + c].reshape(gu, gv, c, c)
        full = cores.transpose(0, 2, 1, 3).reshape(gu * c, gv * c)
        return np.ascontiguousarray(full[: s * self.shape[0], : s * self.shape[1]])

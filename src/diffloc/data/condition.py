"""What psi's U-Net is conditioned on (`diffusion.condition`), built in this one place for
training, posterior sampling, the sampler ablation, Figure 3 and `diffloc analyze`.

`yhat` (paper): phi's KDE estimate alone, one channel in [0, 1]. `yhat_x`: also the camera
image in photons, n = (x - offset) / gain per LR px (photoelectrons; the camera's per-pixel maps
where it has them), which carries the photon count that the max-normalised yhat lacks. It is
variance-stabilised and scaled by a fixed transform, a = 2 sqrt(max(n, 0) + 3/8) / x_scale
(Anscombe 1948; dimensionless; Poisson noise of std ~1/x_scale at every brightness; readout noise
below the offset counts as 0 photons), never normalised per image (that would erase the count),
and repeated to the KDE grid: LR pixel (i, j) fills HR block [i s:(i + 1) s, j s:(j + 1) s].
A condition is float32 [N, C, sH, sW] with channel 0 = yhat (C = 1 or 2).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffloc.data.shards import Shard, image_range, read_shard, read_yhat

CONDITIONS = ("yhat", "yhat_x")


def photon_channel(photons: np.ndarray, upsample: int, x_scale: float) -> np.ndarray:
    """Camera images in photons [N, H, W] -> 2 sqrt(max(n, 0) + 3/8) / x_scale on the KDE grid,
    float32 [N, sH, sW] (dimensionless), each LR pixel repeated over s x s HR pixels."""
    a = 2.0 * np.sqrt(np.maximum(np.asarray(photons, dtype=np.float64), 0.0) + 0.375) / x_scale
    return np.repeat(np.repeat(a, upsample, axis=-2), upsample, axis=-1).astype(np.float32)


@dataclass(frozen=True)
class Condition:
    """psi's input besides y_t: kind (CONDITIONS), KDE upsampling s (HR px per LR px) and the
    photon channel's divisor x_scale (dimensionless; used by yhat_x only)."""

    kind: str
    upsample: int
    x_scale: float

    def __post_init__(self):
        if self.kind not in CONDITIONS:
            raise ValueError(f"diffusion.condition {self.kind!r}; allowed: {list(CONDITIONS)}")

    @classmethod
    def from_config(cls, psi: dict) -> "Condition":
        """From a psi config (`geometry` and `diffusion` sections, as saved in psi's model file)."""
        d = psi["diffusion"]
        return cls(d["condition"], int(psi["geometry"]["upsample"]), float(d["x_scale"]))

    @property
    def channels(self) -> int:
        """Condition channels C (the U-Net sees 1 + C input channels)."""
        return 1 if self.kind == "yhat" else 2

    def build(self, yhat: np.ndarray, photons: np.ndarray | None = None) -> np.ndarray:
        """Condition float32 [N, C, sH, sW] of phi's yhat [N, sH, sW] (KDE units) and, for
        yhat_x, the camera images in photons [N, H, W] (ignored for yhat)."""
        yhat = np.asarray(yhat, dtype=np.float32)
        if yhat.ndim != 3:
            raise ValueError(f"yhat must be [N, sH, sW], got shape {list(yhat.shape)}")
        if self.kind == "yhat":
            return yhat[:, None]
        if photons is None:
            raise ValueError("psi conditioned on 'yhat_x' needs the camera images in photons")
        channel = photon_channel(photons, self.upsample, self.x_scale)
        if channel.shape != yhat.shape:
            raise ValueError(
                f"photon images {list(np.shape(photons))} upsampled {self.upsample}x do not match "
                f"yhat {list(yhat.shape)}"
            )
        return np.stack([yhat, channel], axis=1)


def shard_photons(shard: Shard) -> np.ndarray:
    """A data shard's camera images in photons, (x - offset) / gain [N, H, W] (its camera)."""
    return shard.camera.photoelectrons(shard.x)


def read_condition(
    condition: Condition,
    yhat_paths: Sequence[str | Path],
    npz_paths: Sequence[str | Path],
    start: int,
    stop: int,
) -> np.ndarray:
    """Condition [stop - start, C, sH, sW] of images [start, stop) of a split from its yhat files
    and (yhat_x only) its data shards, both in shard order."""
    yhat = image_range(list(yhat_paths), start, stop, lambda p: read_yhat(p)[0])
    if condition.kind == "yhat":
        return condition.build(yhat)
    photons = image_range(list(npz_paths), start, stop, lambda p: shard_photons(read_shard(p)))
    return condition.build(yhat, photons)

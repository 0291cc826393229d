"""psi's uncertainty on a movie frame: posterior samples on tiles, per-localisation spread.

For one frame, psi draws K samples of the KDE on every tile (frames.Tiling) whose phi estimate
reaches `SKIP_BELOW` (an empty tile keeps phi's estimate with zero variance; with `tracks_only`,
as in the position calibration, which needs no maps, only the tiles owning a localisation), conditioned as it
was trained (`diffloc.data.condition`: the KDE tile and, for yhat_x, the same tile of the frame
in photons, zero photons beyond the frame); the cores of the
tiles' per-pixel means and variances are stitched into frame maps. Every sample is searched by
the study's detector, and each localisation (an anchor: phi's detection, in the tile whose core
holds it) is tracked across the samples as in the calibration stage
(calibration.metrics.associate: one-to-one within the match radius per sample); the spread of
its track is its position uncertainty (std, ddof 1, and central intervals). Positions in HR px.
"""

import numpy as np
import pandas as pd
import torch

from diffloc.analyze.frames import Tiling
from diffloc.calibration.metrics import associate, track_summary
from diffloc.data.condition import Condition
from diffloc.localize.detection import DetectorSettings, detect
from diffloc.psi.diffusion import Diffusion, Sampler
from diffloc.psi.unet import UNet

SKIP_BELOW = 0.05  # KDE units: a tile whose phi estimate stays below this is not sampled


def psi_frame(
    net: UNet,
    diffusion: Diffusion,
    condition: Condition,
    sampler: dict,
    kde: np.ndarray,
    photons: np.ndarray,
    tiling: Tiling,
    upsample: int,
    anchors: np.ndarray,
    detector: DetectorSettings,
    radius: float,
    levels: tuple[float, ...],
    generator: torch.Generator,
    device: torch.device,
    tracks_only: bool = False,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(posterior mean [sH, sW], variance [sH, sW], track summary per anchor) of one frame's
    phi KDE `kde`, its image in photons `photons` [H, W] ((x - o)/g) and its localisations
    `anchors` [A, 2] (frame HR px, u then v); `tracks_only`: sample only the anchors' tiles."""
    s, k = upsample, int(sampler["k"])
    tiles = tiling.cut(kde, s)
    origins = tiling.origins() * s  # HR px of each tile's first pixel
    owner = tiling.owner(anchors[:, 0] / s, anchors[:, 1] / s)
    busy = np.isin(np.arange(len(tiles)), owner)
    if not tracks_only:
        busy |= tiles.max(axis=(1, 2)) >= SKIP_BELOW
    mean, var = tiles.astype(np.float64), np.zeros(tiles.shape)
    tracks = np.full((len(anchors), k, 2), np.nan)
    sampled = np.flatnonzero(busy)
    if sampled.size:
        photon_tiles = tiling.cut(photons, 1)[sampled]
        cond = torch.from_numpy(condition.build(tiles[sampled], photon_tiles)).to(device)
        draws = diffusion.sample(
            net, cond, k, generator, Sampler.from_config(sampler), int(sampler["batch_size"])
        ).numpy()
        mean[sampled] = draws.mean(axis=1, dtype=np.float64)
        var[sampled] = draws.var(axis=1, ddof=1, dtype=np.float64)
        found = detect(draws.reshape(-1, *draws.shape[2:]), detector)
        image = found["image"].to_numpy()
        tile_of, sample_of = sampled[image // k], image % k
        position = found[["u_hr", "v_hr"]].to_numpy() + origins[tile_of]
        for t in np.intersect1d(sampled, owner):
            mine = np.flatnonzero(owner == t)
            in_tile = tile_of == t
            per_sample = [position[in_tile & (sample_of == r)] for r in range(k)]
            tracks[mine] = associate(anchors[mine], per_sample, radius)
    return tiling.stitch(mean, s), tiling.stitch(var, s), track_summary(tracks, levels)

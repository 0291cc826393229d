"""The calibration stage's inputs read from files: posterior summaries, MCMC maps, true KDEs,
phi's estimates, the emitters of a split, and per-track references (sqrt(CRLB), MCMC std).
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from diffloc.calibration.tables import DenseSet
from diffloc.data.mcmc import read_maps
from diffloc.data.posterior import load_posterior
from diffloc.data.shards import image_range, read_shard, read_yhat
from diffloc.physics.crlb import crlb_std_nm
from diffloc.psi.posterior import concat_summaries


# ----- reading the stage's inputs ------------------------------------------------------------
def read_posterior_set(paths: Sequence[str], n: int | None = None) -> dict[str, np.ndarray]:
    """psi's summaries of a set's chunk files (in order) joined along images, first n kept."""
    joined = concat_summaries([load_posterior(p)[0] for p in paths])
    if n is not None:
        have = len(joined["mean"])
        if n > have:
            raise ValueError(f"need {n} images, the posterior files {list(paths)} hold {have}")
        joined = {k: v if k == "quantile_levels" else v[:n] for k, v in joined.items()}
    return joined


def read_mcmc_set(paths: Sequence[str]) -> dict[str, np.ndarray]:
    """MCMC push-forward maps of a set's chunk files joined along images (`image` = set index)."""
    parts = [read_maps(p)[0] for p in paths]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("mean", "std", "image")}


def read_truth(npz_paths: Sequence[str], n: int) -> np.ndarray:
    """True KDEs y0 [n, H, W] of a split's first n images (shards in order)."""
    return image_range(list(npz_paths), 0, n, lambda p: read_shard(p).y)


def read_estimates(yhat_paths: Sequence[str], n: int) -> np.ndarray:
    """phi's yhat [n, H, W] of a split's first n images (shards in order)."""
    return image_range(list(yhat_paths), 0, n, lambda p: read_yhat(p)[0])


def dense_set(posterior_paths, npz_paths, yhat_paths, n: int) -> DenseSet:
    """A DenseSet of the first n images of a split from its posterior, data and yhat files."""
    s = read_posterior_set(posterior_paths, n)
    return DenseSet(
        read_truth(npz_paths, n),
        read_estimates(yhat_paths, n),
        s["mean"],
        s["std"],
        s["quantiles"],
        s["quantile_levels"],
        s["samples"],
    )


def add_isolated_references(
    tracks: pd.DataFrame,
    emitters: pd.DataFrame,
    camera,
    sigma_x: float,
    background: float,
    pixel_size_nm: float,
    fit_photons: bool,
    mcmc: pd.DataFrame | None,
) -> pd.DataFrame:
    """Tracks of isolated emitters plus, per matched track, sqrt(CRLB) at the true position
    (`crlb_u_nm`, `crlb_v_nm`; i0 known unless `fit_photons`, as in the MCMC) and the MCMC
    posterior std of that image (`mcmc_std_u_nm`, `mcmc_std_v_nm`, NaN where not sampled;
    `mcmc`: diagnostics rows with image, std_u_nm, std_v_nm)."""
    out = tracks.copy()
    for col in ("crlb_u_nm", "crlb_v_nm", "mcmc_std_u_nm", "mcmc_std_v_nm"):
        out[col] = np.nan
    ok = out["emitter"].to_numpy() >= 0
    if ok.any():
        truth = emitters.set_index(["image", "emitter"]).loc[
            list(zip(out.loc[ok, "image"], out.loc[ok, "emitter"], strict=True))
        ]
        bound = crlb_std_nm(
            truth["u_px"].to_numpy(),
            truth["v_px"].to_numpy(),
            truth["photons"].to_numpy(),
            camera,
            sigma_x,
            pixel_size_nm,
            background,
            fit_photons,
        )
        out.loc[ok, "crlb_u_nm"], out.loc[ok, "crlb_v_nm"] = bound[:, 0], bound[:, 1]
    if mcmc is not None and len(mcmc):
        std = mcmc.set_index("image")[["std_u_nm", "std_v_nm"]]
        joined = std.reindex(out["image"].to_numpy())
        out["mcmc_std_u_nm"] = np.where(ok, joined["std_u_nm"].to_numpy(), np.nan)
        out["mcmc_std_v_nm"] = np.where(ok, joined["std_v_nm"].to_numpy(), np.nan)
    return out


def read_set_emitters(npz_paths: Sequence[str], parquet_paths: Sequence[str], n: int):
    """True emitters of a split's first n images (image = index within the split) and the
    camera of its first shard."""
    frames, offset, camera = [], 0, None
    for npz, parquet in zip(npz_paths, parquet_paths, strict=True):
        shard = read_shard(npz, parquet)
        camera = camera or shard.camera
        frames.append(shard.emitters.assign(image=shard.emitters["image"] + offset))
        offset += shard.n_images
    emitters = pd.concat(frames, ignore_index=True)
    return emitters[emitters["image"] < n].reset_index(drop=True), camera

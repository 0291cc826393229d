"""The calibration stage's inputs read from files: a split's posterior summaries, MCMC maps,
true KDEs, phi's estimates and true emitters, and the ablation's images; the tables built from
them are in `diffloc.calibration.tables`.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from diffloc.calibration.ablation import AblationImages
from diffloc.calibration.tables import DenseSplit
from diffloc.data.condition import Condition, read_condition
from diffloc.data.mcmc import read_maps
from diffloc.data.posterior import PER_SUMMARY_KEYS, load_posterior
from diffloc.data.shards import image_range, read_shard, read_yhat
from diffloc.physics.camera import Camera
from diffloc.psi.posterior import concat_summaries


# ----- reading the stage's inputs ------------------------------------------------------------
def read_posterior_split(paths: Sequence[str], n: int | None = None) -> dict[str, np.ndarray]:
    """psi's summaries of a split's chunk files (in order) joined along images, first n kept."""
    joined = concat_summaries([load_posterior(p)[0] for p in paths])
    if n is not None:
        have = len(joined["mean"])
        if n > have:
            raise ValueError(f"need {n} images, the posterior files {list(paths)} hold {have}")
        joined = {k: v if k in PER_SUMMARY_KEYS else v[:n] for k, v in joined.items()}
    return joined


def read_mcmc_split(paths: Sequence[str]) -> dict[str, np.ndarray]:
    """MCMC push-forward maps of a split's chunk files joined along images (`image` = index in
    the split)."""
    parts = [read_maps(p)[0] for p in paths]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("mean", "std", "image")}


def read_truth(npz_paths: Sequence[str], n: int) -> np.ndarray:
    """True KDEs y0 [n, H, W] of a split's first n images (shards in order)."""
    return image_range(list(npz_paths), 0, n, lambda p: read_shard(p).y)


def read_estimates(yhat_paths: Sequence[str], n: int) -> np.ndarray:
    """phi's yhat [n, H, W] of a split's first n images (shards in order)."""
    return image_range(list(yhat_paths), 0, n, lambda p: read_yhat(p)[0])


def read_dense_split(
    posterior_paths: Sequence[str], npz_paths: Sequence[str], yhat_paths: Sequence[str], n: int
) -> DenseSplit:
    """A DenseSplit of the first n images of a split from its posterior, data and yhat files."""
    s = read_posterior_split(posterior_paths, n)
    return DenseSplit(
        read_truth(npz_paths, n),
        read_estimates(yhat_paths, n),
        s["mean"],
        s["std"],
        s["quantiles"],
        s["quantile_levels"],
        s["quantile_cdf"],
        s["samples"],
    )


def read_split_emitters(
    npz_paths: Sequence[str], parquet_paths: Sequence[str], n: int
) -> tuple[pd.DataFrame, Camera]:
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


def read_ablation_images(
    npz: Sequence[str],
    yhat: Sequence[str],
    iso_npz: Sequence[str],
    iso_yhat: Sequence[str],
    maps: Sequence[str],
    n_test: int,
    n_isolated: int,
    condition: Condition,
) -> AblationImages:
    """The ablation's first n_test dense test images and, when n_isolated > 0, its first
    n_isolated isolated-emitter images with their MCMC std maps (`maps`: the split's chunks);
    psi's `condition` is built from the yhat files and the data shards."""
    y0 = read_truth(npz, n_test)
    cond = {"test": read_condition(condition, yhat, npz, 0, n_test)}
    if not n_isolated:
        return AblationImages(y0, cond)
    y0_isolated = read_truth(iso_npz, n_isolated)
    cond["isolated"] = read_condition(condition, iso_yhat, iso_npz, 0, n_isolated)
    mcmc = read_mcmc_split(maps)
    at = {int(image): i for i, image in enumerate(mcmc["image"])}
    mcmc_std = mcmc["std"][[at[i] for i in range(n_isolated)]]
    return AblationImages(y0, cond, y0_isolated, mcmc_std)

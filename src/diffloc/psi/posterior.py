"""Per-image posterior summaries of psi's samples (their files: `diffloc.data.posterior`).

A summary of N images with K samples each (y units: KDE scale, nominally [0, 1]), all float32:
  mean [N, H, W]; var [N, H, W] (unbiased, ddof = 1); std [N, H, W] = sqrt(var);
  quantiles [N, Q, H, W] at quantile_levels [Q], by a numpy quantile method:
    'weibull' (Hyndman & Fan type 6): the sample at rank q (K + 1) of the K sorted samples;
    'linear' (numpy's default, type 7): the sample at rank q (K - 1) + 1;
  (ranks are 1-based, clamped to [1, K], linearly interpolated between integers)
  quantile_cdf [Q]: rank / (K + 1), the expected probability below each stored quantile when the
    truth and the K samples are exchangeable draws (E F(X_(j)) = j / (K + 1)); a central interval
    between two stored quantiles therefore covers the truth with probability cdf_hi - cdf_lo,
    exactly when both ranks are integers (order statistics) and closely otherwise. With
    'weibull' the interval at level c covers c; with 'linear' only about c (K - 1) / (K + 1);
  samples [N, R, H, W]: the first R raw samples of each image, for figures.
"""

import sys
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from diffloc.data.posterior import PER_SUMMARY_KEYS, SUMMARY_KEYS, quantile_ranks
from diffloc.psi.diffusion import Diffusion, Net, Sampler


def summarise(
    samples: np.ndarray | torch.Tensor,
    quantiles: Sequence[float],
    raw_samples: int,
    method: str = "weibull",
) -> dict[str, np.ndarray]:
    """Summaries (see module docstring) of samples [N, K, H, W]; moments accumulated in float64."""
    x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"samples must be [N, K, H, W], got shape {list(x.shape)}")
    if x.shape[1] < 2:
        raise ValueError(f"need K >= 2 samples per image for ddof=1 variances, got {x.shape[1]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinite values")
    levels = np.asarray(quantiles, dtype=np.float64)
    if levels.ndim != 1 or levels.size < 1 or np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"quantile levels must be a non-empty list in (0, 1), got {quantiles}")
    if not 0 <= raw_samples <= x.shape[1]:
        raise ValueError(f"raw_samples must be in 0..K = {x.shape[1]}, got {raw_samples}")
    ranks = quantile_ranks(levels, x.shape[1], method)
    x64 = x.astype(np.float64)
    var = x64.var(axis=1, ddof=1)
    return {
        "mean": x64.mean(axis=1).astype(np.float32),
        "var": var.astype(np.float32),
        "std": np.sqrt(var).astype(np.float32),
        "quantiles": np.moveaxis(np.quantile(x64, levels, axis=1, method=method), 0, 1).astype(
            np.float32
        ),
        "quantile_levels": levels.astype(np.float32),
        "quantile_cdf": (ranks / (x.shape[1] + 1)).astype(np.float32),
        "samples": np.ascontiguousarray(x[:, :raw_samples], dtype=np.float32),
    }


def concat_summaries(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join summaries of consecutive image groups along the image axis."""
    if not parts:
        raise ValueError("no summaries to join")
    for key in PER_SUMMARY_KEYS:
        if any(not np.array_equal(p[key], parts[0][key]) for p in parts):
            raise ValueError(f"summaries have different {key} (quantile levels, method or K)")
    out = {
        k: np.concatenate([p[k] for p in parts]) for k in SUMMARY_KEYS if k not in PER_SUMMARY_KEYS
    }
    return {**out, **{key: parts[0][key] for key in PER_SUMMARY_KEYS}}


def sample_summaries(
    diffusion: Diffusion,
    net: Net,
    yhat: torch.Tensor,
    generator: torch.Generator,
    sampler: Sampler,
    k: int,
    batch_size: int,
    quantiles: Sequence[float],
    raw_samples: int,
    method: str = "weibull",
    progress: bool = False,
    desc: str = "posterior",
) -> dict[str, np.ndarray]:
    """Draw K samples per image of a condition [N, C, H, W] (`diffloc.data.condition`; channel 0:
    yhat in [0, 1]) and summarise them, one network batch of images at a time so memory stays
    bounded; equals summarise(diffusion.sample(...)).

    `progress` shows a tqdm bar (labelled `desc`) over the image groups on stderr.
    """
    group = max(1, batch_size // k)
    bar = tqdm(
        range(0, yhat.shape[0], group),
        desc=desc,
        unit="group",
        disable=not progress,
        file=sys.stderr,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
    )
    parts = [
        summarise(
            diffusion.sample(net, yhat[i : i + group], k, generator, sampler, batch_size),
            quantiles,
            raw_samples,
            method,
        )
        for i in bar
    ]
    return concat_summaries(parts)

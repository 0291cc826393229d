"""Posterior summary files `posterior/{split}/{chunk}.npz` (`diffloc.psi.posterior` says what the
arrays hold): write, validate, read.
"""

from pathlib import Path

import numpy as np

from diffloc.data.files import REBUILD_HINT, PosteriorFileError, check_array, load_npz, save_npz

SUMMARY_KEYS = ("mean", "var", "std", "quantiles", "quantile_levels", "quantile_cdf", "samples")
PER_SUMMARY_KEYS = ("quantile_levels", "quantile_cdf")  # one value per summary, not per image


QUANTILE_METHODS = ("weibull", "linear")


def quantile_ranks(levels: np.ndarray, k: int, method: str) -> np.ndarray:
    """1-based fractional ranks among K sorted samples of numpy's quantiles at `levels`."""
    if method == "weibull":
        ranks = np.asarray(levels, dtype=np.float64) * (k + 1)
    elif method == "linear":
        ranks = np.asarray(levels, dtype=np.float64) * (k - 1) + 1
    else:
        raise ValueError(f"quantile method must be one of {QUANTILE_METHODS}, got {method!r}")
    return np.clip(ranks, 1, k)


def save_posterior(path: str | Path, summary: dict[str, np.ndarray], metadata: dict) -> None:
    """Write a summary (float32 arrays, SUMMARY_KEYS) atomically to an .npz with metadata."""
    _validate(Path(path), summary)
    save_npz(path, {k: summary[k] for k in SUMMARY_KEYS}, metadata)


def load_posterior(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read and validate a posterior summary file; PosteriorFileError naming the file if invalid."""
    arrays, metadata = load_npz(path, SUMMARY_KEYS, PosteriorFileError)
    _validate(Path(path), arrays)
    return arrays, metadata


def _validate(path: Path, s: dict[str, np.ndarray]) -> None:
    """PosteriorFileError unless the summary arrays are float32, finite and of consistent shapes."""
    missing = [k for k in SUMMARY_KEYS if k not in s]
    if missing:
        raise PosteriorFileError(f"{path}: posterior summary lacks {missing}; {REBUILD_HINT}")
    mean = s["mean"]
    if mean.ndim != 3:
        raise PosteriorFileError(
            f"{path}: 'mean' has shape {list(mean.shape)}, expected [N, H, W]; {REBUILD_HINT}"
        )
    n, h, w = mean.shape
    check_array(path, "quantile_levels", s["quantile_levels"], (None,), error=PosteriorFileError)
    q = s["quantile_levels"].shape[0]
    for name in ("mean", "var", "std"):
        check_array(path, name, s[name], (n, h, w), error=PosteriorFileError)
    check_array(path, "quantiles", s["quantiles"], (n, q, h, w), error=PosteriorFileError)
    check_array(path, "quantile_cdf", s["quantile_cdf"], (q,), error=PosteriorFileError)
    check_array(path, "samples", s["samples"], (n, None, h, w), error=PosteriorFileError)
    if np.any(s["var"] < 0):
        raise PosteriorFileError(f"{path}: 'var' has negative values; {REBUILD_HINT}")

"""Calibration metrics of posterior uncertainty: pure, vectorised functions.

Units. Per-pixel quantities are in KDE units (the scale of y, nominally [0, 1] with
`kde.normalize: max`); z-scores are dimensionless; positions are in HR pixels unless a name
says `_nm`. Arrays of images are [N, H, W]; samples are [N, K, H, W]; masks are boolean
[N, H, W] ("support": the pixels a metric is computed on).

Definitions (each function's docstring repeats its own):

- support: pixels where any of the given maps (truth y0, a posterior mean, ...) is >= a floor.
- central interval at level c: [q_{(1-c)/2}, q_{(1+c)/2}] of the posterior (its stored
  quantiles, `diffloc.psi.posterior`), or mu -+ Phi^-1((1+c)/2) sigma for a Gaussian.
- tested level of a sample interval: the probability it covers the truth when truth and samples
  are exchangeable draws, cdf_hi - cdf_lo (the stored quantiles' rank / (K + 1)): c itself for
  order-statistic ('weibull') quantiles at integer ranks, only c (K - 1)/(K + 1) for numpy's
  'linear' ones. Coverage is judged against it, and Gaussian baselines are tested at it.
- empirical coverage at c: the fraction of support pixels whose truth lies in the closed
  interval; bootstrap intervals resample whole images (pixels of an image are correlated).
- z-score: (y0 - posterior mean) / posterior std, on support pixels with std > 0.
- CRPS: the continuous ranked probability score of the predictive distribution at the truth
  (KDE units; lower is better), from the K samples with the fair ensemble estimator of
  `scoringrules` (unbiased for the CRPS of the distribution the samples come from), or the
  closed form for a Gaussian.
- std ratio: per image, RMS of one std map over the support divided by the RMS of another;
  Pearson correlation of the two std maps over the same support pixels.
- localisation: detections on each posterior sample are associated with anchors (detections on
  the posterior mean) by one-to-one matching within a radius; each anchor's track gives a
  position mean, std and central intervals over the samples it was detected in.
"""

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scoringrules as sr
from scipy.special import ndtri

from diffloc.data.posterior import quantile_ranks
from diffloc.localize.matching import match_detections

LEVEL_TOL = 1e-6  # quantile levels are stored as float32


# ----- support and intervals ---------------------------------------------------------------
def support_mask(floor: float, *maps: np.ndarray) -> np.ndarray:
    """Boolean mask [N, H, W]: pixels where any of `maps` ([N, H, W], KDE units) is >= floor."""
    if not maps:
        raise ValueError("support_mask needs at least one map")
    shape = np.shape(maps[0])
    if any(np.shape(m) != shape for m in maps):
        raise ValueError(f"maps differ in shape: {[np.shape(m) for m in maps]}")
    return np.logical_or.reduce([np.asarray(m) >= floor for m in maps])


def central_levels(level: float) -> tuple[float, float]:
    """Lower and upper quantile levels (1 - c)/2, (1 + c)/2 of the central interval at c."""
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    return (1.0 - level) / 2.0, (1.0 + level) / 2.0


def quantile_index(levels: np.ndarray, q: float) -> int:
    """Index of quantile level q in stored `levels` (float32 tolerance); ValueError if absent."""
    levels = np.asarray(levels, dtype=np.float64)
    hit = np.flatnonzero(np.abs(levels - q) <= LEVEL_TOL)
    if hit.size == 0:
        raise ValueError(
            f"quantile level {q:g} is not stored (have {[round(float(v), 6) for v in levels]}); "
            "add it to diffusion.summary.quantiles"
        )
    return int(hit[0])


def quantile_interval(
    quantiles: np.ndarray, levels: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Central interval (lo, hi) [N, H, W] at `level` from stored quantiles [N, Q, H, W]."""
    lo, hi = central_levels(level)
    return (
        quantiles[:, quantile_index(levels, lo)],
        quantiles[:, quantile_index(levels, hi)],
    )


def tested_level(levels: np.ndarray, cdf: np.ndarray, level: float) -> float:
    """Coverage probability for exchangeable draws of the stored-quantile interval at `level`:
    cdf[(1 + c)/2] - cdf[(1 - c)/2] (`levels`, `cdf` [Q] as stored with the quantiles)."""
    lo, hi = central_levels(level)
    cdf = np.asarray(cdf, dtype=np.float64)
    return float(cdf[quantile_index(levels, hi)] - cdf[quantile_index(levels, lo)])


def sample_ranks_level(k: int, level: float, method: str) -> float:
    """Tested level (see `tested_level`) of the central interval at `level` from K samples by
    numpy quantile `method` ('weibull' or 'linear')."""
    ranks = quantile_ranks(np.array(central_levels(level)), k, method)
    return float((ranks[1] - ranks[0]) / (k + 1))


def available_levels(levels: np.ndarray) -> list[float]:
    """Central interval levels c whose two quantiles (1 -+ c)/2 are both stored, increasing."""
    levels = np.asarray(levels, dtype=np.float64)
    out = []
    for q in levels[levels < 0.5 - LEVEL_TOL]:
        if np.any(np.abs(levels - (1.0 - q)) <= LEVEL_TOL):
            out.append(round(1.0 - 2.0 * float(q), 6))
    return sorted(out)


def sample_interval(
    samples: np.ndarray, level: float, method: str = "weibull"
) -> tuple[np.ndarray, np.ndarray]:
    """Central interval (lo, hi) [N, H, W] at `level` from samples [N, K, H, W] (numpy quantile
    `method`; its tested level: `sample_ranks_level`)."""
    lo, hi = central_levels(level)
    q = np.quantile(np.asarray(samples, dtype=np.float64), [lo, hi], axis=1, method=method)
    return q[0], q[1]


def gaussian_interval(
    mu: np.ndarray, sigma: np.ndarray | float, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Central interval mu -+ Phi^-1((1 + c)/2) sigma of N(mu, sigma^2) at level c."""
    half = ndtri(central_levels(level)[1]) * np.asarray(sigma, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    return mu - half, mu + half


def scale_about(center: np.ndarray, x: np.ndarray, scale: float) -> np.ndarray:
    """center + scale (x - center): widens (scale > 1) or narrows a spread about its centre."""
    center = np.asarray(center, dtype=np.float64)
    return center + scale * (np.asarray(x, dtype=np.float64) - center)


# ----- coverage ----------------------------------------------------------------------------
def covered_counts(
    truth: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: support pixels whose truth lies in [lo, hi] (closed), and support pixels.

    All arrays [N, H, W]; returns two int64 arrays [N]. Coverage = sum(covered) / sum(total).
    """
    truth, lo, hi = (np.asarray(a, dtype=np.float64) for a in (truth, lo, hi))
    mask = np.asarray(mask, dtype=bool)
    inside = (truth >= lo) & (truth <= hi) & mask
    axes = tuple(range(1, truth.ndim))
    return inside.sum(axis=axes).astype(np.int64), mask.sum(axis=axes).astype(np.int64)


def coverage(truth: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray) -> float:
    """Empirical coverage: fraction of support pixels whose truth lies in [lo, hi] (NaN if none)."""
    inside, total = covered_counts(truth, lo, hi, mask)
    return float(inside.sum() / total.sum()) if total.sum() else float("nan")


def interval_width(lo: np.ndarray, hi: np.ndarray, mask: np.ndarray) -> float:
    """Mean width hi - lo over support pixels (KDE units): the sharpness of the intervals."""
    mask = np.asarray(mask, dtype=bool)
    return float(np.mean((np.asarray(hi, np.float64) - np.asarray(lo, np.float64))[mask]))


def required_scale(
    truth: np.ndarray, center: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Per support pixel, the least s with truth in [c + s (lo - c), c + s (hi - c)] (c = center).

    1-D float64 array over the mask: (c - y0)/(c - lo) below the centre, (y0 - c)/(hi - c)
    above it, 0 at the centre, +inf where the interval has no width on the truth's side.
    """
    m = np.asarray(mask, dtype=bool)
    y, c, a, b = (np.asarray(v, dtype=np.float64)[m] for v in (truth, center, lo, hi))
    below = y < c
    need = np.where(below, c - y, y - c)
    room = np.where(below, c - a, b - c)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(need <= 0, 0.0, need / room)
    return np.where((need > 0) & (room <= 0), np.inf, s)


def conformal_scale(required: np.ndarray, level: float) -> float:
    """Split-conformal scale: the ceil((n + 1) level)-th smallest required scale (inf if > n).

    Scaling every interval about its centre by it makes the fraction of (exchangeable) new
    pixels covered at least `level` (Vovk et al. 2005; Romano et al. 2019).
    """
    r = np.sort(np.asarray(required, dtype=np.float64).ravel())
    if r.size == 0:
        raise ValueError("no pixels to fit a conformal scale on")
    rank = int(np.ceil((r.size + 1) * level))
    return float(r[rank - 1]) if rank <= r.size else float("inf")


# ----- z-scores ----------------------------------------------------------------------------
def z_scores(
    truth: np.ndarray, mean: np.ndarray, std: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, int]:
    """z = (y0 - mean) / std on support pixels with std > 0 (1-D), and how many had std = 0."""
    m = np.asarray(mask, dtype=bool)
    y, mu, s = (np.asarray(v, dtype=np.float64)[m] for v in (truth, mean, std))
    ok = s > 0
    return (y[ok] - mu[ok]) / s[ok], int((~ok).sum())


def z_summary(z: np.ndarray) -> dict[str, float]:
    """Mean, std, RMS, robust std (1.4826 x median |z - median|), fraction |z| > 2 and > 3.

    For a calibrated Gaussian posterior: 0, 1, 1, 1, 0.0455, 0.0027.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.size == 0:
        nan = float("nan")
        return dict.fromkeys(
            ("z_mean", "z_std", "z_rms", "z_robust_std", "frac_abs_z_gt2", "frac_abs_z_gt3"), nan
        )
    med = np.median(z)
    return {
        "z_mean": float(z.mean()),
        "z_std": float(z.std(ddof=1)) if z.size > 1 else float("nan"),
        "z_rms": float(np.sqrt(np.mean(z**2))),
        "z_robust_std": float(1.482602218505602 * np.median(np.abs(z - med))),
        "frac_abs_z_gt2": float(np.mean(np.abs(z) > 2)),
        "frac_abs_z_gt3": float(np.mean(np.abs(z) > 3)),
    }


def z_histogram(z: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Density histogram of z over `edges` (values beyond the edges clipped into the end bins)."""
    z = np.clip(np.asarray(z, dtype=np.float64), edges[0], edges[-1])
    counts, _ = np.histogram(z, bins=edges)
    return counts / max(1, z.size) / np.diff(edges)


# ----- CRPS --------------------------------------------------------------------------------
def crps_samples(truth: np.ndarray, samples: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per support pixel CRPS (KDE units) of the ensemble samples [N, K, H, W] at the truth.

    The fair (unbiased) estimator E|X - y| - (1/(2 K (K - 1))) sum_{i != j} |x_i - x_j|,
    computed by scoringrules.crps_ensemble in its probability-weighted-moment form ("pwm",
    identical to "fair" but O(K log K) in time and O(K) in memory per pixel). 1-D over the mask.
    """
    m = np.asarray(mask, dtype=bool)
    x = np.moveaxis(np.asarray(samples, dtype=np.float64), 1, -1)[m]  # [P, K]
    y = np.asarray(truth, dtype=np.float64)[m]
    if x.shape[-1] < 2:
        raise ValueError("the fair CRPS estimator needs at least 2 samples")
    return np.asarray(sr.crps_ensemble(y, x, m_axis=-1, estimator="pwm", backend="numpy"))


def crps_gaussian(
    truth: np.ndarray, mu: np.ndarray, sigma: np.ndarray | float, mask: np.ndarray
) -> np.ndarray:
    """Per support pixel CRPS (KDE units) of N(mu, sigma^2) at the truth (closed form, 1-D)."""
    m = np.asarray(mask, dtype=bool)
    y, mu = (np.asarray(v, dtype=np.float64)[m] for v in (truth, mu))
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), np.shape(m))[m]
    return np.asarray(sr.crps_normal(y, mu, s, backend="numpy"))


def fit_constant_sigma(truth: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> float:
    """Maximum-likelihood sigma of y0 ~ N(estimate, sigma^2) on support pixels: RMS error."""
    m = np.asarray(mask, dtype=bool)
    err = np.asarray(truth, dtype=np.float64)[m] - np.asarray(estimate, dtype=np.float64)[m]
    if err.size == 0:
        raise ValueError("no support pixels to fit sigma on")
    return float(np.sqrt(np.mean(err**2)))


# ----- bootstrap ---------------------------------------------------------------------------
def bootstrap_median(
    values: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[float, float, float]:
    """Median of `values` and its percentile-bootstrap interval at `level` (NaNs dropped)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        nan = float("nan")
        return nan, nan, nan
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    meds = np.median(v[idx], axis=1)
    lo, hi = central_levels(level)
    return float(np.median(v)), float(np.quantile(meds, lo)), float(np.quantile(meds, hi))


def bootstrap_ratio(
    num: np.ndarray, den: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[float, float, float]:
    """sum(num) / sum(den) over groups (e.g. covered / support pixels per image) and its
    percentile-bootstrap interval, resampling whole groups."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if den.sum() == 0:
        nan = float("nan")
        return nan, nan, nan
    idx = rng.integers(0, num.size, size=(n_boot, num.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    boot = boot[np.isfinite(boot)]
    lo, hi = central_levels(level)
    return float(num.sum() / den.sum()), float(np.quantile(boot, lo)), float(np.quantile(boot, hi))


# ----- std maps against a reference (MCMC) -------------------------------------------------
def rms_ratio(std: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per image [N]: sqrt(mean std^2) / sqrt(mean reference^2) over the image's support."""
    m = np.asarray(mask, dtype=bool)
    axes = tuple(range(1, m.ndim))
    n = m.sum(axis=axes)
    a = np.where(m, np.asarray(std, np.float64) ** 2, 0).sum(axis=axes)
    b = np.where(m, np.asarray(reference, np.float64) ** 2, 0).sum(axis=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.sqrt(a / b), np.nan)


def pearson(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per image [N]: Pearson correlation of maps a and b over the image's support pixels."""
    m = np.asarray(mask, dtype=bool)
    axes = tuple(range(1, m.ndim))
    n = m.sum(axis=axes)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.where(m, a, 0).sum(axis=axes) / n
        mb = np.where(m, b, 0).sum(axis=axes) / n
        shape = (-1,) + (1,) * len(axes)
        da = np.where(m, a - ma.reshape(shape), 0)
        db = np.where(m, b - mb.reshape(shape), 0)
        cov = (da * db).sum(axis=axes)
        r = cov / np.sqrt((da**2).sum(axis=axes) * (db**2).sum(axis=axes))
    return np.where(n > 1, r, np.nan)


# ----- localisation uncertainty ------------------------------------------------------------
def associate(anchors: np.ndarray, detections: Sequence[np.ndarray], radius: float) -> np.ndarray:
    """Tracks [A, R, 2] of anchor positions [A, 2] across R samples' detections ([D_r, 2] each).

    Each sample's detections are matched one-to-one to the anchors within `radius` (the most
    pairs, then the least total distance; `localize.match_detections`); an anchor's entry for a
    sample is the matched detection's position, NaN where it was not detected.
    """
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    tracks = np.full((len(anchors), len(detections), 2), np.nan)
    for r, det in enumerate(detections):
        det = np.asarray(det, dtype=np.float64).reshape(-1, 2)
        hit = match_detections(det, anchors, radius, "one_to_one")
        ok = hit >= 0
        tracks[hit[ok], r] = det[ok]
    return tracks


TRACK_COLUMNS = ("n_detected", "detection_rate", "mean_u", "mean_v", "std_u", "std_v")


def track_summary(tracks: np.ndarray, levels: Sequence[float]) -> pd.DataFrame:
    """Per track [A, R, 2]: detections, their rate, position mean and std (ddof 1) per axis, and
    per level c the central interval [lo_c_u, hi_c_u], [lo_c_v, hi_c_v] of its n positions
    (order-statistic 'weibull' quantiles, rank q (n + 1): for exchangeable draws the interval
    covers c where (1 -+ c)(n + 1)/2 are integers, e.g. 95 % at n = 39, between the bracketing
    order statistics' levels otherwise; numpy's 'linear' covers only about c (n - 1)/(n + 1)).
    Units as the tracks. Rows with < 2 detections get NaN spreads."""
    t = np.asarray(tracks, dtype=np.float64)
    det = np.isfinite(t[..., 0])
    n = det.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # anchors never detected: all-NaN rows
        mean = np.nanmean(t, axis=1)
        std = np.nanstd(t, axis=1, ddof=1)
    std[n < 2] = np.nan
    out = {
        "n_detected": n,
        "detection_rate": n / max(1, t.shape[1]),
        "mean_u": mean[:, 0],
        "mean_v": mean[:, 1],
        "std_u": std[:, 0],
        "std_v": std[:, 1],
    }
    for c in levels:
        lo, hi = central_levels(c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = (
                np.nanquantile(t, [lo, hi], axis=1, method="weibull")
                if t.size
                else np.full((2, len(t), 2), np.nan)
            )
        tag = level_tag(c)
        for k, axis in enumerate(("u", "v")):
            out[f"lo{tag}_{axis}"] = np.where(n >= 2, q[0, :, k], np.nan)
            out[f"hi{tag}_{axis}"] = np.where(n >= 2, q[1, :, k], np.nan)
    return pd.DataFrame(out)


def level_tag(level: float) -> str:
    """'68' for 0.68, '95' for 0.95, '99.7' for 0.997: a column-name tag in percent."""
    return f"{100 * level:g}"


def localization_calibration(
    tracks: pd.DataFrame, levels: Sequence[float], nm_per_px: float
) -> dict[str, float]:
    """Calibration of track spreads against the truth, for tracks matched to a true emitter.

    `tracks`: track_summary rows plus `true_u`, `true_v` (same units), NaN where unmatched.
    Per axis: error = mean - truth, z = error / std; coverage of each level's interval of the
    truth. Both axes pooled: coverage_<c> (fraction), z statistics, rmse_axis_nm (RMS error per
    axis, nm) and rms_spread_axis_nm (RMS of the per-axis spreads std, nm; `nm_per_px` converts).
    """
    ok = np.isfinite(tracks["true_u"].to_numpy()) & (tracks["n_detected"].to_numpy() >= 2)
    t = tracks[ok]
    out: dict[str, float] = {"n_tracks": float(len(tracks)), "n_matched": float(ok.sum())}
    errors, stds, cover = [], [], {c: [] for c in levels}
    for axis in ("u", "v"):
        truth = t[f"true_{axis}"].to_numpy()
        errors.append(t[f"mean_{axis}"].to_numpy() - truth)
        stds.append(t[f"std_{axis}"].to_numpy())
        for c in levels:
            tag = level_tag(c)
            lo, hi = t[f"lo{tag}_{axis}"].to_numpy(), t[f"hi{tag}_{axis}"].to_numpy()
            cover[c].append((truth >= lo) & (truth <= hi))
    err, std = np.concatenate(errors), np.concatenate(stds)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std > 0, err / std, np.nan)
    z = z[np.isfinite(z)]
    for c in levels:
        hits = np.concatenate(cover[c])
        out[f"coverage_{level_tag(c)}"] = float(hits.mean()) if hits.size else float("nan")
    zs = z_summary(z)
    out.update({k: zs[k] for k in ("z_mean", "z_std", "z_rms", "z_robust_std")})
    nan = float("nan")
    out["rmse_axis_nm"] = float(np.sqrt(np.mean(err**2)) * nm_per_px) if err.size else nan
    out["rms_spread_axis_nm"] = float(np.sqrt(np.nanmean(std**2)) * nm_per_px) if std.size else nan
    return out

"""psi's position intervals recalibrated on a simulated movie with known truth (split conformal).

psi's central interval of a localisation's position (its track across K posterior samples) is
too narrow where psi is over-confident and too wide where it is under-confident. When the models'
card is built (rule analysis_card), a calibration movie from the project's own forward model
at the density and over the backgrounds of `analyze.position_calibration` is analysed as a
user's movie (analyze.calibration_movie). The centre of psi's track carries an error its spread
does not show (phi's KDE-position error, ~10 nm, which stays where psi's samples agree): the
floor b (nm) is the maximum-likelihood fit of the 68 % midpoints' errors as
N(0, a_bin^2 sigma^2 + b^2), sigma = h_68 / z_68 psi's own spread and a_bin one factor per
photon bin (`floor_nm: fit`), or given. For every localisation matched to the truth, every axis
and every level c, r = |truth - m_c| / sqrt(h_c^2 + (z_c b)^2) with m_c, h_c the midpoint and
half-width of psi's c interval and z_c the standard normal's (1 + c)/2 quantile. Per bin of
fitted photons the scale s_c is the ceil((n + 1) c)-th smallest of the n ratios (split conformal
prediction): a new localisation exchangeable with the calibration ones has the interval
m_c +- s_c sqrt(h_c^2 + (z_c b)^2) cover its truth with probability >= c (and < c + 1/(n + 1);
b is fitted on the same localisations, one number, so this holds up to that fit). The floor and
scales go into the card and are applied to every analysis with it.
"""

import itertools
import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

from diffloc.calibration.metrics import level_tag

UNCERTAINTY_LEVEL = 0.68  # the reported uncertainty is the (scaled) half-width of this interval


class CalibrationSizeError(ValueError):
    """Too few calibration localisations in a photon bin for a conformal scale at some level."""


def conformal_scale(ratios: np.ndarray, level: float) -> float:
    """The ceil((n + 1) level)-th smallest of n ratios (dimensionless); CalibrationSizeError when
    n is too small for that rank (n < level / (1 - level))."""
    r = np.sort(np.asarray(ratios, dtype=np.float64).ravel())
    rank = math.ceil((len(r) + 1) * level - 1e-9)
    if rank > len(r):
        raise CalibrationSizeError(
            f"{len(r)} ratios cannot give a conformal {level:g} scale: at least "
            f"{math.ceil(level / (1 - level) - 1e-9)} are needed"
        )
    return float(r[rank - 1])


def level_z(level: float) -> float:
    """The standard normal's (1 + level)/2 quantile: the half-width of a central `level`
    interval in standard deviations (0.994 at 0.68, 1.960 at 0.95)."""
    return float(stats.norm.ppf((1 + level) / 2))


def interval_ratios(
    truth: np.ndarray, lo: np.ndarray, hi: np.ndarray, pad: float = 0.0
) -> np.ndarray:
    """|truth - midpoint| / sqrt(half-width^2 + pad^2) of intervals [lo, hi] (any one length
    unit; pad in it too)."""
    mid, width = (lo + hi) / 2, np.hypot((hi - lo) / 2, pad)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(width > 0, np.abs(truth - mid) / width, np.where(truth == mid, 0.0, np.inf))


def fit_floor(matched: pd.DataFrame, edges: list[float]) -> tuple[float, list[float | None]]:
    """(b nm, a per photon bin) maximising the Gaussian likelihood of the 68 % midpoints'
    errors truth - m (both axes) as N(0, a_bin^2 sigma^2 + b^2), sigma = h_68 / z_68 (nm); a of
    a bin without localisations is None."""
    tag, z = level_tag(UNCERTAINTY_LEVEL), level_z(UNCERTAINTY_LEVEL)
    err, sigma = [], []
    for a in ("x", "y"):
        lo = matched[f"psi_lo{tag}_{a}_nm"].to_numpy(np.float64)
        hi = matched[f"psi_hi{tag}_{a}_nm"].to_numpy(np.float64)
        err.append(matched[f"true_{a}_nm"].to_numpy(np.float64) - (lo + hi) / 2)
        sigma.append((hi - lo) / 2 / z)
    err, sigma = np.concatenate(err), np.concatenate(sigma)
    groups = np.tile(photon_bins(matched["photons"].to_numpy(), edges), 2)
    scale = float(np.sqrt(np.mean(err**2)))  # nm: the grid's unit

    def bin_fit(g: int, b: float) -> tuple[float, float]:
        """(negative log-likelihood, log a) of bin g's errors at floor b, a profiled out."""
        e2, s2 = err[groups == g] ** 2, sigma[groups == g] ** 2

        def nll(log_a: float) -> float:
            var = np.exp(2 * log_a) * s2 + b**2
            return float(0.5 * np.sum(np.log(var) + e2 / var))

        best = optimize.minimize_scalar(nll, bounds=(-12.0, 4.0), method="bounded")
        return float(best.fun), float(best.x)

    present = [int(g) for g in np.unique(groups)]

    def profile(log_b: float) -> float:
        return sum(bin_fit(g, np.exp(log_b) * scale)[0] for g in present)

    grid = np.linspace(np.log(1e-3), np.log(3.0), 61)  # floors 0.001-3 x the RMS error
    k = int(np.argmin([profile(v) for v in grid]))
    bounds = (grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)])
    log_b = float(optimize.minimize_scalar(profile, bounds=bounds, method="bounded").x)
    floor = float(np.exp(log_b) * scale)
    factors: list[float | None] = [None] * (len(edges) + 1)
    for g in present:
        factors[g] = float(np.exp(bin_fit(g, floor)[1]))
    return floor, factors


def photon_bins(photons: np.ndarray, edges: list[float]) -> np.ndarray:
    """Bin index of fitted photon counts: 0 below edges[0], len(edges) from edges[-1] up."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), photons, side="right")


def bin_names(edges: list[float]) -> list[str]:
    """Readable names of the photon bins, in bin-index order."""
    bounds = [0.0, *edges, math.inf]
    return [f"photons [{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(bounds)]


def fit_interval_scales(
    matched: pd.DataFrame, levels: list[float], edges: list[float], floor: float | str = 0.0
) -> dict:
    """Conformal scales per photon bin and level from localisations matched to the truth:
    columns photons, true_x_nm, true_y_nm and psi_lo<c>_x_nm ... psi_hi<c>_y_nm (nm), over
    psi's half-widths padded by the floor (nm, or "fit": `fit_floor`). Returns {photon_edges,
    bins, levels, floor_nm, spread_factors [bin] (the fit's a; None: floor given), scales
    [bin][level], n [bin]} (n: localisations; each gives an x and a y ratio)."""
    if floor == "fit":
        floor, factors = fit_floor(matched, edges)
    else:
        floor, factors = float(floor), None
    groups = photon_bins(matched["photons"].to_numpy(), edges)
    names = bin_names(edges)
    scales, counts = [], []
    for g, name in enumerate(names):
        rows = matched[groups == g]
        per_level = []
        for c in levels:
            tag = level_tag(c)
            ratios = np.concatenate(
                [
                    interval_ratios(
                        rows[f"true_{a}_nm"].to_numpy(),
                        rows[f"psi_lo{tag}_{a}_nm"].to_numpy(),
                        rows[f"psi_hi{tag}_{a}_nm"].to_numpy(),
                        level_z(c) * floor,
                    )
                    for a in ("x", "y")
                ]
            )
            try:
                per_level.append(conformal_scale(ratios, c))
            except CalibrationSizeError as exc:
                raise CalibrationSizeError(
                    f"analyze.position_calibration: {name}: {exc}; raise frames or "
                    "density_per_um2, or use fewer photon_edges"
                ) from None
        scales.append(per_level)
        counts.append(len(rows))
    return {
        "photon_edges": [float(e) for e in edges],
        "bins": names,
        "levels": [float(c) for c in levels],
        "floor_nm": floor,
        "spread_factors": factors,
        "scales": scales,
        "n": counts,
    }


DENSITY_RANGE = 2.0  # a movie within this factor of the calibration movie's density passes


def density_mismatch(
    n_localisations: int, n_frames: int, area_um2: float, calibration: dict | None
) -> str | None:
    """A warning when the movie's localisation density (per um^2 and frame) differs from the
    calibration movie's emitter density by more than DENSITY_RANGE; None when it does not or
    without a calibration."""
    if calibration is None or n_frames == 0:
        return None
    density = n_localisations / (n_frames * area_um2)
    calibrated = float(calibration["density_per_um2"])
    if 1 / DENSITY_RANGE <= density / calibrated <= DENSITY_RANGE:
        return None
    return (
        f"{density:.3g} localisations per um^2 and frame, but psi's position intervals were "
        f"calibrated at {calibrated:g} emitters per um^2 (analyze.position_calibration."
        "density_per_um2): their coverage is not guaranteed at this density; rebuild the card "
        "with density_per_um2 set to the movie's"
    )


def background_mismatch(backgrounds: np.ndarray, calibration: dict | None) -> str | None:
    """A warning when the median fitted background (photons per px) of a movie's localisations
    lies outside the calibration movie's background range; None when inside, without
    localisations or without a calibration."""
    if calibration is None or len(backgrounds) == 0:
        return None
    median = float(np.median(backgrounds))
    low, high = (float(calibration["background"][k]) for k in ("low", "high"))
    if low <= median <= high:
        return None
    return (
        f"median fitted background {median:.3g} photons per px, but psi's position intervals "
        f"were calibrated on backgrounds {low:g}-{high:g} (analyze.position_calibration."
        "background): their coverage is not guaranteed; rebuild the card with the movie's range"
    )


def apply_interval_scales(table: pd.DataFrame, calibration: dict | None) -> pd.DataFrame:
    """`table` with psi's intervals (psi_lo<c>_x_nm ...) about their midpoints widened to the
    half-width s_c sqrt(h_c^2 + (z_c b)^2): the card's floor b (nm) and scale s_c for each row's
    photon bin (column psi_scale: the 68 % one), and
    uncertainty_x_nm / _y_nm set to the half-width of the 68 % interval (sqrt(CRLB) where psi did
    not run). Without a calibration (None) the intervals stay psi's own (psi_scale 1)."""
    out = table.copy()
    tag = level_tag(UNCERTAINTY_LEVEL)
    if calibration is not None and len(out):
        groups = photon_bins(out["photons"].to_numpy(), calibration["photon_edges"])
        scales = np.asarray(calibration["scales"], dtype=np.float64)[groups]  # [rows, levels]
        floor = float(calibration["floor_nm"])
        for k, c in enumerate(calibration["levels"]):
            t = level_tag(c)
            if f"psi_lo{t}_x_nm" not in out:
                continue
            for a in ("x", "y"):
                lo, hi = out[f"psi_lo{t}_{a}_nm"].to_numpy(), out[f"psi_hi{t}_{a}_nm"].to_numpy()
                mid = (lo + hi) / 2
                half = np.hypot((hi - lo) / 2, level_z(c) * floor) * scales[:, k]
                out[f"psi_lo{t}_{a}_nm"], out[f"psi_hi{t}_{a}_nm"] = mid - half, mid + half
        scale = scales[:, list(calibration["levels"]).index(UNCERTAINTY_LEVEL)]
    else:
        scale = np.ones(len(out))
    out["psi_scale"] = np.where(out["psi_sampled"].to_numpy(bool), scale, np.nan)
    for a in ("x", "y"):
        half = (out[f"psi_hi{tag}_{a}_nm"] - out[f"psi_lo{tag}_{a}_nm"]) / 2
        out[f"uncertainty_{a}_nm"] = np.where(np.isfinite(half), half, out[f"crlb_{a}_nm"])
    return out

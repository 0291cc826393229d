"""psi's position intervals recalibrated on a simulated movie with known truth (split conformal).

psi's central interval of a localisation's position (its track across K posterior samples) is
too narrow where psi is over-confident and too wide where it is under-confident. When the models'
card is built (rule analysis_card), a calibration movie from the project's own forward model
at the density and over the backgrounds of `analyze.position_calibration` is analysed as a
user's movie (analyze.calibration_movie). For every localisation matched to the truth, every axis and
every level c, r = |truth - m_c| / h_c with m_c, h_c the midpoint and half-width of psi's c
interval. Per bin of fitted photons the scale s_c is the ceil((n + 1) c)-th smallest of the n
ratios (split conformal prediction): a new localisation exchangeable with the calibration ones
has the interval [m_c - s_c h_c, m_c + s_c h_c] cover its truth with probability >= c (and
< c + 1/(n + 1)). The scales go into the card and are applied to every analysis with it.
"""

import itertools
import math

import numpy as np
import pandas as pd

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


def interval_ratios(truth: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """|truth - midpoint| / half-width of intervals [lo, hi] (any one length unit)."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(half > 0, np.abs(truth - mid) / half, np.where(truth == mid, 0.0, np.inf))


def photon_bins(photons: np.ndarray, edges: list[float]) -> np.ndarray:
    """Bin index of fitted photon counts: 0 below edges[0], len(edges) from edges[-1] up."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), photons, side="right")


def bin_names(edges: list[float]) -> list[str]:
    """Readable names of the photon bins, in bin-index order."""
    bounds = [0.0, *edges, math.inf]
    return [f"photons [{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(bounds)]


def fit_interval_scales(matched: pd.DataFrame, levels: list[float], edges: list[float]) -> dict:
    """Conformal scales per photon bin and level from localisations matched to the truth:
    columns photons, true_x_nm, true_y_nm and psi_lo<c>_x_nm ... psi_hi<c>_y_nm (nm). Returns
    {photon_edges, bins, levels, scales [bin][level], n [bin]} (n: localisations; each gives an
    x and a y ratio)."""
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
    """`table` with psi's intervals (psi_lo<c>_x_nm ...) scaled about their midpoints by the
    card's scales for each row's photon bin (column psi_scale: the 68 % one), and
    uncertainty_x_nm / _y_nm set to the half-width of the 68 % interval (sqrt(CRLB) where psi did
    not run). Without a calibration (None) the intervals stay psi's own (psi_scale 1)."""
    out = table.copy()
    tag = level_tag(UNCERTAINTY_LEVEL)
    if calibration is not None and len(out):
        groups = photon_bins(out["photons"].to_numpy(), calibration["photon_edges"])
        scales = np.asarray(calibration["scales"], dtype=np.float64)[groups]  # [rows, levels]
        for k, c in enumerate(calibration["levels"]):
            t = level_tag(c)
            if f"psi_lo{t}_x_nm" not in out:
                continue
            for a in ("x", "y"):
                lo, hi = out[f"psi_lo{t}_{a}_nm"].to_numpy(), out[f"psi_hi{t}_{a}_nm"].to_numpy()
                mid, half = (lo + hi) / 2, (hi - lo) / 2 * scales[:, k]
                out[f"psi_lo{t}_{a}_nm"], out[f"psi_hi{t}_{a}_nm"] = mid - half, mid + half
        scale = scales[:, list(calibration["levels"]).index(UNCERTAINTY_LEVEL)]
    else:
        scale = np.ones(len(out))
    out["psi_scale"] = np.where(out["psi_sampled"].to_numpy(bool), scale, np.nan)
    for a in ("x", "y"):
        half = (out[f"psi_hi{tag}_{a}_nm"] - out[f"psi_lo{tag}_{a}_nm"]) / 2
        out[f"uncertainty_{a}_nm"] = np.where(np.isfinite(half), half, out[f"crlb_{a}_nm"])
    return out

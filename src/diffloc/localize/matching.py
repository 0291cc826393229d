"""Matching detections to the true emitters (one-to-one or nearest) and the localisation metrics
(precision, recall, Jaccard, RMSE in nm, SMLM-challenge efficiency).
"""

import math

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from diffloc.localize.detection import DETECTION_COLUMNS, LOCALIZATION_COLUMNS

CONVENTIONS = ("one_to_one", "nearest")


EFFICIENCY_ALPHA_PER_NM = 0.01  # SMLM challenge: 1 percentage point of efficiency per nm (lateral)


def match_detections(
    detections: np.ndarray, truths: np.ndarray, radius: float, convention: str
) -> np.ndarray:
    """Index into `truths` [T, 2] of each detection's [D, 2] match, -1 if none (one length unit).

    `one_to_one`: the most pairs within `radius` (inclusive), then the least total distance
    (linear_sum_assignment). `nearest` (the paper's): each detection to its nearest truth if
    within `radius`, so several detections may share one truth.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"matching convention must be one of {CONVENTIONS}, got {convention!r}")
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 2)
    truths = np.asarray(truths, dtype=np.float64).reshape(-1, 2)
    out = np.full(len(detections), -1, dtype=np.intp)
    if len(detections) == 0 or len(truths) == 0:
        return out
    dist = np.sqrt(((detections[:, None, :] - truths[None, :, :]) ** 2).sum(axis=-1))
    if convention == "nearest":
        rows = np.arange(len(detections))
        cols = dist.argmin(axis=1)
    else:
        # one more pair within the radius always outweighs any sum of in-radius distances
        big = radius * (min(dist.shape) + 1) + 1.0
        rows, cols = linear_sum_assignment(np.where(dist <= radius, dist, big))
    ok = dist[rows, cols] <= radius
    out[rows[ok]] = cols[ok]
    return out


def localization_table(
    detections: pd.DataFrame,
    emitters: pd.DataFrame,
    upsample: int,
    pixel_size_nm: float,
    radius_hr: float,
    convention: str = "one_to_one",
) -> pd.DataFrame:
    """Detections (HR px) matched to emitters (LR px): one row per detection, LOCALIZATION_COLUMNS."""
    missing = sorted({"image", "emitter", "u_px", "v_px"} - set(emitters.columns))
    if missing:
        raise ValueError(f"emitter table lacks column(s) {missing}")
    if not np.isfinite(emitters[["u_px", "v_px"]].to_numpy(dtype=np.float64)).all():
        raise ValueError("emitter table has NaN or infinite positions")
    det_uv = detections[["u_hr", "v_hr"]].to_numpy(dtype=np.float64)
    true_uv = upsample * emitters[["u_px", "v_px"]].to_numpy(dtype=np.float64)
    true_id = emitters["emitter"].to_numpy()
    truth = np.full(len(detections), -1, dtype=np.intp)
    partner = np.full(len(detections), -1, dtype=np.intp)  # row in `emitters`
    by_image = emitters.groupby("image").indices
    for img, det_rows in detections.groupby("image").indices.items():
        true_rows = by_image.get(img, np.empty(0, dtype=np.intp))
        hit = match_detections(det_uv[det_rows], true_uv[true_rows], radius_hr, convention)
        ok = hit >= 0
        partner[det_rows[ok]] = true_rows[hit[ok]]
        truth[det_rows[ok]] = true_id[true_rows[hit[ok]]]
    nm = pixel_size_nm / upsample  # nm per HR px
    diff = np.full_like(det_uv, np.nan)
    ok = partner >= 0
    diff[ok] = (det_uv[ok] - true_uv[partner[ok]]) * nm
    frame = (
        detections[list(DETECTION_COLUMNS)]
        .reset_index(drop=True)
        .assign(
            u_px=det_uv[:, 0] / upsample,
            v_px=det_uv[:, 1] / upsample,
            u_nm=det_uv[:, 0] * nm,
            v_nm=det_uv[:, 1] * nm,
            truth=truth,
            du_nm=diff[:, 0],
            dv_nm=diff[:, 1],
            error_nm=np.hypot(diff[:, 0], diff[:, 1]),
        )
    )
    return frame.astype(LOCALIZATION_COLUMNS)


def efficiency(jaccard: float, rmse_nm: float) -> float:
    """SMLM-challenge lateral efficiency (fraction, <= 1, negative past ~100 nm): JI in [0, 1], RMSE in nm."""
    return 1.0 - math.hypot(1.0 - jaccard, EFFICIENCY_ALPHA_PER_NM * rmse_nm)


def localization_metrics(table: pd.DataFrame, n_truth: int) -> dict[str, float]:
    """Counts, precision, recall, F1, Jaccard, RMSE (nm: lateral, u, v), efficiency of a matched table.

    TP = matched detections, FP = unmatched detections, FN = truths (of `n_truth`) no detection
    matched. Ratios with a zero denominator count as 1 (nothing false, nothing missed); RMSEs
    are NaN without matches, and the efficiency then drops its RMSE term.
    """
    matched = table["truth"].to_numpy() >= 0
    tp, fp = int(matched.sum()), int((~matched).sum())
    found = len(table.loc[matched, ["image", "truth"]].drop_duplicates())
    if found > n_truth:
        raise ValueError(f"{found} distinct truths matched but n_truth is {n_truth}")
    fn = n_truth - found

    def ratio(num: int, den: int) -> float:
        return num / den if den else 1.0

    jaccard = ratio(tp, tp + fp + fn)
    if tp:
        du, dv = (table.loc[matched, c].to_numpy() for c in ("du_nm", "dv_nm"))
        rmse_u, rmse_v = math.sqrt(np.mean(du**2)), math.sqrt(np.mean(dv**2))
        rmse = math.hypot(rmse_u, rmse_v)
    else:
        rmse_u = rmse_v = rmse = math.nan
    return {
        "n_detections": tp + fp,
        "n_truth": n_truth,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "jaccard": jaccard,
        "rmse_nm": rmse,
        "rmse_u_nm": rmse_u,
        "rmse_v_nm": rmse_v,
        "efficiency": efficiency(jaccard, rmse if tp else 0.0),
    }

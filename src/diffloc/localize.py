"""LoG detection on KDEs, sub-pixel refinement, matching to ground truth, metrics (SPEC section 8).

Coordinates: HR pixel p covers [p, p+1), so a detection found in pixel p sits at p + 0.5 plus its
sub-pixel offset; an emitter at LR position theta sits at HR position upsample * theta. `u` is the
first image axis (rows), `v` the second (columns). Match radii are in HR px, errors in nm.

Nearby emitters merge in a KDE: two equal emitters closer than 2 sigma_y make a single peak, and
with the authors' LoG settings (scales 1.33-2 sigma_y) they stay one detection, at their
midpoint, up to about 3.4 sigma_y apart.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from skimage.feature import blob_log

REFINE_METHODS = ("none", "gaussian", "centroid")
CONVENTIONS = ("one_to_one", "nearest")
EFFICIENCY_ALPHA_PER_NM = 0.01  # SMLM challenge: 1 percentage point of efficiency per nm (lateral)

DETECTION_COLUMNS = {
    "image": "int32",  # image index within the stack
    "u_hr": "float64",  # HR px
    "v_hr": "float64",
    "sigma_hr": "float64",  # LoG scale of the detection (HR px)
    "intensity": "float64",  # KDE value at the detected HR pixel
}
LOCALIZATION_COLUMNS = {
    **DETECTION_COLUMNS,
    "u_px": "float64",  # LR px
    "v_px": "float64",
    "u_nm": "float64",
    "v_nm": "float64",
    "truth": "int32",  # `emitter` index of the matched truth in its image, -1 if unmatched
    "du_nm": "float64",  # detection - truth (nm), NaN if unmatched
    "dv_nm": "float64",
    "error_nm": "float64",  # lateral distance to the matched truth (nm), NaN if unmatched
}


@dataclass(frozen=True)
class DetectorSettings:
    """LoG detector and refinement settings, lengths in HR px (sigmas already scaled to sigma_y)."""

    min_sigma: float
    max_sigma: float
    num_sigma: int
    threshold: float
    overlap: float
    exclude_border: int
    refine: str
    window: int

    def __post_init__(self) -> None:
        if self.refine not in REFINE_METHODS:
            raise ValueError(f"refine must be one of {REFINE_METHODS}, got {self.refine!r}")
        if not 0 < self.min_sigma <= self.max_sigma:
            raise ValueError(
                f"need 0 < min_sigma <= max_sigma, got {self.min_sigma} and {self.max_sigma}"
            )
        if self.num_sigma < 1 or self.window < 1 or self.exclude_border < 0:
            raise ValueError(f"need num_sigma >= 1, window >= 1, exclude_border >= 0: {self}")


def detector_settings(config: dict) -> DetectorSettings:
    """Detector settings from `config['localize']`, LoG sigmas scaled by kde.sigma_y / reference_sigma_y."""
    loc = config["localize"]
    scale = config["kde"]["sigma_y"] / loc["reference_sigma_y"]
    return DetectorSettings(
        min_sigma=loc["min_sigma"] * scale,
        max_sigma=loc["max_sigma"] * scale,
        num_sigma=loc["num_sigma"],
        threshold=loc["threshold"],
        overlap=loc["overlap"],
        exclude_border=loc["exclude_border"],
        refine=loc["refine"],
        window=loc["window"],
    )


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or not np.issubdtype(images.dtype, np.number) or images.size == 0:
        raise ValueError(
            f"KDE images must be a non-empty real array [N, H, W], got {images.dtype} "
            f"of shape {images.shape}"
        )
    if not np.isfinite(images).all():
        raise ValueError("KDE images contain NaN or infinite values")
    return images


def refine_offsets(
    images: np.ndarray,
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    method: str,
    window: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (HR px, within +-window) of the intensity peak near pixels (rows, cols) of images[image].

    `gaussian`: least-squares quadratic fit of log intensities over the (2*window+1)^2 pixels
    around the pixel (exact for a sampled Gaussian); offset 0 where the fit has no maximum.
    `centroid`: intensity-weighted centroid of the window above its minimum. `none`: zeros.
    Offsets may exceed half a pixel: a neighbour's LoG side lobe can shift the LoG maximum by a
    pixel while the intensity peak stays put. Windows past the image edge repeat edge pixels.
    """
    n = len(rows)
    if method == "none" or n == 0:
        return np.zeros(n), np.zeros(n)
    if method not in REFINE_METHODS:
        raise ValueError(f"refine must be one of {REFINE_METHODS}, got {method!r}")
    a = np.arange(-window, window + 1)
    da, db = (g.ravel() for g in np.meshgrid(a, a, indexing="ij"))
    h, w = images.shape[-2:]
    rr = np.clip(np.asarray(rows)[:, None] + da, 0, h - 1)
    cc = np.clip(np.asarray(cols)[:, None] + db, 0, w - 1)
    win = images[np.asarray(image)[:, None], rr, cc].astype(np.float64)
    top = win.max(axis=1, keepdims=True)
    if method == "centroid":
        weight = win - win.min(axis=1, keepdims=True)
        total = weight.sum(axis=1)
        safe = np.where(total > 0, total, 1.0)
        du = np.where(total > 0, weight @ da / safe, 0.0)
        dv = np.where(total > 0, weight @ db / safe, 0.0)
    else:
        floor = np.where(top > 0, 1e-6 * top, 1.0)
        design = np.stack([np.ones_like(da), da, db, da * da, db * db, da * db], axis=1)
        c = np.log(np.maximum(win, floor)) @ np.linalg.pinv(design.astype(np.float64)).T
        huu, hvv, huv = 2 * c[:, 3], 2 * c[:, 4], c[:, 5]
        det = huu * hvv - huv**2
        peak = (huu < 0) & (det > 0)
        safe = np.where(peak, det, 1.0)
        du = np.where(peak, (huv * c[:, 2] - hvv * c[:, 1]) / safe, 0.0)
        dv = np.where(peak, (huv * c[:, 1] - huu * c[:, 2]) / safe, 0.0)
    return np.clip(du, -window, window), np.clip(dv, -window, window)


def detect(images: np.ndarray, settings: DetectorSettings) -> pd.DataFrame:
    """LoG detections on KDEs [N, H, W]: one row per detection (DETECTION_COLUMNS, HR px)."""
    images = _check_images(images)
    found = [
        blob_log(
            img,
            min_sigma=settings.min_sigma,
            max_sigma=settings.max_sigma,
            num_sigma=settings.num_sigma,
            threshold=settings.threshold,
            overlap=settings.overlap,
            exclude_border=settings.exclude_border,
        )
        for img in images
    ]
    counts = [len(b) for b in found]
    blobs = np.concatenate([b.reshape(-1, 3) for b in found]).astype(np.float64)
    image = np.repeat(np.arange(len(images)), counts)
    rows, cols = blobs[:, 0].astype(np.intp), blobs[:, 1].astype(np.intp)
    du, dv = refine_offsets(images, image, rows, cols, settings.refine, settings.window)
    frame = pd.DataFrame(
        {
            "image": image,
            "u_hr": rows + 0.5 + du,
            "v_hr": cols + 0.5 + dv,
            "sigma_hr": blobs[:, 2],
            "intensity": images[image, rows, cols].astype(np.float64),
        }
    )
    return frame.astype(DETECTION_COLUMNS)


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

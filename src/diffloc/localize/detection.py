"""Emitter detection on KDEs with sub-pixel refinement; the detector is `localize.detector`.

Detectors (DETECTORS): `log` (the paper's Laplacian of Gaussian, skimage `blob_log`, the
authors' scales) and `peaks` (local maxima of the KDE itself: pixels equal to the maximum of
their (2 * min_distance + 1)^2 neighbourhood and above `peaks_threshold`, in KDE units). Both
then refine each detection to sub-pixel precision (`refine_offsets`) and drop detections within
`exclude_border` HR px of the edge. The oracle (the true KDE) runs the same detector as phi.

Coordinates: HR pixel p covers [p, p+1), so a detection found in pixel p sits at p + 0.5 plus its
sub-pixel offset; an emitter at LR position theta sits at HR position upsample * theta. `u` is the
first image axis (rows), `v` the second (columns). Match radii are in HR px, errors in nm.

Nearby emitters merge in a KDE: two equal emitters closer than 2 sigma_y make a single peak, and
with the authors' LoG settings (scales 1.33-2 sigma_y) they stay one detection, near their
midpoint, up to 3.4-3.6 sigma_y apart. `peaks` (min_distance 1) separates them as soon as the
HR grid shows two maxima, within 0.3 HR px of 2 sigma_y (tests/test_localize.py measures both).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from skimage.feature import blob_log

DETECTORS = ("log", "peaks")
REFINE_METHODS = ("none", "gaussian", "centroid")


DETECTION_COLUMNS = {
    "image": "int32",  # image index within the stack
    "u_hr": "float64",  # HR px
    "v_hr": "float64",
    "sigma_hr": "float64",  # LoG scale of the detection (HR px); NaN for `peaks`
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
    """Detector and refinement settings, lengths in HR px (LoG sigmas already scaled to sigma_y).

    `min_sigma` .. `overlap` are the LoG's (`detector="log"`), `peaks_threshold` and
    `min_distance` the local maxima's (`detector="peaks"`); the rest apply to both.
    """

    min_sigma: float
    max_sigma: float
    num_sigma: int
    threshold: float
    overlap: float
    exclude_border: int
    refine: str
    window: int
    detector: str = "log"
    peaks_threshold: float = 0.2
    min_distance: int = 1

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        if self.peaks_threshold < 0 or self.min_distance < 1:
            raise ValueError(f"need peaks_threshold >= 0 and min_distance >= 1: {self}")
        if self.refine not in REFINE_METHODS:
            raise ValueError(f"refine must be one of {REFINE_METHODS}, got {self.refine!r}")
        if not 0 < self.min_sigma <= self.max_sigma:
            raise ValueError(
                f"need 0 < min_sigma <= max_sigma, got {self.min_sigma} and {self.max_sigma}"
            )
        if self.num_sigma < 1 or self.window < 1 or self.exclude_border < 0:
            raise ValueError(f"need num_sigma >= 1, window >= 1, exclude_border >= 0: {self}")


def detector_settings(config: dict, sigma_y: float | None = None) -> DetectorSettings:
    """Detector settings from `config['localize']` for KDEs of kernel width `sigma_y` (HR px;
    default kde.sigma_y): LoG sigmas scaled by sigma_y / reference_sigma_y (`min_distance` and
    the thresholds are not scaled)."""
    loc = config["localize"]
    sigma_y = config["kde"]["sigma_y"] if sigma_y is None else sigma_y
    scale = sigma_y / loc["reference_sigma_y"]
    return DetectorSettings(
        min_sigma=loc["min_sigma"] * scale,
        max_sigma=loc["max_sigma"] * scale,
        num_sigma=loc["num_sigma"],
        threshold=loc["threshold"],
        overlap=loc["overlap"],
        exclude_border=loc["exclude_border"],
        refine=loc["refine"],
        window=loc["window"],
        detector=loc["detector"],
        peaks_threshold=loc["peaks_threshold"],
        min_distance=loc["min_distance"],
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


def _log_maxima(images: np.ndarray, settings: DetectorSettings) -> np.ndarray:
    """LoG blobs (image, row, col, sigma) [D, 4] of KDEs [N, H, W] (skimage, one call per image)."""
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
    return np.column_stack([np.repeat(np.arange(len(images)), counts), blobs])


def local_maxima(
    images: np.ndarray,
    threshold: float,
    min_distance: int,
    exclude_border: int,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima (image, row, col) of KDEs [N, H, W], vectorised over `chunk` images at a time.

    A pixel is a maximum if it is above `threshold` and equals the maximum of its
    (2 * min_distance + 1)^2 neighbourhood (edges repeat edge pixels); of equal maxima within
    that neighbourhood (a plateau, e.g. where phi saturates) only the first in raster order is
    kept. Pixels within `exclude_border` of the edge are never maxima. Sorted by image, row, col.
    Only pixels above the threshold are examined (a KDE is mostly empty), each against its
    neighbourhood by gathered indices.
    """
    n, h, w = images.shape
    b, d = exclude_border, min_distance
    a = np.arange(-d, d + 1)
    dr, dc = (g.ravel() for g in np.meshgrid(a, a, indexing="ij"))
    earlier = (dr < 0) | ((dr == 0) & (dc < 0))  # neighbours before the pixel in raster order
    found = []
    for start in range(0, n, chunk):
        part = images[start : start + chunk]
        above = part[:, b : h - b, b : w - b] > threshold
        image, rows, cols = np.nonzero(above)
        rows, cols = rows + b, cols + b
        value = part[image, rows, cols]
        rr = np.clip(rows[:, None] + dr, 0, h - 1)
        cc = np.clip(cols[:, None] + dc, 0, w - 1)
        keep = value >= part[image[:, None], rr, cc].max(axis=1)
        image, rows, cols = image[keep], rows[keep], cols[keep]
        peak = np.zeros(part.shape, dtype=bool)
        peak[image, rows, cols] = True
        er, ec = rows[:, None] + dr[earlier], cols[:, None] + dc[earlier]
        inside = (er >= 0) & (er < h) & (ec >= 0) & (ec < w)
        shadowed = peak[image[:, None], np.clip(er, 0, h - 1), np.clip(ec, 0, w - 1)] & inside
        first = ~shadowed.any(axis=1)
        found.append((image[first] + start, rows[first], cols[first]))
    if not found:
        return tuple(np.zeros(0, dtype=np.intp) for _ in range(3))
    return tuple(np.concatenate(a) for a in zip(*found, strict=True))


def detect(images: np.ndarray, settings: DetectorSettings) -> pd.DataFrame:
    """Detections on KDEs [N, H, W] by `settings.detector`, refined: one row per detection
    (DETECTION_COLUMNS, HR px), sorted by image."""
    images = _check_images(images)
    if settings.detector == "log":
        blobs = _log_maxima(images, settings)
        image, rows, cols = (blobs[:, i].astype(np.intp) for i in range(3))
        sigma = blobs[:, 3]
    else:
        image, rows, cols = local_maxima(
            images, settings.peaks_threshold, settings.min_distance, settings.exclude_border
        )
        sigma = np.full(len(image), np.nan)
    du, dv = refine_offsets(images, image, rows, cols, settings.refine, settings.window)
    frame = pd.DataFrame(
        {
            "image": image,
            "u_hr": rows + 0.5 + du,
            "v_hr": cols + 0.5 + dv,
            "sigma_hr": sigma,
            "intensity": images[image, rows, cols].astype(np.float64),
        }
    )
    return frame.astype(DETECTION_COLUMNS)

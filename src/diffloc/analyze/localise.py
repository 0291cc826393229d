"""Localisations of a chunk of frames from phi's detections (`fit_localisations`): photons,
background and, with analyze.position "mle", positions fitted on the camera pixels (analyze.fit),
overlapping emitters fitted jointly, duplicates merged and missed emitters added
(analyze.crowd), each with its Cramer-Rao bound.
"""

from dataclasses import dataclass, fields

import numpy as np

from diffloc.analyze.crowd import (
    colour_classes,
    neighbour_light,
    neighbour_pairs,
    residual_candidates,
    unique_emitters,
)
from diffloc.analyze.fit import (
    SCORING_ITERATIONS,
    bounds,
    fit_photons_background,
    fit_position,
    psf_windows,
    windows,
)
from diffloc.analyze.significance import score_statistic
from diffloc.physics.camera import Camera

POSITIONS = ("kde", "mle")  # analyze.position: phi's refined detection | Poisson MLE on the camera
SIGNIFICANCE = ("wald", "score")  # analyze.significance: i0 / sqrt(CRLB) | score test
PASS_CONVERGED = 1e-3  # LR px: neighbour passes stop when no crowded fit moves more
NEIGHBOUR_PASSES = 20  # refits of localisations with neighbours, with the neighbours' light known
PASS_ITERATIONS = 3  # scoring steps per refit after the first pass (the neighbours move too)


@dataclass
class _Fits:
    """Localisations being fitted: frame, detection index (-1: found in the residual), theta =
    (u, v, i0, b) [L, 4], and their windows (see `windows`)."""

    image: np.ndarray
    detection: np.ndarray
    theta: np.ndarray
    counts: np.ndarray
    readout: np.ndarray
    inside: np.ndarray
    top: np.ndarray
    left: np.ndarray

    def subset(self, rows: np.ndarray) -> "_Fits":
        return _Fits(*(getattr(self, f.name)[rows] for f in fields(self)))

    @classmethod
    def cut(
        cls,
        counts: np.ndarray,
        readout_map: np.ndarray,
        image: np.ndarray,
        detection: np.ndarray,
        theta: np.ndarray,
        r: int,
    ) -> "_Fits":
        """The windows of localisations theta [L, 4] in frames `image` of counts [N, H, W]."""
        n, inside, top, left = windows(counts, image, theta[:, 0], theta[:, 1], r)
        readout, _, _, _ = windows(readout_map, None, theta[:, 0], theta[:, 1], r)
        return cls(image, detection, theta, n, readout, inside, top, left)

    def concat(self, other: "_Fits") -> "_Fits":
        return _Fits(
            *(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self))
        )


def _joint_passes(
    fits: _Fits,
    r: int,
    sigma: float,
    shape: tuple[int, int],
    merge_px: float,
    first: np.ndarray | None = None,
) -> _Fits:
    """The fits after refitting the localisations `first` (bool [L]; default all) and their
    neighbours with the neighbours' light known, then again those whose neighbourhood moved by
    PASS_CONVERGED, up to NEIGHBOUR_PASSES times: block coordinate ascent towards the joint MLE
    of overlapping emitters, one colour class (no two neighbours, see `colour_classes`) at a
    time so each refit sees its neighbours' latest fits. After each pass, of fits that came
    within `merge_px` of each other (two fits on one emitter, sharing its light: the ascent
    crawls along their common direction) only the brightest stays (`unique_emitters`), and it
    and the neighbours of the dropped ones are refitted, the kept one with all the light."""
    a, b = neighbour_pairs(fits.image, fits.theta[:, 0], fits.theta[:, 1], _reach(r, sigma))
    colour = colour_classes(len(fits.theta), a, b, fits.image)
    active = np.ones(len(fits.theta), bool) if first is None else first.copy()
    active[a[active[b]]] = True
    for rep in range(NEIGHBOUR_PASSES):
        moved = np.zeros(len(fits.theta), bool)
        for c in range(colour.max(initial=-1) + 1):
            rows = np.flatnonzero((colour == c) & active)
            if len(rows) == 0:
                continue
            extra = neighbour_light(a, b, fits.theta, fits.top, fits.left, r, sigma, rows)
            before = fits.theta[rows, :2].copy()
            fits.theta[rows] = fit_position(
                fits.counts[rows], fits.readout[rows] + extra, fits.inside[rows],
                fits.top[rows], fits.left[rows], fits.theta[rows], r, sigma, shape,
                SCORING_ITERATIONS if rep == 0 else PASS_ITERATIONS,
            )  # fmt: skip
            moved[rows] = np.abs(fits.theta[rows, :2] - before).max(axis=1) >= PASS_CONVERGED
        keep = unique_emitters(fits.image, fits.theta, merge_px)
        dropped = np.ones(len(fits.theta), bool)
        dropped[keep] = False
        moved |= dropped  # its neighbours, the kept twin among them, lose its light
        active = np.zeros(len(fits.theta), bool)
        active[a[moved[b]]] = True  # a neighbour moved: refit
        if dropped.any():
            new_index = np.cumsum(~dropped) - 1  # positions in `keep` (sorted)
            edge = ~dropped[a] & ~dropped[b]
            a, b = new_index[a[edge]], new_index[b[edge]]
            fits, colour, active = fits.subset(keep), colour[keep], active[keep]
        if not active.any():
            break
    return fits


def _reach(r: int, sigma: float) -> float:
    """LR px per axis within which a localisation's light reaches another's window."""
    return r + 3 * sigma + 0.5


def _neighbours_light(fits: _Fits, r: int, sigma: float) -> np.ndarray:
    """Expected photons [L, w, w] the other localisations of each one's frame put into its
    window, at their current fits (pairs found at these positions: a localisation's value
    depends only on its own frame's)."""
    a, b = neighbour_pairs(fits.image, fits.theta[:, 0], fits.theta[:, 1], _reach(r, sigma))
    return neighbour_light(a, b, fits.theta, fits.top, fits.left, r, sigma)


def fit_localisations(
    counts: np.ndarray,
    camera: Camera,
    index: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    r: int,
    sigma: float,
    position: str = "kde",
    min_snr: float = 0.0,
    merge_px: float = 1.0,
    residual_rounds: int = 0,
    significance: str = "wald",
) -> dict[str, np.ndarray]:
    """Localisations from detections at (u, v) (LR px) in frames counts[index] ([N, H, W],
    Poisson-approximation counts of `camera`): `image` (frame within counts), `detection`
    (index into u, v; -1 for an emitter found in the residual), u, v (LR px: the detection for
    position="kde", the Poisson MLE for "mle"), photons, background (photons/px), crlb_u,
    crlb_v (LR px), crlb_photons (photons) [K].

    (i0, b) are fitted at each detection. Of detections in one frame closer than `merge_px`
    (one emitter found twice, a split KDE blob) only the brightest stays, before the test: with
    the score test a twin's light would hide the other. Detections not significant
    are dropped: "wald", i0 < min_snr sqrt(CRLB of i0); "score", the score test's z < min_snr
    (analyze.significance). With "mle", every localisation is then refitted (u, v, i0, b) with
    the light of its neighbours (within reach of its window, at their current fits) known, the
    crowded ones again until they settle (block-Jacobi towards the joint MLE of overlapping
    emitters, `_joint_passes`). Each of `residual_rounds` rounds adds the emitters phi missed
    (`residual_candidates` of the current fits: the second of a pair merged in phi's KDE, a dim
    emitter on a bright one's flank, which shows only once the bright one is fitted) and repeats
    the passes; fits that converged within merge_px of a brighter one are dropped. Bounds
    include the neighbours' light as background, and the significance test is repeated on the
    final fits. The defaults are a bare fit (no position fit, no filter: min_snr 0, no residual
    rounds); `diffloc analyze` passes its settings (analyze.settings.DEFAULTS for the defaults).
    """
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    if significance not in SIGNIFICANCE:
        raise ValueError(f"significance must be one of {SIGNIFICANCE}, got {significance!r}")
    g, _, w2 = (m.astype(np.float64) for m in (camera.gain, camera.offset, camera.readout_var))
    readout_map = np.broadcast_to(w2 / g**2, counts.shape[1:])
    shape = counts.shape[1:]
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    image = np.asarray(index, np.intp)
    theta = np.column_stack([u, v, np.zeros((len(u), 2))])
    fits = _Fits.cut(counts, readout_map, image, np.arange(len(u)), theta, r)
    _fit_intensity(fits, np.zeros_like(fits.readout), r, sigma)
    # before the test: with the score test a duplicate's light would hide its twin
    fits = fits.subset(unique_emitters(fits.image, fits.theta, merge_px))
    test = (counts, readout_map, r, sigma, min_snr, significance)
    fits = fits.subset(_significant(fits, np.zeros_like(fits.readout), *test))
    extra = np.zeros_like(fits.readout)
    if position == "mle":  # also without fits: the residual may hold emitters phi missed
        fits = _joint_passes(fits, r, sigma, shape, merge_px)
        searched = np.arange(len(counts))  # later rounds: the frames the last one added to
        for _ in range(residual_rounds):
            mine = np.isin(fits.image, searched)
            local = np.searchsorted(searched, fits.image[mine])
            frame, cu, cv = residual_candidates(
                counts[searched], readout_map, local, fits.theta[mine], r, sigma, max(min_snr, 1.0),
            )  # fmt: skip
            if len(cu) == 0:
                break
            frame = searched[frame]
            searched = np.unique(frame)
            theta = np.column_stack([cu, cv, np.zeros((len(cu), 2))])
            more = _Fits.cut(counts, readout_map, frame, np.full(len(cu), -1), theta, r)
            light = _neighbours_light(fits.concat(more), r, sigma)[len(fits.theta) :]
            _fit_intensity(more, light, r, sigma)
            fits = fits.concat(more)
            new = np.arange(len(fits.theta)) >= len(fits.theta) - len(more.theta)
            fits = _joint_passes(fits, r, sigma, shape, merge_px, new)
        fits = fits.subset(unique_emitters(fits.image, fits.theta, merge_px))
        extra = _neighbours_light(fits, r, sigma)  # of the kept fits only
    bound = bounds(fits.theta, fits.readout + extra, fits.inside, fits.top, fits.left, r, sigma)
    significant = _significant(fits, extra, *test)
    fits, bound = fits.subset(significant), bound[significant]
    return {
        "image": fits.image,
        "detection": fits.detection,
        **dict(zip(("u", "v", "photons", "background"), fits.theta.T, strict=True)),
        "crlb_u": bound[:, 0],
        "crlb_v": bound[:, 1],
        "crlb_photons": bound[:, 2],
    }


def _fit_intensity(fits: _Fits, extra: np.ndarray, r: int, sigma: float) -> None:
    """Set fits.theta's (i0, b) to their Poisson MLE at the current positions, with the known
    light `extra` [L, w, w] (neighbours) added to the model."""
    t = fits.theta
    eu, ev, _, _ = psf_windows(t[:, 0], t[:, 1], fits.top, fits.left, r, sigma)
    psf = eu[:, :, None] * ev[:, None, :]
    t[:, 2], t[:, 3] = fit_photons_background(fits.counts, fits.readout + extra, psf, fits.inside)


def _significant(
    fits: _Fits,
    extra: np.ndarray,
    counts: np.ndarray,
    readout_map: np.ndarray,
    r: int,
    sigma: float,
    min_snr: float,
    significance: str,
) -> np.ndarray:
    """Whether each fit is significant: "wald", i0 >= min_snr sqrt(CRLB of i0) with the
    neighbours' light `extra` known; "score", the score test's z >= min_snr on the frames'
    counts [N, H, W] and readout terms [H, W] (analyze.significance)."""
    t = fits.theta
    if significance == "score":
        return score_statistic(counts, readout_map, fits.image, t, r, sigma) >= min_snr
    bound = bounds(t, fits.readout + extra, fits.inside, fits.top, fits.left, r, sigma)
    return t[:, 2] >= min_snr * bound[:, 2]

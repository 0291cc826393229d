"""One chunk of movie frames end to end, and the merge of chunks.

frames (ADU) -> photons (x - o)/g -> phi on whole frames -> detections (the study's detector,
refined) -> photons and background by a Poisson fit on the camera pixels, and with
`analyze.position: mle` the position too (from the detection), sqrt(CRLB) there (analyze.localise)
-> positions (LR px, nm) -> on the frames psi samples: position spread across posterior samples
(analyze.uncertainty). Each chunk also sums its KDEs for the rendered
super-resolution image (phi's KDE summed over frames) and, on psi's frames, the posterior means
and variances (frames independent: the variance of the sum is the sum of the variances).
"""

import logging
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from diffloc import seeding
from diffloc.analyze.frames import Tiling, phi_kde, to_photons
from diffloc.analyze.localise import fit_localisations
from diffloc.analyze.recalibration import (
    apply_interval_scales,
    background_mismatch,
    density_mismatch,
)
from diffloc.analyze.settings import AnalyzeSettings
from diffloc.analyze.uncertainty import psi_frame
from diffloc.calibration.metrics import level_tag
from diffloc.data.condition import Condition
from diffloc.localize.detection import detect
from diffloc.phi.network import Phi
from diffloc.physics.camera import Camera
from diffloc.psi.diffusion import Diffusion
from diffloc.psi.unet import UNet

log = logging.getLogger(__name__)

RENDER_KEYS = ("kde_sum", "psi_mean_sum", "psi_var_sum")


@dataclass
class ChunkResult:
    """A chunk's localisations (LOCALISATION table) and render sums (HR px, KDE units)."""

    table: pd.DataFrame
    sums: dict[str, np.ndarray]
    n_frames: int
    n_psi_frames: int


def _axis_columns(prefix: str, u: np.ndarray, v: np.ndarray, scale: float) -> dict:
    """{prefix_x_nm: v * scale, prefix_y_nm: u * scale}: x is the column axis, y the row axis."""
    return {f"{prefix}_x_nm": v * scale, f"{prefix}_y_nm": u * scale}


def localisation_table(
    frames: np.ndarray, kde: np.ndarray, settings: AnalyzeSettings, photo: dict
) -> pd.DataFrame:
    """The table's position, intensity and photometry columns (see README) of the localisations
    `photo` (analyze.localise.fit_localisations; positions u, v in LR px, frames the movie's) on phi's KDEs
    [N, sH, sW] of the chunk."""
    nm, s = settings.pixel_size_nm, settings.upsample
    u_px, v_px = photo["u"], photo["v"]
    rows = np.clip((u_px * s).astype(np.intp), 0, kde.shape[1] - 1)
    cols = np.clip((v_px * s).astype(np.intp), 0, kde.shape[2] - 1)
    return pd.DataFrame(
        {
            "frame": frames,
            "x_px": v_px,
            "y_px": u_px,
            "x_nm": v_px * nm,
            "y_nm": u_px * nm,
            "kde_intensity": kde[photo["image"], rows, cols].astype(np.float64),
            "phi_detected": photo["detection"] >= 0,
            "photons": photo["photons"],
            "background_photons_per_px": photo["background"],
            "crlb_photons": photo["crlb_photons"],
            **_axis_columns("crlb", photo["crlb_u"], photo["crlb_v"], nm),
        }
    )


def psi_columns(tracks: pd.DataFrame, sampled: np.ndarray, settings: AnalyzeSettings) -> dict:
    """psi's columns: sampled flag, detection rate, std and central intervals in nm (NaN where
    psi did not sample the frame or found the localisation in fewer than 2 samples)."""
    nm = settings.nm_per_hr
    out = {
        "psi_sampled": sampled,
        "psi_detection_rate": tracks["detection_rate"].to_numpy(),
        **_axis_columns("psi_std", tracks["std_u"].to_numpy(), tracks["std_v"].to_numpy(), nm),
    }
    for level in settings.levels:
        tag = level_tag(level)
        for end in ("lo", "hi"):
            u, v = tracks[f"{end}{tag}_u"].to_numpy(), tracks[f"{end}{tag}_v"].to_numpy()
            out.update(_axis_columns(f"psi_{end}{tag}", u, v, nm))
    return out


def analyze_chunk(
    frames: np.ndarray,
    first: int,
    camera: Camera,
    phi: Phi,
    psi: tuple[UNet, Diffusion, Condition] | None,
    settings: AnalyzeSettings,
    device: torch.device,
    progress: bool = False,
) -> ChunkResult:
    """Localisations and render sums of movie frames [first, first + N) (ADU [N, H, W]); without
    settings.psi_maps psi samples only the tiles holding localisations and its sums stay zero."""
    n, h, w = frames.shape
    s = settings.upsample
    photons = to_photons(frames, camera)
    kde = phi_kde(phi, photons, settings.batch_pixels, device)
    found = detect(kde, settings.detector)
    photo = fit_localisations(
        camera.poisson_counts(frames, clip=False),
        camera,
        found["image"].to_numpy(),
        found["u_hr"].to_numpy() / s,
        found["v_hr"].to_numpy() / s,
        settings.fit_half_width,
        settings.sigma_x,
        settings.position,
        settings.min_snr,
        settings.merge_px,
        settings.residual_rounds,
        settings.significance,
    )
    index = photo["image"]
    u_hr, v_hr = photo["u"] * s, photo["v"] * s
    table = localisation_table(first + index, kde, settings, photo)
    sums = {key: np.zeros((s * h, s * w)) for key in RENDER_KEYS}
    sums["kde_sum"] += kde.sum(axis=0, dtype=np.float64)

    psi_rows = [i for i in range(n) if psi is not None and settings.runs_psi(first + i)]
    levels_cols = psi_columns(
        track_placeholder(len(table), settings), np.zeros(len(table), bool), settings
    )
    columns = {k: np.array(v, copy=True) for k, v in levels_cols.items()}
    tiling = Tiling((h, w), settings.tile, settings.tile_margin)
    bar = tqdm(
        psi_rows, desc=f"psi frames {first}..", unit="frame", disable=not progress, file=sys.stderr
    )
    for i in bar:
        mine = np.flatnonzero(index == i)
        generator = torch.Generator(device).manual_seed(
            seeding.torch_seed(settings.seed, "analyze", "psi", first + i)
        )
        mean, var, tracks = psi_frame(
            *psi,
            settings.sampler,
            kde[i],
            photons[i],
            tiling,
            s,
            np.stack([u_hr[mine], v_hr[mine]], axis=1),
            settings.detector,
            settings.match_radius,
            settings.levels,
            generator,
            device,
            tracks_only=not settings.psi_maps,
        )
        if settings.psi_maps:
            sums["psi_mean_sum"] += mean
            sums["psi_var_sum"] += var
        for key, values in psi_columns(tracks, np.ones(len(mine), bool), settings).items():
            columns[key][mine] = values
    table = apply_interval_scales(table.assign(**columns), settings.interval_scales)
    area_um2 = h * w * (settings.pixel_size_nm / 1000) ** 2
    calibration = settings.interval_scales if psi_rows else None  # psi's intervals only
    for mismatch in (
        density_mismatch(len(table), n, area_um2, calibration),
        background_mismatch(table["background_photons_per_px"].to_numpy(), calibration),
    ):
        if mismatch:
            log.warning("frames %d..%d: %s", first, first + n - 1, mismatch)
    log.info(
        "frames %d..%d: %d localisations, psi on %d frames",
        first,
        first + n - 1,
        len(table),
        len(psi_rows),
    )
    return ChunkResult(table, sums, n, len(psi_rows))


def track_placeholder(n: int, settings: AnalyzeSettings) -> pd.DataFrame:
    """A track summary of n localisations psi did not sample: rate 0, NaN spreads."""
    columns = {
        "detection_rate": np.zeros(n),
        "std_u": np.full(n, np.nan),
        "std_v": np.full(n, np.nan),
    }
    for level in settings.levels:
        tag = level_tag(level)
        for name in (f"lo{tag}_u", f"lo{tag}_v", f"hi{tag}_u", f"hi{tag}_v"):
            columns[name] = np.full(n, np.nan)
    return pd.DataFrame(columns)


def merge_chunks(parts: list[ChunkResult]) -> ChunkResult:
    """One result of consecutive chunks: tables concatenated in frame order, sums added."""
    if not parts:
        raise ValueError("no chunks to merge")
    table = pd.concat([p.table for p in parts], ignore_index=True)
    table = table.sort_values("frame", kind="stable", ignore_index=True)
    sums = {k: np.sum([p.sums[k] for p in parts], axis=0) for k in RENDER_KEYS}
    return ChunkResult(
        table, sums, sum(p.n_frames for p in parts), sum(p.n_psi_frames for p in parts)
    )

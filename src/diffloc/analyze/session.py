"""An analysis, opened and checked before any frame is read: card, models, movie, camera.

`open_analysis` validates everything a run needs (the models' card against the movie's pixel
size and PSF and the analysis config; the movie; the camera maps against the frame shape) and
fails with one clear error (DataError subclass or ValueError) before anything is computed or
written. `run_chunk` analyses frames [start, stop) on the pinned torch threads.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from diffloc.analyze.card import check_compatible, read_card
from diffloc.analyze.pipeline import ChunkResult, analyze_chunk
from diffloc.analyze.settings import (
    AnalyzeSettings,
    analyze_settings,
    camera_value,
    em_gain_value,
)
from diffloc.data.condition import Condition
from diffloc.data.models import load_model
from diffloc.data.movies import Movie, open_movie, read_camera
from diffloc.phi.network import Phi, load_phi_model
from diffloc.physics.camera import Camera
from diffloc.provenance import versions
from diffloc.psi.diffusion import Diffusion, load_psi
from diffloc.psi.unet import UNet
from diffloc.runtime import resolve_device, torch_threads

log = logging.getLogger(__name__)


@dataclass
class Analysis:
    """An open movie with its camera, the loaded networks and the settings of the analysis."""

    movie: Movie
    camera: Camera
    phi: Phi
    psi: tuple[UNet, Diffusion, Condition] | None
    settings: AnalyzeSettings
    card: dict
    device: torch.device

    def metadata(self) -> dict:
        """What the outputs record: movie, models, settings, versions."""
        s = self.settings
        return {
            "movie": str(self.movie.path),
            "shape": list(self.movie.shape),
            "n_frames": self.movie.n_frames,
            "card_hash": self.card["card_hash"],
            "phi_fingerprint": self.card["phi_fingerprint"],
            "psi_fingerprint": self.card["psi_fingerprint"],
            "pixel_size_nm": s.pixel_size_nm,
            "sigma_x_px": s.sigma_x,
            "upsample": s.upsample,
            "detector": s.detector.detector,
            "sampler": s.sampler,
            "psi_frames": s.psi_frames,
            "psi_maps": s.psi_maps,
            "psi_interval_scales": s.interval_scales,
            "min_snr": s.min_snr,
            "significance": s.significance,
            "position": s.position,
            "merge_px": s.merge_px,
            "residual_rounds": s.residual_rounds,
            "tile": s.tile,
            "tile_margin": s.tile_margin,
            "seed": s.seed,
            "versions": versions(),
        }


def open_analysis(
    movie: str | os.PathLike,
    models: str | os.PathLike,
    camera: dict,
    analyze: dict,
    seed: int,
    config: dict | None = None,
) -> Analysis:
    """Check and open everything: ModelCardError, MovieError or ValueError naming the problem."""
    models = Path(models)
    card = read_card(models)
    settings = analyze_settings(analyze, card, seed, config)
    check_compatible(
        card,
        pixel_size_nm=settings.pixel_size_nm,
        psf_sigma_nm=analyze.get("psf_sigma_nm"),
        config=config,
        where=str(models),
    )
    opened = open_movie(movie)
    try:
        cam = read_camera(
            opened.shape,
            **{k: camera_value(camera.get(k), k) for k in ("gain", "offset", "readout_var")},
            em_gain=em_gain_value(camera.get("em_gain")),
        )
        device = resolve_device(settings.device)
        phi, _ = load_model(models / card["phi_file"], load_phi_model)
        psi = None
        if settings.psi_frames != 0:
            net, diffusion, meta = load_psi(models / card["psi_file"], device)
            psi = (net.eval(), diffusion, Condition.from_config(meta["config"]))
    except BaseException:
        opened.close()
        raise
    log.info(
        "%s: %d frames of %s px, %s; models %s (phi %s, psi %s)",
        opened.path,
        opened.n_frames,
        list(opened.shape),
        "memory-mapped" if opened.memmapped else "read page by page",
        models,
        card["phi_fingerprint"][:12],
        card["psi_fingerprint"][:12],
    )
    return Analysis(opened, cam, phi.to(device), psi, settings, card, device)


def run_chunk(analysis: Analysis, start: int, stop: int, progress: bool = False) -> ChunkResult:
    """Analyse frames [start, stop) of the movie on `settings.threads` torch CPU threads."""
    with torch_threads(analysis.settings.threads):
        frames = analysis.movie.read(start, stop)
        return analyze_chunk(
            frames,
            start,
            analysis.camera,
            analysis.phi,
            analysis.psi,
            analysis.settings,
            analysis.device,
            progress,
        )

"""The calibration movie of psi's position intervals: simulated, analysed, matched to its truth.

Frames are `size` LR px square (psi samples them in tiles with context, as a user's movie;
a multiple of the tile core, geometry.lr_size - 2 analyze.tile_margin, wastes no tile);
emitters are uniform over the frame at `density_per_um2`, photons from `photons`, one background per frame uniform on `background`
(photons per px), on the models' camera (camera section: the sCMOS maps of the study's camera
stream, cut to the frame). The movie is analysed by `pipeline.analyze_chunk` with psi on every
frame and the models' own detector and sampler, as a user's movie with `psi_maps: false` (psi
samples only the tiles owning a localisation; a tile's samples do not depend on which other
tiles share its batch, so the intervals are distributed as with maps); localisations are
matched one-to-one to the truth within localize.match_radius, those within `EDGE_PX` of the
frame edge left out, and the floor and scales fitted by `recalibration.fit_interval_scales`.

The movie is analysed in parts of CHECKPOINT_FRAMES frames, each saved to a checkpoint folder
as it completes, so a killed card job resumes at the first missing part. A frame's
localisations do not depend on the other frames of its chunk (tests/test_analyze.py), so the
parts give the result of one chunk.
"""

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffloc import seeding
from diffloc.analyze.names import CALIBRATION_KEYS, DETECTION_KEYS
from diffloc.analyze.pipeline import analyze_chunk
from diffloc.analyze.recalibration import UNCERTAINTY_LEVEL, fit_interval_scales
from diffloc.analyze.settings import AnalyzeSettings, analyze_settings
from diffloc.analyze.synthetic import SyntheticMovie, synthetic_movie
from diffloc.config import config_hash
from diffloc.data.condition import Condition
from diffloc.data.files import DataError, read_table, save_table
from diffloc.data.models import load_model
from diffloc.localize.matching import match_detections
from diffloc.phi.network import load_phi_model
from diffloc.physics.camera import Camera
from diffloc.provenance import source_fingerprint
from diffloc.psi.diffusion import load_psi
from diffloc.runtime import resolve_device, torch_threads
from diffloc.simulate.scenes import make_camera

log = logging.getLogger(__name__)

EDGE_PX = 1.5  # LR px: localisations of emitters this close to the frame edge are not scored
CHECKPOINT_FRAMES = 4  # calibration frames per checkpointed part (minutes of psi on a CPU)


def calibration_levels(levels: list[float]) -> list[float]:
    """The levels the card is calibrated at: analyze.levels plus the uncertainty's 0.68."""
    return sorted({float(c) for c in levels} | {UNCERTAINTY_LEVEL})


def checkpoint_folder(models: str | Path) -> Path:
    """The folder of the calibration's finished parts, beside the card in `models`."""
    return Path(models) / ".analysis_card.parts"


def measure_interval_scales(
    config: dict, card: dict, models: str | Path, progress: bool = True
) -> dict | None:
    """Conformal scales of psi's position intervals for the models in `models` (the folder of
    the card being built, `card` still without them) under the full study `config`; None when
    analyze.position_calibration.frames is 0. Records the movie's settings and its size. Parts
    already in `checkpoint_folder(models)` for the same card, movie, settings, device type and
    diffloc source code are reused;
    the caller removes the folder once the card is written."""
    pc = config["analyze"]["position_calibration"]
    if int(pc["frames"]) == 0:
        return None
    analyze = {
        **{k: config["analyze"][k] for k in CALIBRATION_KEYS},
        "pixel_size_nm": config["geometry"]["pixel_size_nm"],
        "psi_frames": "all",
        "psi_maps": False,
        "levels": calibration_levels(config["analyze"]["levels"]),
    }
    settings = analyze_settings(analyze, {**card, "position_calibration": None}, config["seed"])
    size = int(pc["size"])
    rng = seeding.rng(config["seed"], "position_calibration", "background")
    background = rng.uniform(pc["background"]["low"], pc["background"]["high"], int(pc["frames"]))
    camera = make_camera(config["camera"], size, config["seed"])
    movie = synthetic_movie(
        n_frames=int(pc["frames"]),
        size=size,
        density_per_um2=float(pc["density_per_um2"]),
        photons=pc["photons"],
        background=background[:, None, None],
        camera=camera,
        pixel_size_nm=settings.pixel_size_nm,
        sigma_x=settings.sigma_x,
        seed=config["seed"],
        name="position_calibration",
    )
    device = resolve_device(settings.device)
    models = Path(models)
    phi, _ = load_model(models / card["phi_file"], load_phi_model)
    net, diffusion, meta = load_psi(models / card["psi_file"], device)
    psi = (net.eval(), diffusion, Condition.from_config(meta["config"]))
    log.info(
        "position calibration: %d frames of %d x %d px, %d emitters",
        len(movie.frames), size, size, len(movie.truth),
    )  # fmt: skip
    # what a part's numbers depend on, the code included; the resolved device type, since
    # device "auto" resolves per node
    key = config_hash(
        {
            "card": card["card_hash"],
            "calibration": pc,
            "analyze": analyze,
            "device": device.type,
            "code": source_fingerprint(),
        }
    )
    with torch_threads(settings.threads):
        table = analyse_in_parts(
            movie, camera, (phi.to(device), psi), settings, device, checkpoint_folder(models), key,
            progress,
        )  # fmt: skip
    matched = match_truth(table, movie.truth, settings.match_radius / settings.upsample,
                          size, settings.pixel_size_nm)  # fmt: skip
    fitted = fit_interval_scales(
        matched, analyze["levels"], list(pc["photon_edges"]), pc["floor_nm"]
    )
    log.info("position calibration: %d matched localisations; scales %s", len(matched), fitted)
    return {
        **fitted,
        "frames": int(pc["frames"]),
        "size_px": size,
        "density_per_um2": float(pc["density_per_um2"]),
        "photons": dict(pc["photons"]),
        "background": dict(pc["background"]),
        "n_truth": len(movie.truth),
        "detection": {k: analyze[k] for k in DETECTION_KEYS},
    }


def analyse_in_parts(
    movie: SyntheticMovie,
    camera: Camera,
    models: tuple,
    settings: AnalyzeSettings,
    device: torch.device,
    folder: Path,
    key: str,
    progress: bool = True,
) -> pd.DataFrame:
    """Localisations of the whole movie (`pipeline.analyze_chunk` with models = (phi, psi)),
    analysed CHECKPOINT_FRAMES frames at a time; each part is saved to `folder` under its first
    frame, stamped with `key`, and a part already there with the same key is read instead."""
    n, tables = len(movie.frames), []
    for start in range(0, n, CHECKPOINT_FRAMES):
        stop = min(start + CHECKPOINT_FRAMES, n)
        path = folder / f"frames_{start:04d}.parquet"
        table = _finished_part(path, key, (start, stop))
        if table is None:
            result = analyze_chunk(
                movie.frames[start:stop], start, camera, *models, settings, device, progress
            )
            table = result.table
            save_table(table, path, {"key": key, "frames": [start, stop]})
        log.info("position calibration: frames %d..%d of %d done", start, stop - 1, n)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _finished_part(path: Path, key: str, frames: tuple[int, int]) -> pd.DataFrame | None:
    """The part saved at `path` when it holds `frames` of this calibration (`key`), else None
    (none yet, or one of another card or config, which is then replaced)."""
    if not path.exists():
        return None
    try:
        table, meta = read_table(path)
    except DataError as exc:
        log.warning(
            "position calibration: %s unreadable (%s); analysing its frames again", path, exc
        )
        return None
    if meta.get("key") != key or meta.get("frames") != list(frames):
        log.info("position calibration: %s is of another card or config; replacing it", path)
        return None
    log.info(
        "position calibration: frames %d..%d from checkpoint %s", frames[0], frames[1] - 1, path
    )
    return table


def remove_checkpoint(models: str | Path) -> None:
    """Remove the calibration's finished parts (after its card is written)."""
    shutil.rmtree(checkpoint_folder(models), ignore_errors=True)


def match_truth(
    table: pd.DataFrame, truth: pd.DataFrame, radius_px: float, size: int, pixel_size_nm: float
) -> pd.DataFrame:
    """psi-sampled localisations of `table` matched one-to-one per frame to `truth` within
    `radius_px` (LR px), with the truth's position in nm (true_x_nm, true_y_nm); emitters within
    EDGE_PX of the frame edge left out."""
    rows = []
    table = table[table["psi_sampled"] & np.isfinite(table["psi_std_x_nm"])]
    truth_frames = dict(tuple(truth.groupby("frame")))
    for frame, found in table.groupby("frame"):
        t = truth_frames.get(frame)
        if t is None:
            continue
        xy = t[["x_px", "y_px"]].to_numpy()
        hit = match_detections(found[["x_px", "y_px"]].to_numpy(), xy, radius_px, "one_to_one")
        ok = hit >= 0
        inner = np.zeros(len(found), bool)
        inner[ok] = ((xy[hit[ok]] > EDGE_PX) & (xy[hit[ok]] < size - EDGE_PX)).all(axis=1)
        rows.append(
            found[inner].assign(
                true_x_nm=xy[hit[inner], 0] * pixel_size_nm,
                true_y_nm=xy[hit[inner], 1] * pixel_size_nm,
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else table.iloc[:0]

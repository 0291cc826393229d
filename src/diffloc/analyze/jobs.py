"""Job functions of the analyze stage: one per rule of workflow/rules/analyze.smk."""

import logging
import time
from pathlib import Path

import numpy as np

from diffloc.analyze.calibration_movie import measure_interval_scales, remove_checkpoint
from diffloc.analyze.card import build_card, write_card
from diffloc.analyze.outputs import write_outputs
from diffloc.analyze.pipeline import RENDER_KEYS, ChunkResult, merge_chunks
from diffloc.analyze.session import open_analysis, run_chunk
from diffloc.data.files import MovieError, load_npz, read_table, save_npz, save_table
from diffloc.runtime import log_allocation, resolve_device

log = logging.getLogger(__name__)


def analysis_card(*, phi: str | Path, psi: str | Path, card: str | Path, config: dict) -> None:
    """Write the models' analysis card: the config slices they were trained with, bound to the
    fingerprints of phi.pt and psi.pt (analyze.card), with the scales of psi's position intervals
    measured on a calibration movie (analyze.calibration_movie; none when its frames are 0)."""
    if config["analyze"]["position_calibration"]["frames"]:
        log_allocation(log, resolve_device(config["analyze"]["device"]))
    scales = measure_interval_scales(config, build_card(config, phi, psi, card), Path(card).parent)
    written = build_card(config, phi, psi, card, scales)
    write_card(written, card)
    remove_checkpoint(Path(card).parent)
    log.info("analysis card %s (hash %s) for %s, %s", card, written["card_hash"], phi, psi)


def analyze_chunk(
    *,
    movie: str | Path,
    models: str | Path,
    table: str | Path,
    sums: str | Path,
    frames: list[int],
    camera: dict,
    analyze: dict,
    config: dict,
    seed: int,
    progress: bool = True,
) -> None:
    """Localise frames [start, stop) = `frames` of `movie` (positions, photons, background,
    sqrt(CRLB), psi's spread; see README) into `table` (Parquet) and their render sums (HR px,
    KDE units) into `sums` (NPZ)."""
    began = time.perf_counter()
    analysis = open_analysis(movie, models, camera, analyze, seed, config)
    log_allocation(log, analysis.device)
    with analysis.movie:
        start, stop = frames
        result = run_chunk(analysis, start, stop, progress)
        metadata = {**analysis.metadata(), "frames": [start, stop]}
    save_table(result.table, table, {**metadata, "n_psi_frames": result.n_psi_frames})
    save_npz(sums, {k: result.sums[k].astype(np.float64) for k in RENDER_KEYS}, metadata)
    log.info(
        "frames %d..%d: %d localisations in %.2f s (%.1f frames/s)",
        start,
        stop - 1,
        len(result.table),
        time.perf_counter() - began,
        (stop - start) / (time.perf_counter() - began),
    )


def analyze_merge(
    *,
    tables: list[str],
    sums: list[str],
    outputs: dict[str, str],
) -> None:
    """Join the chunks of one movie (in frame order) into the analysis's files: the
    localisation table, ThunderSTORM and Picasso exports and the renders (analyze.outputs)."""
    parts, first_meta = [], None
    for table_path, sums_path in zip(tables, sums, strict=True):
        table, meta = read_table(table_path, MovieError)
        arrays, _ = load_npz(sums_path, RENDER_KEYS, MovieError)
        if first_meta is None:
            first_meta = meta
        elif meta["card_hash"] != first_meta["card_hash"] or meta["movie"] != first_meta["movie"]:
            raise MovieError(f"{table_path}: chunk of another movie or models than {tables[0]}")
        parts.append(
            ChunkResult(table, arrays, meta["frames"][1] - meta["frames"][0], meta["n_psi_frames"])
        )
    merged = merge_chunks(parts)
    meta = {k: v for k, v in first_meta.items() if k not in ("frames", "n_psi_frames")}
    write_outputs(
        merged,
        Path(outputs["table"]).parent,
        shape=tuple(meta["shape"]),
        n_frames=meta["n_frames"],
        sigma_px=meta["sigma_x_px"],
        pixel_size_nm=meta["pixel_size_nm"],
        metadata=meta,
        files=outputs,
    )
    log.info("%d chunks, %d localisations -> %s", len(parts), len(merged.table), outputs["table"])

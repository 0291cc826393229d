"""Job functions of the calibration stage: one per rule of workflow/rules/calibration.smk."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from diffloc import seeding
from diffloc.calibration.ablation import grid, measure, recommend
from diffloc.calibration.inputs import (
    read_ablation_images,
    read_dense_split,
    read_mcmc_split,
    read_posterior_split,
    read_split_emitters,
    read_truth,
)
from diffloc.calibration.tables import (
    IsolatedSplit,
    add_isolated_references,
    coverage_study,
    localization_summary,
    localization_tracks,
    mcmc_per_image,
    mcmc_summary,
    reference_ratios,
    target_checks,
)
from diffloc.data.condition import Condition
from diffloc.data.files import atomic_path, save_csv
from diffloc.data.mcmc import read_diagnostics
from diffloc.localize.detection import detector_settings
from diffloc.psi.diffusion import load_psi
from diffloc.runtime import log_allocation, resolve_device, torch_threads

log = logging.getLogger(__name__)


def calibration_mcmc(
    *,
    posterior: dict[str, list[str]],
    npz: dict[str, list[str]],
    maps: dict[str, dict[str, list[str]]],
    csv: str | Path,
    per_image: str | Path,
    photons: dict[str, float],
    betas: dict[str, float],
    n_images: int,
    floor: float,
    bootstrap: int,
    seed: int,
) -> None:
    """Compare psi's std maps (KDE units) of isolated emitters per split with each MCMC setting's."""
    splits = []
    for split, files in posterior.items():
        post = read_posterior_split(files, n_images)
        splits.append(
            IsolatedSplit(
                split,
                float(photons[split]),
                read_truth(npz[split], n_images),
                post["mean"],
                post["std"],
                {s: (betas[s], read_mcmc_split(maps[s][split])) for s in maps},
            )
        )
    rows = mcmc_per_image(splits, floor)
    summary = mcmc_summary(rows, bootstrap, seeding.rng(seed, "calibration", "mcmc"))
    for row in summary.itertuples():
        log.info(
            "%s (beta %g) %s: median ratio %.3f [%.3f, %.3f], median r %.3f (%d images)",
            row.setting,
            row.beta,
            row.set,
            row.median_ratio,
            row.ratio_lo,
            row.ratio_hi,
            row.median_pearson,
            row.n_images,
        )
    save_csv(rows, per_image, float_format="%.9g")
    save_csv(summary, csv, float_format="%.9g")


def calibration_coverage(
    *,
    posterior: dict[str, list[str]],
    npz: dict[str, list[str]],
    yhat: dict[str, list[str]],
    csv: str | Path,
    reliability: str | Path,
    z_hist: str | Path,
    n_test: int,
    n_val: int,
    levels: list[float],
    recalibration_level: float,
    floor: float,
    bootstrap: int,
    z_histogram: dict,
    seed: int,
) -> None:
    """Coverage, widths and CRPS (KDE units) and z-scores on dense test images, fitted on `val`."""
    test = read_dense_split(posterior["test"], npz["test"], yhat["test"], n_test)
    val = read_dense_split(posterior["val"], npz["val"], yhat["val"], n_val)
    limit = float(z_histogram["limit"])
    result = coverage_study(
        test,
        val,
        levels,
        recalibration_level,
        floor,
        bootstrap,
        seeding.rng(seed, "calibration", "coverage"),
        np.linspace(-limit, limit, int(z_histogram["bins"]) + 1),
    )
    for row in result.table.to_dict("records"):
        log.info("%s", row)
    for path, frame in (
        (csv, result.table),
        (reliability, result.reliability),
        (z_hist, result.z_hist),
    ):
        save_csv(frame, path, float_format="%.9g")


def calibration_localization(
    *,
    posterior: dict[str, list[str]],
    npz: dict[str, list[str]],
    parquet: dict[str, list[str]],
    diagnostics: dict[str, list[str]],
    csv: str | Path,
    tracks: str | Path,
    photons: dict[str, float],
    n_images: dict[str, int],
    config: dict,
    levels: list[float],
    samples: int,
) -> None:
    """Spread of detections (`localize.detector`, named in every row) over posterior samples
    against errors, sqrt(CRLB), MCMC std (nm)."""
    settings = detector_settings(config)
    geo, psf = config["geometry"], config["psf"]
    nm = geo["pixel_size_nm"] / geo["upsample"]
    radius = config["localize"]["match_radius"]
    rows, all_tracks = [], []
    for split, files in posterior.items():
        n = n_images[split]
        post = read_posterior_split(files, n)
        drawn = post["samples"][:, :samples]
        emitters, camera = read_split_emitters(npz[split], parquet[split], n)
        split_tracks = localization_tracks(
            drawn, post["mean"], emitters, settings, radius, geo["upsample"], levels
        )
        row = {"set": split, "photons": photons[split], "detector": settings.detector}
        row["n_images"] = n
        row["samples"] = drawn.shape[1]
        row.update(localization_summary(split_tracks, len(emitters), levels, nm))
        if diagnostics.get(split):
            mcmc = pd.concat([read_diagnostics(p) for p in diagnostics[split]])
            split_tracks = add_isolated_references(
                split_tracks,
                emitters,
                camera,
                psf["sigma_x"],
                psf["background"],
                geo["pixel_size_nm"],
                config["mcmc"]["fit_photons"],
                mcmc,
            )
            row.update(reference_ratios(split_tracks, nm))
        log.info("%s", row)
        rows.append(row)
        all_tracks.append(split_tracks.assign(set=split))
    save_csv(pd.DataFrame(rows), csv, float_format="%.9g")
    with atomic_path(tracks) as tmp:
        pd.concat(all_tracks, ignore_index=True).to_parquet(tmp, index=False)


def ablation(
    *,
    model: str | Path,
    npz: list[str],
    yhat: list[str],
    iso_npz: list[str],
    iso_yhat: list[str],
    maps: list[str],
    csv: str | Path,
    timing: str | Path,
    sampler: str,
    condition: str,
    ablation: dict,
    reference: dict,
    levels: list[float],
    quantile_method: str,
    floor: float,
    device: str,
    seed: int,
) -> None:
    """Sample psi (conditioned on `condition`, diffusion.condition, built from the yhat files
    and data shards) with each step count of one sampler kind (on `ablation["threads"]` torch
    threads, pinned: the samples depend on it): calibration metrics, seconds per image."""
    threads = ablation["threads"]
    with torch_threads(threads):
        torch_device = resolve_device(device)
        log_allocation(log, torch_device)
        net, diffusion, meta = load_psi(model, torch_device, condition)
        images = read_ablation_images(
            npz,
            yhat,
            iso_npz,
            iso_yhat,
            maps,
            ablation["test_images"],
            ablation["isolated_images"],
            Condition.from_config(meta["config"]),
        )
        metrics, timings = measure(
            diffusion,
            net,
            images,
            [r for r in grid(ablation, reference) if r.kind == sampler],
            ablation["k"],
            ablation["batch_size"],
            levels,
            quantile_method,
            floor,
            seed,
            torch_device,
        )
    save_csv(metrics, csv, float_format="%.9g")
    save_csv(timings.assign(threads=threads), timing, float_format="%.6g")


def calibration_ablation(
    *,
    metrics: list[str],
    timings: list[str],
    csv: str | Path,
    recommendation: str | Path,
    timing: str | Path,
    max_coverage_error: float,
    ratio_bounds: list[float],
) -> None:
    """Join the ablation's metrics (with network evaluations per image) into one table and write
    the recommended sampler; join its measured seconds per image into a separate timing table
    (machine-dependent, so kept out of the metrics and the recommendation)."""
    table = pd.concat([pd.read_csv(p) for p in metrics], ignore_index=True)
    seconds = pd.concat([pd.read_csv(p) for p in timings], ignore_index=True)
    keys = ["sampler", "steps", "k"]
    seconds = table[[*keys, "network_evaluations_per_image"]].merge(
        seconds, on=keys, how="left", validate="one_to_one"
    )
    best = recommend(table, max_coverage_error, ratio_bounds)
    log.info("%s", best["text"])
    save_csv(table, csv, float_format="%.6g")
    save_csv(pd.DataFrame([best]), recommendation, float_format="%.6g")
    save_csv(seconds, timing, float_format="%.6g")


def gather_seeds(*, tables: list[str | Path], seeds: list[int], csv: list[str | Path]) -> None:
    """csv[i]: the per-seed tables tables[i * S : (i + 1) * S] (S = len(seeds), seed order, same
    columns) stacked into one CSV with psi's training seed as first column."""
    if len(tables) != len(seeds) * len(csv):
        raise ValueError(f"{len(tables)} tables for {len(seeds)} seeds x {len(csv)} outputs")
    n = len(seeds)
    for i, gathered in enumerate(csv):
        _gather(tables[i * n : (i + 1) * n], seeds, gathered)


def _gather(tables: list[str | Path], seeds: list[int], csv: str | Path) -> None:
    """One CSV of per-seed tables with a `seed` first column."""
    frames = []
    for path, seed in zip(tables, seeds, strict=True):
        frame = pd.read_csv(path)
        if "seed" in frame.columns:
            raise ValueError(f"{path}: already has a 'seed' column")
        frames.append(frame.assign(seed=seed)[["seed", *frame.columns]])
    save_csv(pd.concat(frames, ignore_index=True), csv, float_format="%.9g")


def calibration_targets(
    *,
    mcmc: str | Path,
    coverage: str | Path,
    psi: str | Path,
    csv: str | Path,
    targets: dict,
    max_mse_ratio: float,
) -> None:
    """Check every calibration target per psi seed (std ratio to MCMC beta = 1 and Pearson r
    per photon count, coverage, CRPS against phi + constant sigma, posterior-mean MSE); pooled
    medians are reported, not judged; one row per check."""
    checks = target_checks(
        pd.read_csv(mcmc), pd.read_csv(coverage), pd.read_csv(psi), targets, max_mse_ratio
    )
    for row in checks.itertuples():
        log.info(
            "%s seed %s %s: %.4g in [%.4g, %.4g]",
            ("PASS" if row.passed else "FAIL") if row.judged else "REPORTED",
            row.seed,
            row.description,
            row.measured,
            row.low,
            row.high,
        )
    failed = checks[checks["judged"] & ~checks["passed"].fillna(False).astype(bool)]
    log.info("%d of %d judged checks failed", len(failed), int(checks["judged"].sum()))
    save_csv(checks, csv, float_format="%.9g")

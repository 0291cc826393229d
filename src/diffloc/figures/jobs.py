"""Job functions of the figures stage: one per rule of workflow/rules/figures.smk.

Each job reads its rule's input files, draws the figure with the pure function `figureN` of
module `figN`, and saves it as PNG and PDF (atomically, `style.save_figure`).
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffloc import seeding
from diffloc.data.condition import Condition, read_condition
from diffloc.data.files import ShardError
from diffloc.data.mcmc import read_chains, read_diagnostics, read_maps
from diffloc.data.posterior import load_posterior
from diffloc.data.shards import image_range, read_shard, read_yhat
from diffloc.figures.fig1 import figure1
from diffloc.figures.fig2 import PosteriorRow, figure2, setting_label
from diffloc.figures.fig3 import figure3
from diffloc.figures.fig4 import figure4
from diffloc.figures.fig5 import figure5
from diffloc.figures.fig6 import figure6
from diffloc.figures.fig7 import figure7
from diffloc.figures.style import save_figure
from diffloc.psi.diffusion import Sampler, load_psi
from diffloc.runtime import torch_threads

log = logging.getLogger(__name__)

FIG5_SPLIT = "test"  # Figure 5's detection panel: the dense test images


def fig1(
    *, npz: str | Path, parquet: str | Path, png: str | Path, pdf: str | Path, image: int = 0
) -> None:
    """Figure 1 (generative model of image `image` of a shard; axes in nm) as PNG and PDF."""
    shard = read_shard(npz, parquet)
    save_figure(figure1(shard, image), png, pdf)
    log.info("Figure 1 from image %d of %s -> %s, %s", image, npz, png, pdf)


def _posterior_row(
    label: str, image: int, chains: str | Path, maps: str | Path, diagnostics: str | Path
) -> PosteriorRow:
    """One setting's MCMC results for split image `image`: samples (LR px), std map (KDE units),
    acceptance, posterior std and sqrt(CRLB) (nm)."""
    draws_all, _ = read_chains(chains)
    maps_all, _ = read_maps(maps)
    diag = read_diagnostics(diagnostics)
    draws = draws_all[draws_all["image"] == image]
    at = np.flatnonzero(maps_all["image"] == image)
    stats = diag[diag["image"] == image]
    for path, found in ((chains, len(draws)), (maps, at.size), (diagnostics, len(stats))):
        if not found:
            raise ShardError(f"{path}: holds no results for image {image}")
    stats = stats.iloc[0]
    return PosteriorRow(
        label=label,
        u_px=draws["u_px"].to_numpy(),
        v_px=draws["v_px"].to_numpy(),
        std_map=maps_all["std"][at[0]],
        acceptance=float(stats["acceptance"]),
        std_nm=(float(stats["std_u_nm"]), float(stats["std_v_nm"])),
        crlb_nm=(float(stats["crlb_u_nm"]), float(stats["crlb_v_nm"])),
    )


def fig2(
    *,
    npz: str | Path,
    parquet: str | Path,
    chains: list[str],
    maps: list[str],
    diagnostics: list[str],
    png: str | Path,
    pdf: str | Path,
    figure: dict,
    settings: dict,
    geometry: dict,
) -> None:
    """Figure 2 (MCMC posterior of one isolated emitter, in nm, per setting) as PNG and PDF.

    `figure` (mcmc.plan.figure_spec) places the emitter: image `figure['image']` of its split,
    index `figure['local']` in the shard (npz, parquet); `chains`, `maps` and `diagnostics`
    hold one chunk file per entry of `settings`, in the same order."""
    shard = read_shard(npz, parquet, expected_hash=figure["shard_hash"])
    truth = shard.emitters[shard.emitters["image"] == figure["local"]]
    if len(truth) != 1:
        raise ShardError(
            f"{parquet}: image {figure['local']} has {len(truth)} emitters, expected 1"
        )
    rows = [
        _posterior_row(setting_label(name, cfg), figure["image"], c, m, d)
        for (name, cfg), c, m, d in zip(settings.items(), chains, maps, diagnostics, strict=True)
    ]
    fig = figure2(
        shard.x[figure["local"]],
        (float(truth["u_px"].iloc[0]), float(truth["v_px"].iloc[0])),
        float(truth["photons"].iloc[0]),
        rows,
        geometry["pixel_size_nm"],
        geometry["upsample"],
    )
    save_figure(fig, png, pdf)
    log.info(
        "Figure 2 (split image %d, %d settings) -> %s, %s", figure["image"], len(rows), png, pdf
    )


def fig3(
    *,
    model: str | Path,
    npz: str | Path,
    yhat: str | Path,
    png: str | Path,
    pdf: str | Path,
    image: int,
    sampler: dict,
    seed: int,
) -> None:
    """Figure 3 (psi's reverse trajectory for test image `image`, axes in nm) as PNG and PDF;
    the one trajectory is sampled on the CPU, on `sampler["threads"]` torch threads, with a
    generator seeded from (seed, 'fig3', image), conditioned as psi was trained."""
    with torch_threads(sampler["threads"]):
        net, diffusion, meta = load_psi(model, torch.device("cpu"))
        shard, (yhat_all, _) = read_shard(npz), read_yhat(yhat)
        generator = torch.Generator().manual_seed(seeding.torch_seed(seed, "fig3", image))
        condition = Condition.from_config(meta["config"])
        cond = torch.from_numpy(read_condition(condition, [yhat], [npz], image, image + 1))
        traj = diffusion.trajectory(net, cond, generator, Sampler.from_config(sampler))
    geo = shard.metadata["config"]["geometry"]
    fig = figure3(
        shard.x[image],
        yhat_all[image],
        shard.y[image],
        traj.t,
        traj.y_t[0].numpy(),
        traj.y0_hat[0].numpy(),
        geo["pixel_size_nm"],
        geo["pixel_size_nm"] / geo["upsample"],
    )
    save_figure(fig, png, pdf)
    log.info("Figure 3 from image %d of %s (%d steps) -> %s, %s", image, npz, len(traj.t), png, pdf)


def fig4(
    *,
    posterior: list[str],
    npz: list[str],
    yhat: list[str],
    png: str | Path,
    pdf: str | Path,
    n_images: int,
) -> None:
    """Figure 4 (x, yhat, psi's posterior mean and std, y0 of test images 0 .. n_images - 1;
    axes in nm) as PNG and PDF; `posterior`, `npz` and `yhat` list the split's files in order."""
    means, stds, k, have = [], [], None, 0
    for path in posterior:
        summary, meta = load_posterior(path)
        means.append(summary["mean"])
        stds.append(summary["std"])
        k, have = meta["k"], have + len(summary["mean"])
        if have >= n_images:
            break
    mean = np.concatenate(means)[:n_images]
    std = np.concatenate(stds)[:n_images]
    x = image_range(npz, 0, n_images, lambda p: read_shard(p).x)
    y0 = image_range(npz, 0, n_images, lambda p: read_shard(p).y)
    yhat_first = image_range(yhat, 0, n_images, lambda p: read_yhat(p)[0])
    geo = read_shard(npz[0]).metadata["config"]["geometry"]
    fig = figure4(
        x,
        yhat_first,
        mean,
        std,
        y0,
        k,
        geo["pixel_size_nm"],
        geo["pixel_size_nm"] / geo["upsample"],
    )
    save_figure(fig, png, pdf)
    log.info("Figure 4 from %d test images (K = %s) -> %s, %s", len(x), k, png, pdf)


def fig5(*, sweep: str | Path, localization: str | Path, png: str | Path, pdf: str | Path) -> None:
    """Figure 5 (phi's localisation error in nm vs sqrt(CRLB); detection on dense test images,
    both per KDE width) as PNG and PDF."""
    fig = figure5(pd.read_csv(sweep), pd.read_csv(localization), FIG5_SPLIT)
    save_figure(fig, png, pdf)
    log.info("Figure 5 from %s and %s -> %s, %s", sweep, localization, png, pdf)


def fig6(
    *,
    per_image: str | Path,
    coverage: str | Path,
    reliability: str | Path,
    z_hist: str | Path,
    png: str | Path,
    pdf: str | Path,
) -> None:
    """Figure 6 (calibration of psi's std against MCMC and of its coverage, KDE units) as PNG and
    PDF, from the per-image, coverage, reliability and z-histogram tables."""
    fig = figure6(*(pd.read_csv(p) for p in (per_image, coverage, reliability, z_hist)))
    save_figure(fig, png, pdf)
    log.info(
        "Figure 6 from %s, %s, %s, %s -> %s, %s", per_image, coverage, reliability, z_hist, png, pdf
    )


def fig7(
    *,
    ablation: str | Path,
    recommendation: str | Path,
    timing: str | Path,
    png: str | Path,
    pdf: str | Path,
    max_coverage_error: float,
) -> None:
    """Figure 7 (sampler ablation: calibration error against network evaluations per image, with
    the measured seconds per image on a second axis) as PNG and PDF."""
    table = pd.read_csv(ablation)
    best = pd.read_csv(recommendation).iloc[0].to_dict()
    seconds = pd.read_csv(timing)
    per_evaluation = float(
        (seconds["seconds_per_image"] / seconds["network_evaluations_per_image"]).median()
    )
    device = ", ".join(sorted(set(seconds["device"].astype(str))))
    threads = ", ".join(str(t) for t in sorted(set(seconds["threads"])))
    fig = figure7(table, best, max_coverage_error, per_evaluation, f"{device}, threads {threads}")
    save_figure(fig, png, pdf)
    log.info("Figure 7 from %d ablation rows -> %s, %s", len(table), png, pdf)

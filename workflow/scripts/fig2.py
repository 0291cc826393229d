"""Rule `fig2`: Figure 2 from one isolated emitter's shard and each setting's MCMC outputs."""

import logging
import math

import numpy as np

from diffloc.data.files import ShardError
from diffloc.data.mcmc import read_chains, read_diagnostics, read_maps
from diffloc.data.shards import read_shard
from diffloc.figures.fig2 import PosteriorRow, figure2
from diffloc.figures.style import save_figure

log = logging.getLogger("diffloc.figures")


def setting_label(name: str, setting: dict) -> str:
    """Short row label of a sampler setting, e.g. 'paper: β = 0.2 (2.2x wider), s² = 0.05'."""
    beta = setting["beta"]
    width = "true posterior" if beta == 1 else f"{1 / math.sqrt(beta):.1f}x wider"
    proposal = "adapted s" if setting["adapt"] else f"s² = {setting['proposal_var']:g}"
    return f"{name}: β = {beta:g} ({width}), {proposal}"


def _row(label: str, image: int, chains_path: str, maps_path: str, diag_path: str) -> PosteriorRow:
    chains, _ = read_chains(chains_path)
    maps, _ = read_maps(maps_path)
    diag = read_diagnostics(diag_path)
    draws = chains[chains["image"] == image]
    at = np.flatnonzero(maps["image"] == image)
    stats = diag[diag["image"] == image]
    for path, found in ((chains_path, len(draws)), (maps_path, at.size), (diag_path, len(stats))):
        if not found:
            raise ShardError(f"{path}: holds no results for image {image}")
    stats = stats.iloc[0]
    return PosteriorRow(
        label=label,
        u_px=draws["u_px"].to_numpy(),
        v_px=draws["v_px"].to_numpy(),
        std_map=maps["std"][at[0]],
        acceptance=float(stats["acceptance"]),
        std_nm=(float(stats["std_u_nm"]), float(stats["std_v_nm"])),
        crlb_nm=(float(stats["crlb_u_nm"]), float(stats["crlb_v_nm"])),
    )


def run(
    figure: dict,
    settings: dict,
    shard_npz: str,
    shard_parquet: str,
    chains: list[str],
    maps: list[str],
    diagnostics: list[str],
    geometry: dict,
    png: str,
    pdf: str,
) -> None:
    """Draw Figure 2 for image `figure['image']` of the set (index `figure['local']` in its shard);
    `chains`, `maps`, `diagnostics` list one file per entry of `settings` (same order)."""
    shard = read_shard(shard_npz, shard_parquet, expected_hash=figure["shard_hash"])
    truth = shard.emitters[shard.emitters["image"] == figure["local"]]
    if len(truth) != 1:
        raise ShardError(
            f"{shard_parquet}: image {figure['local']} has {len(truth)} emitters, expected 1"
        )
    rows = [
        _row(setting_label(name, cfg), figure["image"], c, m, d)
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
    log.info("Figure 2 (set image %d, %d settings) -> %s, %s", figure["image"], len(rows), png, pdf)


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    run(
        snakemake.params.figure,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.input.npz,  # noqa: F821
        snakemake.input.parquet,  # noqa: F821
        list(snakemake.input.chains),  # noqa: F821
        list(snakemake.input.maps),  # noqa: F821
        list(snakemake.input.diagnostics),  # noqa: F821
        snakemake.params.geometry,  # noqa: F821
        snakemake.output.png,  # noqa: F821
        snakemake.output.pdf,  # noqa: F821
    )

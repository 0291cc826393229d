"""Rule `fig1`: Figure 1, the generative model of one test image (PNG and PDF)."""

import logging

from diffloc.data.shards import read_shard
from diffloc.figures.fig1 import generative_model_figure
from diffloc.figures.style import save_figure

log = logging.getLogger("diffloc.fig1")


def run(npz: str, parquet: str, image: int, png: str, pdf: str) -> None:
    """Draw Figure 1 for image `image` of the shard (npz, parquet) and save it."""
    shard = read_shard(npz, parquet)
    save_figure(generative_model_figure(shard, image), png, pdf)
    log.info("Figure 1 from image %d of %s -> %s, %s", image, npz, png, pdf)


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(smk.input.npz, smk.input.parquet, smk.params.image, smk.output.png, smk.output.pdf)

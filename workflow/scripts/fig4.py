"""Rule `fig4`: the first test images by index with phi's estimate and psi's posterior."""

import numpy as np

from diffloc.data.posterior import load_posterior
from diffloc.data.shards import image_range, read_shard, read_yhat
from diffloc.figures.fig4 import make_fig4
from diffloc.figures.style import save_figure


def run(
    posterior: list[str], data_npz: list[str], yhat_npz: list[str], n: int, png: str, pdf: str
) -> None:
    """Figure 4 for test images 0 .. n-1 (posterior chunks in order)."""
    means, stds, k, have = [], [], None, 0
    for path in posterior:
        summary, meta = load_posterior(path)
        means.append(summary["mean"])
        stds.append(summary["std"])
        k, have = meta["k"], have + len(summary["mean"])
        if have >= n:
            break
    mean = np.concatenate(means)[:n]
    std = np.concatenate(stds)[:n]
    x = image_range(data_npz, 0, n, lambda p: read_shard(p).x)
    y0 = image_range(data_npz, 0, n, lambda p: read_shard(p).y)
    yhat = image_range(yhat_npz, 0, n, lambda p: read_yhat(p)[0])
    geo = read_shard(data_npz[0]).metadata["config"]["geometry"]
    fig = make_fig4(
        x, yhat, mean, std, y0, k, geo["pixel_size_nm"], geo["pixel_size_nm"] / geo["upsample"]
    )
    save_figure(fig, png, pdf)


if "snakemake" in globals():
    smk = snakemake  # noqa: F821
    run(
        list(smk.input.posterior),
        list(smk.input.npz),
        list(smk.input.yhat),
        smk.params.n,
        smk.output.png,
        smk.output.pdf,
    )

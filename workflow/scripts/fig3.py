"""Rule `fig3`: run psi's reverse process on one test image with every step recorded; draw it."""

import torch

from diffloc import seeding
from diffloc.data.shards import read_shard, read_yhat
from diffloc.figures.fig3 import make_fig3
from diffloc.figures.style import save_figure
from diffloc.psi.diffusion import Sampler, load_psi


def run(
    model_path: str,
    data_npz: str,
    yhat_npz: str,
    image: int,
    sampler_cfg: dict,
    seed: int,
    png: str,
    pdf: str,
) -> None:
    """Figure 3 for `image` of the first test shard (CPU: one trajectory is cheap)."""
    torch.set_num_threads(1)
    net, diffusion, _ = load_psi(model_path, torch.device("cpu"))
    shard, (yhat, _) = read_shard(data_npz), read_yhat(yhat_npz)
    generator = torch.Generator().manual_seed(seeding.torch_seed(seed, "fig3", image))
    cond = torch.from_numpy(yhat[image : image + 1])
    traj = diffusion.trajectory(net, cond, generator, Sampler.from_config(sampler_cfg))
    geo = shard.metadata["config"]["geometry"]
    fig = make_fig3(
        shard.x[image],
        yhat[image],
        shard.y[image],
        traj.t,
        traj.y_t[0].numpy(),
        traj.y0_hat[0].numpy(),
        geo["pixel_size_nm"],
        geo["pixel_size_nm"] / geo["upsample"],
    )
    save_figure(fig, png, pdf)


if "snakemake" in globals():
    smk = snakemake  # noqa: F821
    run(
        smk.input.model,
        smk.input.npz,
        smk.input.yhat,
        smk.params.image,
        smk.params.sampler,
        smk.params.seed,
        smk.output.png,
        smk.output.pdf,
    )

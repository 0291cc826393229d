"""Figure 2: built by its rule job from tiny MCMC outputs, readable without the paper."""

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np

from diffloc.config import shard_config
from diffloc.data.mcmc import write_chunk
from diffloc.data.shards import read_shard, write_shard
from diffloc.figures.fig2 import PosteriorRow, figure2, setting_label
from diffloc.figures.jobs import fig2
from diffloc.mcmc.chunks import run_chunk
from diffloc.mcmc.plan import chunk_config, figure_spec
from diffloc.simulate.scenes import simulate_shard


def _texts(fig):
    """Every string drawn on the figure: titles, labels, legends, colour bars, text boxes."""
    return [t.get_text() for t in fig.findobj(plt.Text) if t.get_text()]


def test_figure_shows_units_numbers_and_one_row_per_setting():
    rng = np.random.default_rng(0)
    rows = [
        PosteriorRow(
            label=f"setting {k}",
            u_px=10.2 + s * rng.standard_normal(500),
            v_px=9.6 + s * rng.standard_normal(500),
            std_map=np.abs(rng.standard_normal((80, 80))) * s,
            acceptance=acc,
            std_nm=(s * 108.3, s * 108.3),
            crlb_nm=(10.3, 10.4),
        )
        for k, (s, acc) in enumerate(((0.1, 0.35), (0.22, 0.52)))
    ]
    fig = figure2(rng.normal(100.0, 3.0, (20, 20)), (10.2, 9.6), 200.0, rows, 108.3, 4)
    texts = "\n".join(_texts(fig))
    for needed in (
        "acceptance 0.35",
        "acceptance 0.52",
        "posterior std: u 10.8 nm",
        "sqrt(CRLB):    u 10.3 nm",
        "camera counts (ADU)",
        "posterior std of y (KDE units)",
        "setting 0",
        "setting 1",
        "i0 = 200 photons",
    ):
        assert needed in texts, needed
    image_axes = [ax for ax in fig.axes if ax.get_images()]
    assert len(image_axes) == 4  # x and sqrt Var(y), per row
    assert all(ax.get_xlabel() == "v (nm)" and ax.get_ylabel() == "u (nm)" for ax in image_axes)
    # both rows' std maps share one colour scale, so the widths compare by eye
    limits = {ax.get_images()[0].get_clim() for ax in image_axes if "KDE" in ax.get_title()}
    assert len(limits) == 1
    plt.close(fig)


def test_setting_label_says_how_much_wider_than_the_true_posterior():
    paper = {"beta": 0.2, "adapt": False, "proposal_var": 0.05}
    assert setting_label("paper", paper) == "paper: β = 0.2 (2.2x wider), s² = 0.05"
    default = {"beta": 1.0, "adapt": True, "proposal_var": 0.05}
    assert setting_label("default", default) == "default: β = 1 (true posterior), adapted s"


def test_rule_job_writes_png_and_pdf_from_chunk_outputs(tmp_path, tiny_config):
    spec = figure_spec(tiny_config)
    npz, parquet = tmp_path / "shard.npz", tmp_path / "shard.parquet"

    write_shard(simulate_shard(shard_config(tiny_config, spec["set"], 0)), npz, parquet)
    files = {"chains": [], "maps": [], "diagnostics": []}
    settings = tiny_config["mcmc"]["settings"]
    for name in settings:
        outputs = [tmp_path / f"{name}.{ext}" for ext in ("parquet", "npz", "csv")]
        cfg = chunk_config(tiny_config, name, spec["set"], int(spec["chunk"]))
        shard = read_shard(npz, parquet, expected_hash=cfg["shards"][spec["shard"]])
        write_chunk(run_chunk(cfg, {spec["shard"]: shard}), *outputs)
        for key, path in zip(files, outputs, strict=True):
            files[key].append(str(path))
    png, pdf = tmp_path / "fig2.png", tmp_path / "fig2.pdf"
    fig2(
        npz=npz,
        parquet=parquet,
        **files,
        png=png,
        pdf=pdf,
        figure=spec,
        settings=settings,
        geometry=tiny_config["geometry"],
    )
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 1000 and pixels.shape[1] > 1500
    assert pdf.read_bytes().startswith(b"%PDF")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left

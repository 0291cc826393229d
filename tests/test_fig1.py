"""Figure 1 (the generative model): panel content, labels, and the rule job's PNG and PDF."""

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from diffloc.config import shard_config
from diffloc.data.shards import read_shard, write_shard
from diffloc.figures.fig1 import figure1
from diffloc.figures.jobs import fig1
from diffloc.physics.psf import expected_counts
from diffloc.simulate.scenes import simulate_shard


@pytest.fixture
def shard_files(tmp_path, tiny_config):
    """A tiny simulated test shard on disk (npz, parquet)."""
    npz, parquet = tmp_path / "data" / "0000.npz", tmp_path / "data" / "0000.parquet"
    write_shard(simulate_shard(shard_config(tiny_config, "test", 0)), npz, parquet)
    return npz, parquet


def panels(fig):
    """The four data axes of Figure 1 (colour bars are extra axes), in reading order."""
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 4
    return axes


def test_panels_show_the_shards_emitters_omega_x_and_y(shard_files):
    shard = read_shard(*shard_files)
    image = 2
    fig = figure1(shard, image)
    a, b, c, d = panels(fig)
    rows = shard.emitters[shard.emitters["image"] == image]
    truth = np.column_stack([rows["v_nm"], rows["u_nm"]])
    for ax in (a, b, c, d):  # every panel marks the true positions (v across, u down, in nm)
        np.testing.assert_allclose(ax.collections[-1].get_offsets(), truth)
    cfg = shard.metadata["config"]
    omega = expected_counts(
        rows["u_px"].to_numpy(),
        rows["v_px"].to_numpy(),
        rows["photons"].to_numpy(),
        cfg["geometry"]["lr_size"],
        cfg["psf"]["sigma_x"],
        cfg["psf"]["background"],
    )
    np.testing.assert_allclose(b.images[0].get_array(), omega)
    np.testing.assert_array_equal(c.images[0].get_array(), shard.x[image])
    np.testing.assert_array_equal(d.images[0].get_array(), shard.y[image])
    assert np.isclose(omega.sum(), rows["photons"].sum(), rtol=1e-3)  # all light on the camera
    plt.close(fig)


def test_axes_are_in_nm_and_every_colour_bar_is_labelled(shard_files):
    shard = read_shard(*shard_files)
    fig = figure1(shard, 0)
    a, b, c, d = panels(fig)
    field_nm = 20 * shard.metadata["config"]["geometry"]["pixel_size_nm"]
    for ax in (a, b, c, d):
        assert ax.get_xlabel() == "v (nm)"
        assert ax.get_xlim() == pytest.approx((0, field_nm))
        assert sorted(ax.get_ylim()) == pytest.approx([0, field_nm])
        assert ax.get_ylim()[0] > ax.get_ylim()[1]  # u runs down, as in the images
    assert a.get_ylabel() == c.get_ylabel() == "u (nm)"
    colour_bars = [ax.images[0].colorbar.ax.get_ylabel() for ax in (b, c, d)]
    assert colour_bars == [
        "expected photons per pixel",
        "camera signal (ADU)",
        "y (each image scaled to max 1)",
    ]
    assert "10 true positions" in a.get_title()
    plt.close(fig)


def test_an_image_outside_the_shard_is_a_clear_error(shard_files):
    shard = read_shard(*shard_files)
    with pytest.raises(IndexError, match="image 6 is outside the shard's 6 images"):
        figure1(shard, 6)


def test_rule_job_writes_png_and_pdf(tmp_path, shard_files):
    png, pdf = tmp_path / "figures" / "fig1.png", tmp_path / "figures" / "fig1.pdf"
    fig1(npz=shard_files[0], parquet=shard_files[1], png=png, pdf=pdf, image=0)
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 1000 and pixels.shape[1] > 1000  # 200 dpi, about 7.5 x 7.5 in
    assert pixels[..., :3].std() > 0.1  # not blank
    assert pdf.read_bytes().startswith(b"%PDF")

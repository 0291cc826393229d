"""psi's condition (`diffusion.condition`): the photon channel against hand-computed values,
nearest-neighbour placement on the KDE grid, the training pairs, the U-Net's input channels and
the analysis tiles."""

import math

import numpy as np
import pytest
import torch
import yaml

from conftest import SCHEMA_PATH
from diffloc.analyze.frames import Tiling
from diffloc.analyze.uncertainty import psi_frame
from diffloc.config import shard_config
from diffloc.data.condition import CONDITIONS, Condition, photon_channel
from diffloc.data.files import save_npz
from diffloc.data.shards import write_shard
from diffloc.localize.detection import detector_settings
from diffloc.physics.camera import Camera
from diffloc.psi.diffusion import build_psi
from diffloc.simulate.scenes import simulate_shard
from diffloc.training.pairs import psi_sources


def anscombe(n: float, x_scale: float) -> float:
    """The documented transform of n photons, computed on its own in float64."""
    return 2.0 * math.sqrt(max(n, 0.0) + 3.0 / 8.0) / x_scale


def test_constant_adu_image_gives_the_exact_photon_value_everywhere():
    gain, offset, photons, s, x_scale = 2.5, 100.0, 40.0, 4, 10.0
    camera = Camera.scalar((5, 6), gain, offset, 3.0)
    x = np.full((2, 5, 6), offset + gain * photons, dtype=np.float32)  # 200 ADU, exact in float32
    yhat = np.random.default_rng(0).uniform(0, 1, (2, 20, 24)).astype(np.float32)
    cond = Condition("yhat_x", s, x_scale).build(yhat, camera.photoelectrons(x))
    assert cond.shape == (2, 2, 20, 24) and cond.dtype == np.float32
    np.testing.assert_array_equal(cond[:, 0], yhat)
    assert np.all(cond[:, 1] == np.float32(anscombe(photons, x_scale)))
    # yhat alone: one channel, the camera image ignored
    only = Condition("yhat", s, x_scale).build(yhat, camera.photoelectrons(x))
    assert only.shape == (2, 1, 20, 24)
    np.testing.assert_array_equal(only[:, 0], yhat)


def test_per_pixel_camera_maps_are_used():
    rng = np.random.default_rng(1)
    camera = Camera.scmos((4, 4), 2.0, 100.0, 4.0, 0.2, 5.0, 0.5, rng)
    n = rng.uniform(0, 500, (1, 4, 4))
    x = camera.offset.astype(np.float64) + camera.gain.astype(np.float64) * n
    got = Condition("yhat_x", 1, 7.0).build(np.zeros((1, 4, 4)), camera.photoelectrons(x))[:, 1]
    want = np.vectorize(lambda v: anscombe(v, 7.0))(n)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_each_lr_pixel_fills_its_hr_block_and_negative_counts_are_zero():
    s, x_scale = 3, 5.0
    photons = np.arange(12, dtype=np.float64).reshape(1, 3, 4) * 7.0 - 10.0  # some below zero
    out = photon_channel(photons, s, x_scale)
    assert out.shape == (1, 9, 12)
    for i in range(3):
        for j in range(4):
            block = out[0, i * s : (i + 1) * s, j * s : (j + 1) * s]
            assert np.all(block == np.float32(anscombe(photons[0, i, j], x_scale)))
    assert out[0, 0, 0] == np.float32(2.0 * math.sqrt(0.375) / x_scale)  # -10 photons -> 0


def test_building_a_condition_fails_fast():
    with pytest.raises(ValueError, match=r"diffusion\.condition 'x'.*\['yhat', 'yhat_x'\]"):
        Condition("x", 4, 10.0)
    c = Condition("yhat_x", 4, 10.0)
    with pytest.raises(ValueError, match="needs the camera images in photons"):
        c.build(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match=r"upsampled 4x do not match yhat \[1, 8, 8\]"):
        c.build(np.zeros((1, 8, 8)), np.zeros((1, 3, 2)))


def test_schema_enum_and_shipped_configs_know_the_conditions(default_config):
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    entry = schema["properties"]["diffusion"]["properties"]["condition"]
    assert tuple(entry["enum"]) == CONDITIONS
    assert default_config["diffusion"]["condition"] == "yhat_x"  # README: psi conditioned on x


@pytest.mark.parametrize("kind", CONDITIONS)
def test_unet_input_channels_follow_the_condition(default_config, kind):
    default_config["diffusion"]["condition"] = kind
    net, _ = build_psi(default_config)
    assert net.in_channels == 1 + Condition.from_config(default_config).channels
    assert net.in_channels == {"yhat": 2, "yhat_x": 3}[kind]


def test_training_pairs_carry_the_shards_photon_channel(tiny_config, tmp_path):
    tiny_config["diffusion"].update(condition="yhat_x", x_scale=8.0)
    data = simulate_shard(shard_config(tiny_config, "psi_train", 0))
    npz, yhat = tmp_path / "0.npz", tmp_path / "yhat.npz"
    write_shard(data, npz, tmp_path / "0.parquet")
    meta = {"n_images": data.n_images, "data_config_hash": data.metadata["config_hash"]}
    save_npz(yhat, {"yhat": data.y * 0.5}, meta)
    pair = psi_sources([yhat], [npz], Condition.from_config(tiny_config))[0].load()
    s = tiny_config["geometry"]["upsample"]
    photons = (data.x.astype(np.float64) - data.camera.offset) / data.camera.gain
    assert pair["cond"].shape == (data.n_images, 2, *data.y.shape[1:])
    np.testing.assert_array_equal(pair["cond"][:, 0], data.y * 0.5)
    i, j = 7, 11  # one LR pixel of image 3 against its HR block
    block = pair["cond"][3, 1, i * s : (i + 1) * s, j * s : (j + 1) * s]
    np.testing.assert_allclose(block, anscombe(photons[3, i, j], 8.0), rtol=1e-6)


def _tiled_psi(tiny_config):
    """A tiny untrained psi, its condition, and the tiling of a 24 x 26 px frame (margin 3)."""
    torch.manual_seed(0)
    net, diffusion = build_psi(tiny_config)
    condition = Condition.from_config(tiny_config)
    tiling = Tiling((24, 26), tiny_config["geometry"]["lr_size"], 3)
    return net, diffusion, condition, tiling


def test_analysis_tiles_cut_the_photon_image_alongside_the_kde(tiny_config):
    """psi_frame feeds psi, per sampled tile, the photon channel of the same LR window (zero
    photons beyond the frame), checked pixel by pixel against the frame."""
    tiny_config["diffusion"]["condition"] = "yhat_x"
    net, diffusion, condition, tiling = _tiled_psi(tiny_config)
    s, size = condition.upsample, tiny_config["geometry"]["lr_size"]
    h, w = tiling.shape
    photons = np.random.default_rng(2).uniform(-5, 300, (h, w)).astype(np.float32)
    kde = np.full((s * h, s * w), 0.5, dtype=np.float32)  # every tile is sampled
    seen = []
    net.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].detach().clone()))
    sampler = {"kind": "ddim", "steps": 1, "spacing": "uniform", "k": 2, "batch_size": 64}
    mean, var, _ = psi_frame(
        net.eval(),
        diffusion,
        condition,
        sampler,
        kde,
        photons,
        tiling,
        s,
        np.array([[40.0, 40.0]]),
        detector_settings(tiny_config),
        5.0,
        (0.68,),
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
    )
    assert mean.shape == var.shape == (s * h, s * w)
    (inputs,) = seen  # one step, all tiles in one batch
    origins = tiling.origins()
    assert inputs.shape == (2 * len(origins), 3, s * size, s * size)
    for t, (r0, c0) in enumerate(origins):
        for a, b in ((0, 0), (s * size - 1, s * size - 1), (37, 5), (13, 70)):
            r, c = r0 + a // s, c0 + b // s
            inside = 0 <= r < h and 0 <= c < w
            n = photons[r, c] if inside else 0.0
            for row in (2 * t, 2 * t + 1):  # the K = 2 samples of tile t
                assert inputs[row, 2, a, b].item() == pytest.approx(
                    anscombe(n, condition.x_scale), rel=1e-6
                )
                assert inputs[row, 1, a, b].item() == (0.5 if inside else 0.0)


def test_tracks_only_samples_just_the_tiles_owning_a_localisation(tiny_config):
    """With tracks_only (the position calibration) psi sees only the tile whose core holds the
    anchor; every other tile keeps phi's estimate with zero variance, and the anchor is tracked."""
    net, diffusion, condition, tiling = _tiled_psi(tiny_config)
    s, (h, w) = condition.upsample, tiling.shape
    kde = np.full((s * h, s * w), 0.5, dtype=np.float32)  # every tile would be sampled
    photons = np.zeros((h, w), dtype=np.float32)
    seen = []
    net.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[0]))
    sampler = {"kind": "ddim", "steps": 1, "spacing": "uniform", "k": 3, "batch_size": 64}
    anchor = np.array([[40.0, 40.0]])  # HR px: LR (10, 10), in the core of tile (0, 0)

    def run(tracks_only: bool):
        seen.clear()
        return psi_frame(
            net.eval(), diffusion, condition, sampler, kde, photons, tiling, s, anchor,
            detector_settings(tiny_config), 5.0, (0.68,), torch.Generator().manual_seed(0),
            torch.device("cpu"), tracks_only=tracks_only,
        )  # fmt: skip

    run(False)
    assert seen == [3 * len(tiling.origins())]  # by default every busy tile
    mean, var, tracks = run(True)
    assert seen == [3]  # one step, K = 3 samples of the one owner tile
    core = s * tiling.core
    assert np.all(var[core:, :] == 0) and np.all(var[:, core:] == 0)
    np.testing.assert_array_equal(mean[core:, core:], kde[core:, core:])
    assert len(tracks) == 1

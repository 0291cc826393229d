"""Scene sampling distributions, shard determinism and the consistency of x, y and the table."""

import numpy as np
import pytest
from scipy import stats

from conftest import tiny
from diffloc import seeding
from diffloc.config import shard_config, splits
from diffloc.data.files import ShardError
from diffloc.data.shards import Scene, read_shard, shard_kde
from diffloc.physics.kde import kde_images
from diffloc.simulate.jobs import simulate
from diffloc.simulate.scenes import (
    sample_background,
    sample_counts,
    sample_photons,
    sample_scene,
    simulate_shard,
)


def test_emitters_are_uniform_on_the_disc():
    rng = np.random.default_rng(0)
    fixed = {"dist": "fixed", "value": 10}
    scene = sample_scene(2000, 10.0, 7.0, fixed, {"dist": "fixed", "value": 200}, rng)
    du, dv = scene.u - 10.0, scene.v - 10.0
    r2 = (du**2 + dv**2) / 49.0
    assert r2.max() <= 1.0
    # uniform on a disc <=> (r/R)^2 ~ U(0, 1) and angle ~ U(0, 2 pi), independent
    assert stats.kstest(r2.ravel(), "uniform").pvalue > 1e-3
    angle = (np.arctan2(dv, du).ravel() + np.pi) / (2 * np.pi)
    assert stats.kstest(angle, "uniform").pvalue > 1e-3
    assert np.all(scene.photons == 200.0) and np.all(scene.counts == 10)


def test_a_square_instead_of_a_disc_would_fail_the_check():
    rng = np.random.default_rng(0)
    du, dv = rng.uniform(-7, 7, size=(2, 20000)) / np.sqrt(2)
    assert stats.kstest((du**2 + dv**2) / 49.0, "uniform").pvalue < 1e-3


@pytest.mark.parametrize(
    ("spec", "mean", "support"),
    [
        ({"dist": "fixed", "value": 10}, 10.0, (10, 10)),
        ({"dist": "poisson", "mean": 6.5}, 6.5, (0, None)),
        ({"dist": "uniform", "low": 2, "high": 5}, 3.5, (2, 5)),
        ({"dist": "uniform", "low": 1, "high": 15}, 8.0, (1, 15)),
    ],
)
def test_count_distributions(spec, mean, support):
    counts = sample_counts(spec, 20000, np.random.default_rng(1))
    assert counts.mean() == pytest.approx(mean, abs=5 * max(counts.std(), 1e-9) / np.sqrt(20000))
    assert counts.min() >= support[0]
    if support[1] is not None:
        assert counts.max() == support[1]


@pytest.mark.parametrize(
    ("spec", "median"),
    [
        ({"dist": "fixed", "value": 200.0}, 200.0),
        ({"dist": "uniform", "low": 100.0, "high": 300.0}, 200.0),
        ({"dist": "lognormal", "median": 500.0, "sigma": 0.3}, 500.0),
    ],
)
def test_photon_distributions(spec, median):
    photons = sample_photons(spec, (20000,), np.random.default_rng(2))
    assert np.median(photons) == pytest.approx(median, rel=0.02)
    assert np.all(photons > 0)


def test_loguniform_photons_have_a_uniform_log():
    photons = sample_photons(
        {"dist": "loguniform", "low": 100.0, "high": 2000.0}, (20000,), np.random.default_rng(3)
    )
    assert photons.min() >= 100.0 and photons.max() <= 2000.0
    lo, hi = np.log(100.0), np.log(2000.0)
    assert stats.kstest(np.log(photons), stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3
    # E[i0] = (high - low) / log(high / low); the median is the geometric mean
    assert photons.mean() == pytest.approx(1900.0 / np.log(20.0), rel=0.02)
    assert np.median(photons) == pytest.approx(np.sqrt(100.0 * 2000.0), rel=0.03)
    # the check has power: uniform photons on the same range fail it
    flat = np.random.default_rng(3).uniform(100.0, 2000.0, 20000)
    assert stats.kstest(np.log(flat), stats.uniform(lo, hi - lo).cdf).pvalue < 1e-3


@pytest.mark.parametrize(
    ("spec", "mean", "support"),
    [
        ({"dist": "fixed", "value": 3.0}, 3.0, (3.0, 3.0)),
        ({"dist": "uniform", "low": 0.0, "high": 20.0}, 10.0, (0.0, 20.0)),
        ({"dist": "loguniform", "low": 1.0, "high": 50.0}, 49.0 / np.log(50.0), (1.0, 50.0)),
    ],
)
def test_background_distributions(spec, mean, support):
    b = sample_background(spec, 20000, np.random.default_rng(4))
    assert b.shape == (20000,) and b.dtype == np.float64
    assert b.mean() == pytest.approx(mean, abs=5 * max(b.std(), 1e-9) / np.sqrt(20000))
    assert support[0] <= b.min() and b.max() <= support[1]
    with pytest.raises(ValueError, match="background distribution 'lognormal'"):
        sample_background(
            {"dist": "lognormal", "median": 1.0, "sigma": 1.0}, 3, np.random.default_rng()
        )


def _shard_digests(config: dict, root) -> dict[str, bytes]:
    """Every shard of every split of `config`, simulated and written under `root`: file bytes."""
    out = {}
    for name, spec in splits(config).items():
        for shard in range(spec.n_shards):
            npz, parquet = root / f"{name}_{shard}.npz", root / f"{name}_{shard}.parquet"
            simulate(shard=shard_config(config, name, shard), npz=npz, parquet=parquet)
            out[npz.name], out[parquet.name] = npz.read_bytes(), parquet.read_bytes()
    return out


def test_a_photon_override_changes_only_that_splits_shards(default_config, tmp_path):
    config = tiny(default_config)
    plain = _shard_digests(config, tmp_path / "plain")
    photons = {"dist": "loguniform", "low": 100.0, "high": 2000.0}
    config["simulation"]["splits"]["phi_train"]["scene"] = {"photons": photons}
    override = _shard_digests(config, tmp_path / "override")
    assert sorted(plain) == sorted(override)
    changed = sorted(name for name in plain if plain[name] != override[name])
    assert changed == [f"phi_train_{i}.{ext}" for i in range(3) for ext in ("npz", "parquet")]
    a = simulate_shard(shard_config(config, "phi_train", 1))
    assert a.metadata["config"]["scene"]["photons"] == photons
    assert "background" not in a.metadata
    i0 = a.emitters["photons"]
    assert i0.min() >= 100.0 and i0.max() <= 2000.0 and i0.nunique() == len(i0)
    # the photons are drawn after the positions: same emitters, same KDEs, other images
    config["simulation"]["splits"]["phi_train"].pop("scene")
    b = simulate_shard(shard_config(config, "phi_train", 1))
    np.testing.assert_array_equal(a.emitters[["u_px", "v_px"]], b.emitters[["u_px", "v_px"]])
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, b.x)


def test_per_image_background_is_drawn_recorded_and_seen_in_the_images(default_config):
    default_config["simulation"]["splits"]["val"]["scene"] = {
        "n_emitters": {"dist": "uniform", "low": 1, "high": 15},
        "background": {"dist": "uniform", "low": 0.0, "high": 20.0},
    }
    shard = simulate_shard(shard_config(default_config, "val", 0))
    b = np.asarray(shard.metadata["background"])
    assert b.shape == (shard.n_images,)
    assert stats.kstest(b, stats.uniform(0.0, 20.0).cdf).pvalue > 1e-3
    counts = np.bincount(shard.emitters["image"], minlength=shard.n_images)
    assert counts.min() == 1 and counts.max() == 15
    # independent of the simulation code: photoelectrons above the emitters' photons, per
    # pixel, estimate each image's background (std = sqrt(signal + 400 (b + w^2)) / 400)
    signal = np.bincount(shard.emitters["image"], shard.emitters["photons"], shard.n_images)
    excess = (shard.camera.photoelectrons(shard.x).sum(axis=(1, 2)) - signal) / 400.0
    std = np.sqrt(signal + 400.0 * (b + 5.0)) / 400.0
    assert np.all(np.abs(excess - b) < 5.0 * std)
    assert np.corrcoef(excess, b)[0, 1] > 0.95


def test_variable_counts_pad_with_zero_photons(default_config):
    default_config["scene"]["n_emitters"] = {"dist": "poisson", "mean": 4.0}
    shard = simulate_shard(shard_config(default_config, "val", 0))
    counts = np.bincount(shard.emitters["image"], minlength=shard.n_images)
    assert counts.min() < counts.max()
    scene = Scene.from_frame(shard.emitters, shard.n_images)
    np.testing.assert_array_equal(scene.counts, counts)
    assert np.all(scene.photons[~scene.mask] == 0)
    assert (counts == 0).sum() > 0  # e^-4 of 500 images are empty
    assert np.all(shard.y[counts == 0] == 0) and np.all(shard.y[counts > 0].max((1, 2)) == 1)


def test_shard_is_a_pure_function_of_its_config(default_config):
    cfg = shard_config(default_config, "test", 0)
    a, b = simulate_shard(cfg), simulate_shard(cfg)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.emitters.equals(b.emitters) and a.metadata == b.metadata
    other = simulate_shard(shard_config(default_config, "val", 0))
    assert not np.array_equal(a.x[:10], other.x[:10])


def test_shard_content_does_not_depend_on_the_split_size(default_config):
    first = simulate_shard(shard_config(default_config, "psi_train", 1))
    default_config["simulation"]["splits"]["psi_train"]["n_images"] = 5000
    again = simulate_shard(shard_config(default_config, "psi_train", 1))
    np.testing.assert_array_equal(first.x, again.x)


def test_kde_and_image_agree_with_the_emitter_table(default_config):
    shard = simulate_shard(shard_config(default_config, "val", 0))
    geo = default_config["geometry"]
    scene = Scene.from_frame(shard.emitters, shard.n_images)
    y = kde_images(scene.u, scene.v, scene.mask * 1.0, geo["lr_size"], geo["upsample"], 3.0, "max")
    np.testing.assert_allclose(shard.y, y, atol=1e-6)
    np.testing.assert_allclose(
        shard.emitters["u_nm"], shard.emitters["u_px"] * geo["pixel_size_nm"]
    )
    # each image holds 10 emitters of 200 photons: the photon budget above the offset is ~2000
    photons = shard.camera.photoelectrons(shard.x).sum(axis=(1, 2))
    assert photons.mean() == pytest.approx(
        2000.0, abs=5 * np.sqrt((2000 + 400 * 5) / shard.n_images)
    )


def test_isolated_sets_hold_one_emitter_at_the_set_photons(default_config):
    shard = simulate_shard(shard_config(default_config, "isolated_1000", 0))
    assert len(shard.emitters) == shard.n_images
    assert np.all(shard.emitters["photons"] == 1000.0)


def test_scmos_camera_maps_are_shared_by_all_shards(default_config):
    default_config["camera"]["preset"] = "scmos"
    a = simulate_shard(shard_config(default_config, "val", 0)).camera
    b = simulate_shard(shard_config(default_config, "test", 0)).camera
    np.testing.assert_array_equal(a.gain, b.gain)
    assert a.gain.std() > 0
    expected = seeding.rng(default_config["seed"], "camera").standard_normal((20, 20))
    np.testing.assert_allclose(np.log(a.gain / 1.0) / 0.05, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("normalize", ["max", "peak"])
def test_shard_kde_at_another_width_equals_the_shard_simulated_at_that_width(
    default_config, tmp_path, normalize
):
    """phi at a second KDE width trains on KDEs re-rendered from the emitter table: they must be
    the KDEs the simulator itself makes at that width (same seed, so same emitters)."""
    config = tiny(default_config)
    config["kde"]["normalize"] = normalize
    config["scene"]["n_emitters"] = {"dist": "uniform", "low": 0, "high": 4}  # empty images too
    shards = {}
    for sigma_y in (3.0, 1.5):
        config["kde"]["sigma_y"] = sigma_y
        npz, parquet = tmp_path / f"{sigma_y}.npz", tmp_path / f"{sigma_y}.parquet"
        simulate(shard=shard_config(config, "test", 0), npz=str(npz), parquet=str(parquet))
        shards[sigma_y] = read_shard(npz, parquet)
    wide, narrow = shards[3.0], shards[1.5]
    assert np.array_equal(wide.x, narrow.x)  # the KDE width changes nothing but y
    assert (wide.emitters.groupby("image").size() < 4).any()
    assert shard_kde(wide, 3.0) is wide.y
    assert np.array_equal(shard_kde(wide, 1.5), narrow.y)
    assert np.array_equal(shard_kde(narrow, 3.0), wide.y)
    with pytest.raises(ShardError, match=r"sigma_y = 1\.5 need its emitter table"):
        shard_kde(read_shard(tmp_path / "3.0.npz"), 1.5)

"""Config validation: both shipped configs pass; each kind of mistake names its key."""

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, SCHEMA_PATH, tiny
from diffloc.config import (
    ConfigError,
    command_line_values,
    config_hash,
    load_config,
    shard_config,
    splits,
    validate_config,
)


def test_shipped_configs_are_valid():
    default = load_config(REPO / "config" / "config.yaml", SCHEMA_PATH)
    paper = load_config(REPO / "config" / "paper.yaml", SCHEMA_PATH)
    # the paper's text says sigma_y 3.0; its numbers (recall 0.85) are the code's 1.5 (README)
    assert paper["psf"]["sigma_x"] == 0.92 and paper["kde"]["sigma_y"] == 1.5
    assert default["kde"]["sigma_y"] == 3.0
    assert paper["scene"]["disc_radius"] == 7.0
    assert paper["scene"]["n_emitters"] == {"dist": "fixed", "value": 10}
    assert paper["scene"]["photons"] == {"dist": "fixed", "value": 200}
    assert default["run"] != paper["run"]


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (
            lambda c: c["camera"].update(preset="ccd"),
            r"camera\.preset.*'ccd'.*\['scalar', 'scmos'\]",
        ),
        (lambda c: c["kde"].update(normalize="sum"), r"kde\.normalize.*\['max', 'peak'\]"),
        (lambda c: c["kde"].update(ceiling=0.5), r"kde\.ceiling.*>= 1"),
        (lambda c: c["psf"].update(sigma_x=-1.0), r"psf\.sigma_x.*> 0"),
        (lambda c: c["geometry"].update(upsample=2.5), r"geometry\.upsample.*integer"),
        (lambda c: c["kde"].pop("sigma_y"), r"missing config key.*sigma_y.*'kde'"),
        (lambda c: c["psf"].update(sigmax=1.0), r"unknown config key.*sigmax.*'psf'"),
        (lambda c: c.update(sed=1), r"unknown config key.*'sed'.*top level"),
        (lambda c: c["simulation"]["splits"].pop("val"), r"missing config key.*'val'"),
        (lambda c: c["simulation"]["splits"].update(Bad={"n_images": 1, "shard_size": 1}), r"Bad"),
        (
            lambda c: c["scene"].update(disc_radius=8.0),
            r"scene\.disc_radius \+ 3 \* psf\.sigma_x = 10\.76.*geometry\.lr_size",
        ),
        (
            lambda c: c["scene"].update(photons={"dist": "uniform", "low": 100}),
            r"scene\.photons.*'uniform'.*\['low', 'high'\].*missing \['high'\]",
        ),
        (
            lambda c: c["scene"].update(n_emitters={"dist": "fixed", "value": 3, "mean": 2}),
            r"scene\.n_emitters.*unexpected \['mean'\]",
        ),
        (
            lambda c: c["diffusion"]["sampler"].update(batch_size=10, k=50),
            r"diffusion\.sampler\.batch_size.*\(10\).*diffusion\.sampler\.k \(50\)",
        ),
        (lambda c: c["phi"]["train"].update(threads=0), r"phi\.train\.threads"),
        (lambda c: c["phi"]["train"].update(augment="rot90"), r"phi\.train\.augment.*'rot90'"),
        (
            lambda c: (
                c["camera"].update(preset="scmos"),
                c["diffusion"]["train"].update(augment="dihedral"),
            ),
            r"diffusion\.train\.augment.*camera\.preset 'scmos'",
        ),
        (
            lambda c: c["simulation"]["splits"]["test"].update(shard_size=10_000),
            r"simulation\.splits\.test\.shard_size",
        ),
        (
            lambda c: c["simulation"]["splits"].update(isolated_9={"n_images": 1, "shard_size": 1}),
            r"isolated_9.*reserved",
        ),
        (
            lambda c: c["scene"].update(photons={"dist": "uniform", "low": 300, "high": 100}),
            r"scene\.photons\.low' \(300\) exceeds scene\.photons\.high \(100\)",
        ),
        (
            lambda c: c["phi"]["targets"].update(photons=[200, 300]),
            r"phi\.targets\.photons.*\[300\]",
        ),
        (
            lambda c: c["posterior"].update(test_images=10**6),
            r"posterior\.test_images.*simulation\.splits\.test\.n_images",
        ),
        (
            lambda c: c["posterior"].update(isolated_images=10**6),
            r"posterior\.isolated_images.*simulation\.isolated\.n_images",
        ),
        (
            lambda c: c["posterior"].update(figure_images=10**3),
            r"posterior\.figure_images.*posterior\.test_images",
        ),
        (
            lambda c: c["phi"]["model"].update(head="deconv"),
            r"phi\.model\.head.*'deconv'.*\['resize_conv', 'pixel_shuffle'\]",
        ),
        (lambda c: c["analyze"].update(position="gauss"), r"analyze\.position.*'gauss'"),
        (lambda c: c["analyze"].update(chunk_frames=0), r"analyze\.chunk_frames"),
        (lambda c: c["analyze"].update(psi_frames="some"), r"analyze\.psi_frames"),
        (lambda c: c["analyze"].update(psi_frames=-2), r"analyze\.psi_frames"),
        (lambda c: c["analyze"].update(chunk_frames="250"), r"analyze\.chunk_frames.*integer"),
        (lambda c: c["analyze"].update(pixel_size_nm="abc"), r"analyze\.pixel_size_nm.*'abc'"),
        (lambda c: c["analyze"].update(psf_sigma_nm=-1.0), r"analyze\.psf_sigma_nm"),
        (lambda c: c["analyze"]["camera"].update(em_gain="high"), r"analyze\.camera\.em_gain"),
        (lambda c: c["analyze"].update(merge_px=-1.0), r"analyze\.merge_px"),
        (lambda c: c["analyze"].update(residual_rounds=-1), r"analyze\.residual_rounds"),
        (lambda c: c["analyze"].update(psi_maps="no"), r"analyze\.psi_maps"),
        (lambda c: c["analyze"].update(significance="glrt"), r"analyze\.significance"),
        (lambda c: c["analyze"].pop("psi_maps"), r"missing.*psi_maps.*'analyze'"),
        (lambda c: c["analyze"].update(levels=[0.9]), r"analyze\.levels.*must contain 0\.68"),
        (
            lambda c: c["analyze"]["position_calibration"].update(photon_edges=[800, 300]),
            r"analyze\.position_calibration\.photon_edges.*must increase",
        ),
        (
            lambda c: c["analyze"]["position_calibration"].update(floor_nm="auto"),
            r"analyze\.position_calibration\.floor_nm",
        ),
        (
            lambda c: c["analyze"]["position_calibration"].update(floor_nm=-1.0),
            r"analyze\.position_calibration\.floor_nm",
        ),
        (
            lambda c: c["analyze"]["position_calibration"].pop("floor_nm"),
            r"missing.*floor_nm",
        ),
        (
            lambda c: c["analyze"]["position_calibration"].update(background={"low": 9, "high": 1}),
            r"analyze\.position_calibration\.background\.low",
        ),
        (
            lambda c: c["analyze"]["position_calibration"].update(
                photons={"dist": "loguniform", "low": 0, "high": 10}
            ),
            r"analyze\.position_calibration\.photons\.low",
        ),
    ],
)
def test_bad_config_names_the_key(default_config, schema, edit, pattern):
    edit(default_config)
    with pytest.raises(ConfigError, match=pattern):
        validate_config(default_config, schema)


def _override(split: str, **scene):
    """Edit that gives dense split `split` the scene override `scene`."""
    return lambda c: c["simulation"]["splits"][split].update(scene=scene)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (
            _override("phi_train", photons={"dist": "loguniform", "low": 100}),
            r"'simulation\.splits\.phi_train\.scene\.photons'.*'loguniform'.*missing \['high'\]",
        ),
        (
            _override("phi_train", photons={"dist": "loguniform", "low": 2000, "high": 100}),
            r"'simulation\.splits\.phi_train\.scene\.photons\.low' \(2000\) exceeds "
            r"simulation\.splits\.phi_train\.scene\.photons\.high \(100\)",
        ),
        (
            _override("psi_train", photons={"dist": "gamma", "low": 1, "high": 2}),
            r"'simulation\.splits\.psi_train\.scene\.photons\.dist' is 'gamma'; allowed",
        ),
        (
            _override("phi_train", photons={"dist": "uniform", "low": -5, "high": 100}),
            r"'simulation\.splits\.phi_train\.scene\.photons\.low' must be > 0",
        ),
        (
            _override("phi_train", photon={"dist": "fixed", "value": 100}),
            r"unknown config key\(s\) \['photon'\] in 'simulation\.splits\.phi_train\.scene'",
        ),
        (
            _override("phi_train", n_emitters={"dist": "uniform", "low": 1}),
            r"'simulation\.splits\.phi_train\.scene\.n_emitters'.*missing \['high'\]",
        ),
        (
            _override("phi_train", n_emitters={"dist": "uniform", "low": 1.5, "high": 3}),
            r"'simulation\.splits\.phi_train\.scene\.n_emitters\.low' must be of type integer",
        ),
        (
            _override("test", disc_radius=9.0),
            r"simulation\.splits\.test\.scene\.disc_radius \+ 3 \* psf\.sigma_x = 11\.76",
        ),
        (
            _override("val", background={"dist": "loguniform", "low": 0, "high": 10}),
            r"'simulation\.splits\.val\.scene\.background\.low' must be > 0.*'loguniform'",
        ),
        (
            _override("val", background={"dist": "uniform", "low": 20, "high": 10}),
            r"'simulation\.splits\.val\.scene\.background\.low' \(20\) exceeds",
        ),
        (
            _override("val", background={"dist": "fixed", "value": -1.0}),
            r"'simulation\.splits\.val\.scene\.background\.value' must be >= 0",
        ),
        (
            _override("val", background={"dist": "lognormal", "value": 5}),
            r"'simulation\.splits\.val\.scene\.background\.dist' is 'lognormal'",
        ),
        (
            lambda c: c["scene"].update(background={"dist": "fixed", "value": 1.0}),
            r"unknown config key\(s\) \['background'\] in 'scene'",
        ),
        (
            lambda c: c["simulation"]["isolated"].update(scene={"disc_radius": 1.0}),
            r"unknown config key\(s\) \['scene'\] in 'simulation\.isolated'",
        ),
        (
            lambda c: c["simulation"]["splits"]["val"].update(scene=[1]),
            r"'simulation\.splits\.val\.scene' must be of type object",
        ),
    ],
)
def test_bad_scene_override_names_the_full_key(default_config, schema, edit, pattern):
    edit(default_config)
    with pytest.raises(ConfigError, match=pattern):
        validate_config(default_config, schema)


def test_scene_override_replaces_keys_of_one_split_only(default_config, schema):
    photons = {"dist": "loguniform", "low": 100, "high": 2000}
    counts = {"dist": "uniform", "low": 1, "high": 15}
    background = {"dist": "uniform", "low": 0.0, "high": 20.0}
    del default_config["simulation"]["splits"]["phi_train"]["scene"]  # the shipped override
    before = {
        name: config_hash(shard_config(default_config, name, 0)) for name in splits(default_config)
    }
    default_config["simulation"]["splits"]["phi_train"]["scene"] = {
        "photons": photons,
        "n_emitters": counts,
        "background": background,
    }
    validate_config(default_config, schema)
    out = splits(default_config)
    assert out["phi_train"].scene == {
        "disc_radius": default_config["scene"]["disc_radius"],
        "n_emitters": counts,
        "photons": photons,
        "background": background,
    }
    assert out["phi_train"].photons == photons and out["phi_train"].n_emitters == counts
    assert shard_config(default_config, "phi_train", 0)["scene"] == out["phi_train"].scene
    for name in ("psi_train", "val", "test", "isolated_100", "isolated_2000"):
        assert "background" not in out[name].scene
    assert out["test"].photons == default_config["scene"]["photons"]
    assert out["isolated_100"].photons == {"dist": "fixed", "value": 100}
    after = {name: config_hash(shard_config(default_config, name, 0)) for name in out}
    assert [name for name in out if after[name] != before[name]] == ["phi_train"]
    # an override equal to the top-level scene is no change at all: same shards
    default_config["simulation"]["splits"]["phi_train"]["scene"] = {
        "photons": {"dist": "fixed", "value": 200}
    }
    assert config_hash(shard_config(default_config, "phi_train", 0)) == before["phi_train"]


def test_command_line_strings_are_read_back_as_the_schema_types(default_config, schema):
    """`--config section='{key: value}'` passes every nested value as a string: numbers,
    booleans and nulls are read back where the schema wants them (list items and a oneOf's
    null branch included); a key that accepts strings keeps its string; a string that is no
    value of the key's type still fails validation naming the key."""
    c = default_config
    c["diffusion"]["train_crop"] = "40"
    c["diffusion"]["train"]["lr"] = "2e-4"
    c["mcmc"]["settings"]["default"]["adapt"] = "null"
    c["localize"]["sigma_y_axis"] = ["1.5", "3.0"]
    c["analyze"]["psi_maps"] = "false"
    c["analyze"]["movie"] = "cells.tif"
    c["analyze"].update(chunk_frames="250", pixel_size_nm="108.3", psf_sigma_nm="null")
    c["analyze"]["psi_frames"] = "12"
    c["analyze"]["camera"].update(em_gain="null", gain="2.5", offset="dark.tif")
    c["run"] = "7"
    changed = command_line_values(c, schema)
    assert sorted(changed) == [
        "analyze.camera.em_gain",
        "analyze.chunk_frames",
        "analyze.pixel_size_nm",
        "analyze.psf_sigma_nm",
        "analyze.psi_frames",
        "analyze.psi_maps",
        "diffusion.train.lr",
        "diffusion.train_crop",
        "localize.sigma_y_axis.0",
        "localize.sigma_y_axis.1",
        "mcmc.settings.default.adapt",
    ]
    assert c["diffusion"]["train_crop"] == 40 and isinstance(c["diffusion"]["train_crop"], int)
    assert c["diffusion"]["train"]["lr"] == 2e-4
    assert c["mcmc"]["settings"]["default"]["adapt"] is None
    assert c["localize"]["sigma_y_axis"] == [1.5, 3.0] and c["analyze"]["psi_maps"] is False
    assert c["analyze"]["movie"] == "cells.tif" and c["run"] == "7"
    assert c["analyze"]["chunk_frames"] == 250 and c["analyze"]["pixel_size_nm"] == 108.3
    assert c["analyze"]["psf_sigma_nm"] is None and c["analyze"]["camera"]["em_gain"] is None
    assert c["analyze"]["psi_frames"] == 12
    validate_config(c, schema)
    c["analyze"]["psi_frames"] = "all"
    assert command_line_values(c, schema) == [] and c["analyze"]["psi_frames"] == "all"
    # a camera value may be a map file, so the schema takes strings there: read later
    assert (
        c["analyze"]["camera"]["gain"] == "2.5" and c["analyze"]["camera"]["offset"] == "dark.tif"
    )
    validate_config(c, schema)
    c["diffusion"]["train_crop"] = "forty"
    c["geometry"]["upsample"] = "2.5"
    c["psf"]["sigma_x"] = "nan"
    assert command_line_values(c, schema) == [] and c["geometry"]["upsample"] == "2.5"
    assert c["psf"]["sigma_x"] == "nan"
    with pytest.raises(ConfigError, match=r"'diffusion\.train_crop' .* integer, got 'forty'"):
        validate_config(c, schema)


def test_nested_command_line_overrides_pass_the_dry_run(tmp_path, default_config):
    """`snakemake -n --config section='{...}'` with a number and a null nested in mappings runs;
    a nested value of the wrong type stops it with one message naming the key."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(tiny(default_config)))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    cmd += ["--configfile", str(cfg), "-n", "--cores", "1", "--config"]
    good = ["phi={train: {steps: 3}}", "mcmc={settings: {default: {adapt: null}}}"]
    proc = subprocess.run(cmd + good, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = ["phi={train: {steps: three}}"]
    proc = subprocess.run(cmd + bad, capture_output=True, text=True, timeout=300, cwd=REPO)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key 'phi.train.steps' must be of type integer, got 'three'" in output
    assert not (tmp_path / "results").exists()


def test_unreadable_config_file_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(bad, SCHEMA_PATH)


def test_splits_include_isolated_sets_and_partial_last_shard(default_config):
    default_config["simulation"]["splits"]["val"] = {"n_images": 1050, "shard_size": 500}
    out = splits(default_config)
    assert {"phi_train", "psi_train", "val", "test"} <= set(out)
    for photons in default_config["simulation"]["isolated"]["photons"]:
        spec = out[f"isolated_{photons}"]
        assert spec.n_emitters == {"dist": "fixed", "value": 1}
        assert spec.photons == {"dist": "fixed", "value": photons}
    val = out["val"]
    assert val.shard_ids() == ["0000", "0001", "0002"]
    assert [val.shard_len(i) for i in range(3)] == [500, 500, 50]
    with pytest.raises(ConfigError, match=r"shards 0\.\.2"):
        val.shard_len(3)


def test_shard_config_depends_only_on_what_the_shard_uses(default_config):
    del default_config["simulation"]["splits"]["psi_train"]["scene"]  # the shipped override
    before = config_hash(shard_config(default_config, "psi_train", 1))
    iso_before = config_hash(shard_config(default_config, "isolated_200", 0))
    default_config["simulation"]["splits"]["psi_train"]["n_images"] += 5000  # more shards
    default_config["simulation"]["splits"]["phi_train"]["n_images"] += 1000
    default_config["scene"]["n_emitters"] = {"dist": "poisson", "mean": 8.0}
    assert config_hash(shard_config(default_config, "isolated_200", 0)) == iso_before
    assert config_hash(shard_config(default_config, "psi_train", 1)) != before
    default_config["scene"]["n_emitters"] = {"dist": "fixed", "value": 10}
    assert config_hash(shard_config(default_config, "psi_train", 1)) == before
    default_config["camera"]["readout_var"] = 6.0
    assert config_hash(shard_config(default_config, "psi_train", 1)) != before
    with pytest.raises(ConfigError, match="unknown split 'nope'"):
        shard_config(default_config, "nope", 0)


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_the_networks_kde_ceiling_does_not_remake_data_or_mcmc(default_config):
    """kde.ceiling only bounds phi's output and psi's data range: shards and MCMC chunks keep
    their configs (and hashes) when it changes, but not when the KDE's normalisation does."""
    from diffloc.config import shard_config
    from diffloc.mcmc.plan import chunk_config

    def keyed(cfg):
        return shard_config(cfg, "test", 0), chunk_config(cfg, "default", "isolated_200", 0)

    base = keyed(default_config)
    default_config["kde"]["ceiling"] = 3.0
    assert keyed(default_config) == base
    default_config["kde"]["normalize"] = "peak"
    assert keyed(default_config)[0] != base[0] and keyed(default_config)[1] != base[1]

"""The `localize` config section: the detector choice and its keys, validated with the key named."""

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, SCHEMA_PATH, tiny
from diffloc.config import ConfigError, load_config, validate_config
from diffloc.localize.detection import DETECTORS, detector_settings


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "gpu.yaml"])
def test_shipped_configs_keep_the_papers_log_detector(name):
    config = load_config(REPO / "config" / name, SCHEMA_PATH)
    loc = config["localize"]
    assert (loc["detector"], loc["peaks_threshold"], loc["min_distance"]) == ("log", 0.2, 1)
    assert detector_settings(config).detector == "log"
    # the localisation study covers the authors' code's width and the paper text's
    assert loc["sigma_y_axis"] == [1.5, 3.0]


def test_detector_scales_are_for_the_width_asked():
    config = load_config(REPO / "config" / "config.yaml", SCHEMA_PATH)
    assert detector_settings(config, 1.5).min_sigma == pytest.approx(2.0)
    assert detector_settings(config).min_sigma == pytest.approx(2.0 * 3.0 / 1.5)


def test_schema_offers_exactly_the_implemented_detectors(schema):
    assert schema["properties"]["localize"]["properties"]["detector"]["enum"] == list(DETECTORS)


@pytest.mark.parametrize("detector", DETECTORS)
def test_every_detector_validates(default_config, schema, detector):
    default_config["localize"]["detector"] = detector
    validate_config(default_config, schema)
    assert detector_settings(default_config).detector == detector


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (
            lambda c: c["localize"].update(detector="nonsense"),
            r"config key 'localize\.detector' is 'nonsense'; allowed values: \['log', 'peaks'\]",
        ),
        (lambda c: c["localize"].pop("detector"), r"missing config key.*'detector'.*'localize'"),
        (
            lambda c: c["localize"].update(peaks_threshold=-0.1),
            r"'localize\.peaks_threshold' must be >= 0",
        ),
        (lambda c: c["localize"].update(min_distance=0), r"'localize\.min_distance' must be >= 1"),
        (
            lambda c: c["localize"].update(min_distance=1.5),
            r"'localize\.min_distance' must be of type integer",
        ),
        (lambda c: c["localize"].update(min_distnce=2), r"unknown config key.*'min_distnce'"),
        (
            lambda c: c["localize"].update(sigma_y_axis=[0, 3.0]),
            r"config key 'localize\.sigma_y_axis\.0' must be > 0, got 0",
        ),
        (lambda c: c["kde"].update(sigma_y=-1.0), r"config key 'kde\.sigma_y' must be > 0"),
        (
            lambda c: c["localize"].update(sigma_y_axis=[1.5]),
            r"'kde\.sigma_y' \(3\.0\) must be one of localize\.sigma_y_axis \(\[1\.5\]\)",
        ),
        (
            lambda c: c["localize"].update(sigma_y_axis=[3.0, 3]),
            r"'localize\.sigma_y_axis': \[3\.0, 3\] has non-unique elements",
        ),
        (
            lambda c: c["phi"]["targets"].update(recall_sigma_y=2.0),
            r"'phi\.targets\.recall_sigma_y' \(2\.0\) must be one of localize\.sigma_y_axis",
        ),
        (
            lambda c: c["phi"]["targets"].update(recall_photons=[150]),
            r"'phi\.targets\.recall_photons' names photon counts \[150\]",
        ),
    ],
)
def test_bad_detector_config_names_the_key(default_config, schema, edit, pattern):
    edit(default_config)
    with pytest.raises(ConfigError, match=pattern):
        validate_config(default_config, schema)


@pytest.mark.parametrize(
    ("key", "edit", "message"),
    [
        (
            "localize.detector",
            lambda c: c["localize"].update(detector="nonsense"),
            "config key 'localize.detector' is 'nonsense'; allowed values",
        ),
        (
            "localize.sigma_y_axis",
            lambda c: c["localize"].update(sigma_y_axis=[-1.5, 3.0]),
            "config key 'localize.sigma_y_axis.0' must be > 0, got -1.5",
        ),
    ],
)
def test_bad_detector_or_width_fails_the_dry_run_with_one_message_naming_the_key(
    tmp_path, default_config, key, edit, message
):
    config = tiny(default_config)
    edit(config)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    cmd += ["--configfile", str(cfg), "-n", "--cores", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert output.count(key) == 1, output
    assert message in output
    assert not (tmp_path / "results").exists()

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
    ],
)
def test_bad_detector_config_names_the_key(default_config, schema, edit, pattern):
    edit(default_config)
    with pytest.raises(ConfigError, match=pattern):
        validate_config(default_config, schema)


def test_unknown_detector_fails_the_dry_run_with_one_message_naming_the_key(
    tmp_path, default_config
):
    config = tiny(default_config)
    config["localize"]["detector"] = "nonsense"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    cmd += ["--configfile", str(cfg), "-n", "--cores", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert output.count("localize.detector") == 1, output
    assert "config key 'localize.detector' is 'nonsense'; allowed values" in output
    assert not (tmp_path / "results").exists()

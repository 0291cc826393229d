"""The `calibration` config section: schema and cross-field checks name the offending key."""

import pytest

from conftest import tiny
from diffloc.config import ConfigError, validate_config


def test_shipped_and_tiny_configs_keep_the_calibration_consistent(default_config, schema):
    validate_config(tiny(default_config), schema)
    cal = default_config["calibration"]
    assert cal["ablation"]["samplers"] == ["ancestral", "ancestral_posterior", "paper_a1", "ddim"]
    assert cal["ablation"]["steps"] == [10, 20, 50] and cal["ablation"]["k"] == [
        10,
        default_config["diffusion"]["sampler"]["k"],
    ]


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda c: c["calibration"].pop("levels"), r"missing config key.*'levels'.*calibration"),
        (lambda c: c["calibration"].update(floor=0.1), r"unknown config key.*'floor'"),
        (
            lambda c: c["calibration"]["ablation"].update(samplers=["euler"]),
            r"calibration\.ablation\.samplers\.0.*'euler'",
        ),
        (lambda c: c["calibration"].update(support_floor=0), r"support_floor.*> 0"),
        (
            lambda c: c["calibration"].update(levels=[0.5, 0.99]),
            r"calibration\.levels.*\[0\.005, 0\.995\]",
        ),
        (
            lambda c: c["diffusion"]["summary"].update(quantiles=[0.05, 0.25, 0.75, 0.95]),
            r"calibration\.levels.*median 0\.5",
        ),
        (
            lambda c: c["calibration"].update(recalibration_level=0.68),
            r"calibration\.recalibration_level.*one of calibration\.levels",
        ),
        (
            lambda c: c["calibration"]["targets"].update(coverage_level=0.7),
            r"calibration\.targets\.coverage_level",
        ),
        (
            lambda c: c["calibration"]["targets"].update(std_ratio=[1.25, 0.8]),
            r"std_ratio.*\[low, high\]",
        ),
        (
            lambda c: c["calibration"]["localization"].update(samples=500),
            r"calibration\.localization\.samples.*raw_samples",
        ),
        (
            lambda c: c["diffusion"]["summary"].update(raw_samples=1),
            r"raw_samples.*>= 2",
        ),
        (lambda c: c["calibration"].update(val_images=10**6), r"calibration\.val_images"),
        (
            lambda c: c["calibration"]["ablation"].update(steps=[10, 5000]),
            r"calibration\.ablation\.steps.*schedule\.T",
        ),
        (
            lambda c: c["calibration"]["ablation"].update(batch_size=20),
            r"calibration\.ablation\.batch_size.*max\(calibration\.ablation\.k\)",
        ),
        (  # K = 50: (1 - 0.9)(K + 1)/2 = 2.55 is no order statistic, so no exact 90 % interval
            lambda c: c["diffusion"]["sampler"].update(k=50),
            r"calibration\.levels.*not exact order-statistic intervals.*k = 50",
        ),
        (
            lambda c: c["calibration"]["ablation"].update(test_images=10**6),
            r"calibration\.ablation\.test_images",
        ),
        (
            lambda c: c["calibration"]["ablation"].update(photons=300),
            r"calibration\.ablation\.photons.*300",
        ),
        (
            lambda c: c["calibration"]["ablation"].update(isolated_images=10**4),
            r"calibration\.ablation\.isolated_images.*mcmc\.n_images",
        ),
        (
            lambda c: c["mcmc"]["settings"]["default"].update(beta=0.5),
            r"no setting with beta = 1",
        ),
    ],
)
def test_bad_calibration_config_names_the_key(default_config, schema, edit, pattern):
    edit(default_config)
    with pytest.raises(ConfigError, match=pattern):
        validate_config(default_config, schema)

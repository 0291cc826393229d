"""Shared fixtures: the repository's configs and schema, and a tiny config for fast workflow runs."""

import copy
import importlib.util
from pathlib import Path

import pytest
import yaml

from diffloc.config import load_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="session")
def benchmark_script():
    """Loader of a script under benchmarks/ as a module (they are scripts, not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


@pytest.fixture(scope="session")
def _default_config() -> dict:
    return load_config(REPO / "config" / "config.yaml", SCHEMA_PATH)


@pytest.fixture
def default_config(_default_config) -> dict:
    """A fresh, mutable copy of config/config.yaml."""
    return copy.deepcopy(_default_config)


def tiny(config: dict, run: str = "tiny") -> dict:
    """Shrink a config to a few images per split (for workflow tests)."""
    config = copy.deepcopy(config)
    config["run"] = run
    config["simulation"] = {
        "splits": {
            "phi_train": {"n_images": 24, "shard_size": 10},
            "psi_train": {"n_images": 10, "shard_size": 10},
            "val": {"n_images": 6, "shard_size": 6},
            "test": {"n_images": 6, "shard_size": 6},
        },
        "isolated": {"photons": [200, 1000], "n_images": 5, "shard_size": 5},
    }
    mcmc = config["mcmc"]
    mcmc.update(n_images=2, chunk_size=2, thin=5, figure={"photons": 200, "image": 0})
    for setting in mcmc["settings"].values():
        setting.update(iterations=300, burn_in=100)
    phi = config["phi"]
    phi["model"].update(width=4, hr_width=2)
    phi["train"].update(steps=4, batch_size=4, warmup_steps=1, val_every=2, checkpoint_every=2)
    phi["infer_batch_size"] = 4
    phi["targets"].update(photons=[200, 1000], recall_photons=[200])
    diffusion = config["diffusion"]
    diffusion["unet"].update(
        channels=8, multipliers=[1, 2], attention_resolutions=[20], norm_groups=4
    )
    diffusion["train"].update(
        steps=4, batch_size=4, warmup_steps=1, val_every=2, checkpoint_every=2
    )
    diffusion["sampler"].update(steps=3, k=19, batch_size=40)  # K + 1 = 20: exact 50/80/90 %
    diffusion["summary"]["raw_samples"] = 2
    config["posterior"].update(test_images=6, isolated_images=3, chunk_size=3, figure_images=2)
    calibration = config["calibration"]
    calibration.update(val_images=2, bootstrap=50, levels=[0.5, 0.8, 0.9])
    calibration["localization"]["samples"] = 2
    calibration["ablation"].update(
        samplers=["ancestral", "ddim"],
        steps=[2, 3],
        k=[2, 4],
        test_images=1,
        isolated_images=1,
        photons=200,
        batch_size=8,
    )
    return config


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread: tiny tensors run faster without thread-pool stalls."""
    from diffloc.runtime import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture
def tiny_config(default_config) -> dict:
    return tiny(default_config)


def load_workflow(configfile: Path | None = None):
    """The repository's parsed Snakemake workflow (rules with their logs, resources, envs).

    Parsed through Snakemake's API in the repository (nothing runs); `configfile` overrides the
    default config. The parsed workflow is only reachable through the API's `_workflow`.
    """
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    configs = [configfile] if configfile is not None else []
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=configs),
            snakefile=REPO / "Snakefile",
            workdir=REPO,
        )
        return workflow_api._workflow

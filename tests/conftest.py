"""Shared fixtures: the repository's configs and schema, and a tiny config for fast workflow runs."""

import copy
from pathlib import Path

import pytest
import yaml

from diffloc.config import load_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"


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
    return config


@pytest.fixture
def tiny_config(default_config) -> dict:
    return tiny(default_config)

"""Plan of the MCMC stage from the config alone (no torch): splits, chunks, config slices.

A chunk is images [chunk * chunk_size, ...) of the first `mcmc.n_images` images of a split
`isolated_<photons>`, sampled with one entry of `mcmc.settings` (the `{setting}` wildcard).
"""

import math

from diffloc.config import (
    SHARD_DIGITS,
    ConfigError,
    config_hash,
    isolated_split_name,
    kde_definition,
    shard_config,
)

CHUNK_DIGITS = 4


def mcmc_splits(config: dict) -> list[str]:
    """Names of the isolated-emitter splits the MCMC samples (one per photon count)."""
    return [isolated_split_name(p) for p in config["simulation"]["isolated"]["photons"]]


def chunk_ids(config: dict) -> list[str]:
    """Zero-padded chunk identifiers, the `{chunk}` wildcard."""
    mc = config["mcmc"]
    return [f"{i:0{CHUNK_DIGITS}d}" for i in range(math.ceil(mc["n_images"] / mc["chunk_size"]))]


def chunk_images(config: dict, chunk: int) -> range:
    """Indices (within the split) of the images of chunk `chunk`."""
    mc = config["mcmc"]
    if not 0 <= chunk < len(chunk_ids(config)):
        raise ConfigError(f"mcmc has chunks 0..{len(chunk_ids(config)) - 1}, not {chunk}")
    first = chunk * mc["chunk_size"]
    return range(first, min(first + mc["chunk_size"], mc["n_images"]))


def chunk_shards(config: dict, chunk: int) -> list[str]:
    """Identifiers (the `{shard}` wildcard) of the shards that hold the images of `chunk`."""
    size = config["simulation"]["isolated"]["shard_size"]
    images = chunk_images(config, chunk)
    return [f"{s:0{SHARD_DIGITS}d}" for s in range(images[0] // size, images[-1] // size + 1)]


def chunk_config(config: dict, setting: str, split: str, chunk: int) -> dict:
    """Everything one chunk's outputs depend on (its hash keys them), including its shards' hashes."""
    mc = config["mcmc"]
    if setting not in mc["settings"]:
        raise ConfigError(f"unknown mcmc setting {setting!r}; configured: {sorted(mc['settings'])}")
    if split not in mcmc_splits(config):
        raise ConfigError(f"unknown MCMC split {split!r}; configured: {mcmc_splits(config)}")
    images = chunk_images(config, chunk)
    shards = {
        s: config_hash(shard_config(config, split, int(s))) for s in chunk_shards(config, chunk)
    }
    return {
        **{k: config[k] for k in ("seed", "geometry", "psf")},
        "kde": kde_definition(config),
        "mcmc": {k: v for k, v in mc.items() if k not in ("settings", "n_images", "figure")},
        "setting_name": setting,
        "setting": mc["settings"][setting],
        "set": split,
        "chunk": chunk,
        "images": [images.start, images.stop],
        "shard_size": config["simulation"]["isolated"]["shard_size"],
        "shards": shards,
    }


def figure_spec(config: dict) -> dict:
    """Where Figure 2's emitter lives: its split (key `set`), image (index in the split), chunk,
    shard, its index in the shard (`local`) and the shard's config hash."""
    fig = config["mcmc"]["figure"]
    size = config["simulation"]["isolated"]["shard_size"]
    split, image = isolated_split_name(fig["photons"]), fig["image"]
    return {
        "set": split,
        "image": image,
        "chunk": f"{image // config['mcmc']['chunk_size']:0{CHUNK_DIGITS}d}",
        "shard": f"{image // size:0{SHARD_DIGITS}d}",
        "local": image % size,
        "shard_hash": config_hash(shard_config(config, split, image // size)),
    }


def chunk_mem_mb(config: dict, setting: str) -> int:
    """Memory of one chunk job (MB): all draws after burn-in (draws, nll and copies, 8 bytes
    each) and the push-forward's two factor batches, beside ~800 MB of interpreter and libraries."""
    mc = config["mcmc"]
    iterations = mc["settings"][setting]["iterations"]
    draws = mc["chunk_size"] * mc["chains"] * iterations * 8 * 4 * 3
    side = config["geometry"]["lr_size"] * config["geometry"]["upsample"]
    factors = 2 * 8 * mc["chunk_size"] * mc["pushforward_batch"] * side * 2
    return 800 + (draws + factors) // 10**6


def chunk_runtime(config: dict, setting: str) -> int:
    """Wall time of one chunk job (minutes), assuming >= 100,000 chain-iterations per second."""
    mc = config["mcmc"]
    work = mc["chunk_size"] * mc["chains"] * mc["settings"][setting]["iterations"]
    return 5 + work // (100_000 * 60)

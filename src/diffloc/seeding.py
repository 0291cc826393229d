"""Random streams keyed by name: every draw descends from the config seed via SeedSequence."""

import hashlib

import numpy as np


def _key_word(part: str | int) -> int:
    """Map one key part to a stable non-negative integer (strings via SHA-256, never `hash`)."""
    if isinstance(part, bool) or not isinstance(part, int | str):
        raise TypeError(f"seed key parts must be str or int, got {part!r}")
    if isinstance(part, int):
        if part < 0:
            raise ValueError(f"seed key parts must be non-negative, got {part}")
        return part
    return int.from_bytes(hashlib.sha256(part.encode()).digest()[:8], "little")


def seed_sequence(seed: int, *key: str | int) -> np.random.SeedSequence:
    """SeedSequence for the stream named `key` under the study seed (independent of call order)."""
    return np.random.SeedSequence(entropy=seed, spawn_key=tuple(_key_word(k) for k in key))


def rng(seed: int, *key: str | int) -> np.random.Generator:
    """numpy Generator (PCG64) for the stream named `key` under the study seed."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *key)))


def torch_seed(seed: int, *key: str | int) -> int:
    """63-bit integer seed for a torch.Generator, derived from the stream named `key`."""
    return int(seed_sequence(seed, *key).generate_state(1, np.uint64)[0] >> np.uint64(1))

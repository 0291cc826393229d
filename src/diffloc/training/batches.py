"""Deterministic, resumable mini-batches streamed from shards (never the whole dataset in memory).

Batch `b` is a pure function of (seed, key, b): the stream runs through epochs; each epoch
visits the shards in a seeded order and each shard's images in a seeded order. A batch may
straddle two shards; at most `cache` shards are held in memory.
"""

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from diffloc import seeding

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ShardSource:
    """A shard known by its size; `load()` returns its arrays, each [n_images, ...]."""

    n_images: int
    load: Callable[[], Arrays]


class BatchStream:
    """Endless, shuffled mini-batches over shards; `batch(b)` is reproducible for every b."""

    def __init__(
        self,
        sources: list[ShardSource],
        batch_size: int,
        seed: int,
        key: tuple[str | int, ...],
        cache: int = 2,
    ):
        if not sources or batch_size < 1:
            raise ValueError("a batch stream needs at least one shard and batch_size >= 1")
        self.sources, self.batch_size, self.seed, self.key = sources, batch_size, seed, key
        self.sizes = np.array([s.n_images for s in sources])
        self.total = int(self.sizes.sum())
        self._cache: OrderedDict[int, Arrays] = OrderedDict()
        self._cache_size = cache

    def _epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        order = seeding.rng(self.seed, *self.key, "epoch", epoch).permutation(len(self.sources))
        return order, np.concatenate([[0], np.cumsum(self.sizes[order])])

    def _image_order(self, epoch: int, shard: int) -> np.ndarray:
        return seeding.rng(self.seed, *self.key, "epoch", epoch, "shard", shard).permutation(
            int(self.sizes[shard])
        )

    def _arrays(self, shard: int) -> Arrays:
        if shard in self._cache:
            self._cache.move_to_end(shard)
        else:
            self._cache[shard] = self.sources[shard].load()
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return self._cache[shard]

    def batch(self, b: int) -> Arrays:
        """Mini-batch number b (0-based): a dict of arrays [batch_size, ...]."""
        positions = b * self.batch_size + np.arange(self.batch_size)
        epochs, offsets = np.divmod(positions, self.total)
        parts: list[Arrays] = []
        for epoch in np.unique(epochs):
            order, starts = self._epoch_order(int(epoch))
            in_epoch = offsets[epochs == epoch]
            slot = np.searchsorted(starts, in_epoch, side="right") - 1
            for k in np.unique(slot):
                shard = int(order[k])
                local = self._image_order(int(epoch), shard)[in_epoch[slot == k] - starts[k]]
                arrays = self._arrays(shard)
                parts.append({name: a[local] for name, a in arrays.items()})
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def sequential_batches(sources: list[ShardSource], batch_size: int) -> Iterator[Arrays]:
    """Every image once, in shard order, in batches (the last may be short): for validation."""
    for source in sources:
        arrays = source.load()
        for start in range(0, source.n_images, batch_size):
            yield {name: a[start : start + batch_size] for name, a in arrays.items()}

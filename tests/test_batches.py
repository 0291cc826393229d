"""Mini-batch streams: pure in the batch index, full epochs, bounded memory."""

import numpy as np
import pytest

from diffloc.training.batches import BatchStream, ShardSource, sequential_batches


def _sources(sizes, loads=None):
    out, start = [], 0
    for n in sizes:
        ids = np.arange(start, start + n)

        def load(ids=ids):
            if loads is not None:
                loads.append(int(ids[0]))
            return {"id": ids.copy(), "twice": 2 * ids}

        out.append(ShardSource(n, load))
        start += n
    return out


def test_each_epoch_visits_every_image_once():
    sizes = [7, 5, 9]
    stream = BatchStream(_sources(sizes), 3, seed=1, key=("t",))
    seen = np.concatenate([stream.batch(b)["id"] for b in range(7 * 3)])  # 3 epochs of 21
    for epoch in range(3):
        assert sorted(seen[21 * epoch : 21 * (epoch + 1)]) == list(range(21))
    assert not np.array_equal(seen[:21], seen[21:42])  # reshuffled each epoch


def test_batch_is_a_pure_function_of_its_index():
    a = BatchStream(_sources([7, 5, 9]), 4, seed=2, key=("t",))
    b = BatchStream(_sources([7, 5, 9]), 4, seed=2, key=("t",))
    forward = [a.batch(i)["id"] for i in range(12)]
    backward = [b.batch(i)["id"] for i in reversed(range(12))][::-1]
    for x, y in zip(forward, backward, strict=True):
        np.testing.assert_array_equal(x, y)
    other = BatchStream(_sources([7, 5, 9]), 4, seed=3, key=("t",))
    assert any(not np.array_equal(other.batch(i)["id"], forward[i]) for i in range(12))


def test_arrays_stay_aligned_and_batches_straddle_shards():
    stream = BatchStream(_sources([3, 3]), 5, seed=0, key=("t",))
    for b in range(6):
        batch = stream.batch(b)
        assert batch["id"].shape == (5,)
        np.testing.assert_array_equal(batch["twice"], 2 * batch["id"])


def test_at_most_cache_shards_are_held():
    loads = []
    stream = BatchStream(_sources([4] * 6, loads), 4, seed=0, key=("t",), cache=2)
    for b in range(12):
        stream.batch(b)
    assert len(stream._cache) <= 2
    assert len(loads) >= 6  # every shard was loaded, none kept beyond the cache


def test_sequential_batches_cover_everything_in_order():
    ids = np.concatenate([b["id"] for b in sequential_batches(_sources([5, 4]), 3)])
    np.testing.assert_array_equal(ids, np.arange(9))


def test_empty_streams_are_rejected():
    with pytest.raises(ValueError, match="at least one shard"):
        BatchStream([], 4, 0, ("t",))

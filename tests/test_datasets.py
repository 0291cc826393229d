"""Training pairs and image ranges read across shards, with clear errors for mismatched files."""

import numpy as np
import pytest

from diffloc.config import shard_config
from diffloc.data.condition import Condition
from diffloc.data.files import ShardError, save_npz
from diffloc.data.shards import image_range, read_yhat, write_shard
from diffloc.simulate.scenes import simulate_shard
from diffloc.training.pairs import psi_sources


@pytest.fixture
def shards(tiny_config, tmp_path):
    """The three phi_train shards of the tiny config (10, 10, 4 images) and a yhat for each."""
    out = []
    for shard in range(3):
        data = simulate_shard(shard_config(tiny_config, "phi_train", shard))
        npz, yhat = tmp_path / f"{shard}.npz", tmp_path / f"yhat{shard}.npz"
        write_shard(data, npz, tmp_path / f"{shard}.parquet")
        meta = {"n_images": data.n_images, "data_config_hash": data.metadata["config_hash"]}
        save_npz(yhat, {"yhat": data.y * 0.5}, meta)
        out.append((npz, yhat, data))
    return out


def test_image_range_spans_shards_in_order(shards):
    paths = [yhat for _, yhat, _ in shards]
    everything = np.concatenate([d.y * 0.5 for *_, d in shards])
    got = image_range(paths, 7, 22, lambda p: read_yhat(p)[0])
    np.testing.assert_array_equal(got, everything[7:22])
    np.testing.assert_array_equal(
        image_range(paths, 20, 24, lambda p: read_yhat(p)[0]), everything[20:]
    )


@pytest.mark.parametrize(("start", "stop"), [(20, 25), (5, 5), (-1, 3)])
def test_image_range_outside_the_split_is_an_error(shards, start, stop):
    with pytest.raises(ValueError, match=r"are not all in the 24 images"):
        image_range([yhat for _, yhat, _ in shards], start, stop, lambda p: read_yhat(p)[0])


def test_psi_pairs_from_other_data_are_refused(shards, tiny_config):
    (npz0, yhat0, _), (npz1, _, _) = shards[0], shards[1]
    condition = Condition.from_config(tiny_config)
    pair = psi_sources([yhat0], [npz0], condition)[0].load()
    assert set(pair) == {"cond", "y"} and pair["cond"][:, 0].shape == pair["y"].shape
    with pytest.raises(
        ShardError, match=r"yhat0\.npz: made from data with config hash .* rerun infer_phi"
    ):
        psi_sources([yhat0], [npz1], condition)[0].load()
    with pytest.raises(ValueError, match="1 yhat files for 2 data shards"):
        psi_sources([yhat0], [npz0, npz1], condition)

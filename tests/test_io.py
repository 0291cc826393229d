"""Shard files: round trip, byte reproducibility, and a clear error for every kind of bad file."""

import json
import os
import zipfile

import numpy as np
import pandas as pd
import pytest

from diffloc.config import shard_config
from diffloc.data.files import ShardError, load_npz, save_csv, save_npz
from diffloc.data.shards import read_shard, write_shard
from diffloc.simulate.scenes import simulate_shard


@pytest.fixture
def shard(default_config):
    default_config["simulation"]["isolated"] = {"photons": [200], "n_images": 7, "shard_size": 7}
    return simulate_shard(shard_config(default_config, "isolated_200", 0))


@pytest.fixture
def written(shard, tmp_path):
    npz, parquet = tmp_path / "0000.npz", tmp_path / "0000.parquet"
    write_shard(shard, npz, parquet)
    return npz, parquet


def test_round_trip(shard, written):
    back = read_shard(*written, expected_hash=shard.metadata["config_hash"])
    np.testing.assert_array_equal(back.x, shard.x)
    np.testing.assert_array_equal(back.y, shard.y)
    np.testing.assert_array_equal(back.camera.readout_var, shard.camera.readout_var)
    assert back.emitters.equals(shard.emitters)
    assert back.metadata == json.loads(json.dumps(shard.metadata))
    assert back.x.dtype == np.float32 and back.y.shape == (7, 80, 80)
    for key in ("config_hash", "seed", "versions", "split", "shard"):
        assert key in back.metadata


def test_writes_are_byte_identical(shard, written, tmp_path):
    again = tmp_path / "again"
    write_shard(shard, again / "0000.npz", again / "0000.parquet")
    for path in written:
        assert path.read_bytes() == (again / path.name).read_bytes()


def test_missing_file(written):
    written[0].unlink()
    with pytest.raises(ShardError, match=r"0000\.npz: file is missing"):
        read_shard(*written)


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_npz(written, keep):
    data = written[0].read_bytes()
    written[0].write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ShardError, match=r"0000\.npz: corrupt or truncated"):
        read_shard(*written)


def test_flipped_bytes_fail_the_crc(written):
    data = bytearray(written[0].read_bytes())
    data[2000] ^= 0xFF  # inside the x array
    written[0].write_bytes(bytes(data))
    with pytest.raises(ShardError, match=r"0000\.npz: corrupt"):
        read_shard(*written)


def test_garbage_parquet(written):
    written[1].write_bytes(b"not a parquet file")
    with pytest.raises(ShardError, match=r"0000\.parquet: corrupt"):
        read_shard(*written)


def _rewrite(npz, **changes):
    arrays, metadata = load_npz(npz, ("x", "y", "gain", "offset", "readout_var"))
    metadata.update(changes.pop("metadata", {}))
    arrays.update(changes)
    save_npz(npz, arrays, metadata)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"x": np.full((7, 20, 20), np.nan, np.float32)}, "'x' contains NaN"),
        (
            {"y": np.zeros((7, 40, 40), np.float32)},
            r"'y' has shape \[7, 40, 40\], expected \[7, 80, 80\]",
        ),
        ({"x": np.zeros((7, 20, 20), np.float64)}, "'x' has dtype float64"),
        ({"gain": np.zeros((20, 20), np.float32)}, "invalid camera maps"),
        ({"metadata": {"n_images": 8}}, r"'x' has shape \[7, 20, 20\], expected \[8, 20, 20\]"),
    ],
)
def test_invalid_content_is_named(written, changes, pattern):
    _rewrite(written[0], **changes)
    with pytest.raises(ShardError, match=r"0000\.npz: " + pattern):
        read_shard(*written)


def test_config_hash_mismatch(written):
    with pytest.raises(ShardError, match=r"0000\.npz: config hash .* does not match"):
        read_shard(*written, expected_hash="0123456789abcdef")
    _rewrite(written[0], metadata={"config_hash": "ffffffffffffffff"})
    with pytest.raises(ShardError, match=r"0000\.parquet: config hash"):
        read_shard(*written)


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.npz"
    with pytest.raises(ValueError):
        save_npz(target, {"a": np.zeros(3), "b": np.array([object()])}, {})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.npz"
    save_npz(target, {"a": np.arange(3.0)}, {"v": 1})
    with pytest.raises(ValueError):
        save_npz(target, {"a": np.array([object()])}, {"v": 2})
    _, metadata = load_npz(target, ("a",))
    assert metadata == {"v": 1} and list(tmp_path.iterdir()) == [target]


def test_npz_is_a_plain_numpy_archive(written):
    with zipfile.ZipFile(written[0]) as archive:
        assert archive.testzip() is None
    with np.load(written[0]) as data:
        assert set(data.files) == {"x", "y", "gain", "offset", "readout_var", "metadata"}


def test_outputs_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        save_npz(tmp_path / "a.npz", {"a": np.zeros(2)}, {})
    finally:
        os.umask(mask)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o644


def test_save_csv_writes_atomically_without_index(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.5], "b": ["x", "y"]})
    save_csv(frame, tmp_path / "t.tsv", sep="\t")
    assert (tmp_path / "t.tsv").read_text() == "a\tb\n1.0\tx\n2.5\ty\n"
    with pytest.raises(TypeError):
        save_csv(frame, tmp_path / "bad.csv", not_an_option=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tsv"]

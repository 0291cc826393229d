"""Generic artifact I/O: atomic, byte-reproducible NPZ, CSV and Parquet writers and validating
readers.

NPZ files hold arrays plus a `metadata` entry (a JSON string). Parquet tables carry the same
metadata under the schema key `diffloc`. Every reader error is a `DataError`, of the subclass
that names its format family, whose message starts with the offending file's path.
"""

import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamp: identical content -> identical bytes


_PARQUET_KEY = b"diffloc"


# What a user does about a corrupt or invalid output file: Snakemake remakes a missing output.
REBUILD_HINT = "delete the file and rerun snakemake, which rebuilds it"


class DataError(RuntimeError):
    """A missing, corrupt, truncated or invalid file; the message names the file (base class)."""


class ShardError(DataError):
    """A simulated shard (`data/`) or phi's yhat file (`yhat/`) is missing, corrupt or mismatched."""


class ModelFileError(DataError):
    """A model file (`models/*.pt`) is missing, corrupt or not a diffloc model."""


class PosteriorFileError(DataError):
    """A posterior summary file (`posterior/`) is missing, corrupt or inconsistent."""


class McmcFileError(DataError):
    """An MCMC chunk file (`mcmc/`: chains, maps, diagnostics) is missing, corrupt or invalid."""


class MovieError(DataError):
    """A user's TIFF movie or camera-map file (`data.movies`) is missing, unreadable or invalid."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray], metadata: dict) -> None:
    """Write arrays and JSON metadata to an uncompressed .npz, atomically and byte-reproducibly."""
    if "metadata" in arrays:
        raise ValueError("'metadata' is reserved for the JSON metadata entry")
    entries = {**arrays, "metadata": np.array(json.dumps(metadata, sort_keys=True))}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, array in entries.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asarray(array, order="C"), allow_pickle=False)


def load_npz(
    path: str | Path, keys: tuple[str, ...], error: type[DataError] = DataError
) -> tuple[dict[str, np.ndarray], dict]:
    """Read `keys` and the metadata of an .npz written by `save_npz`; `error` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file is missing")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in (*keys, "metadata") if k not in archive.files]
            if missing:
                raise error(
                    f"{path}: missing entries {missing} (has {archive.files}); {REBUILD_HINT}"
                )
            arrays = {k: archive[k] for k in keys}
            metadata = json.loads(archive["metadata"].item())
    except DataError:
        raise
    except Exception as exc:  # zip, zlib, numpy-format and JSON errors all mean a corrupt file
        raise error(
            f"{path}: corrupt or truncated file ({type(exc).__name__}: {exc}); {REBUILD_HINT}"
        ) from exc
    if not isinstance(metadata, dict):
        raise error(f"{path}: metadata is not a JSON object; {REBUILD_HINT}")
    return arrays, metadata


def check_array(
    path: Path,
    name: str,
    array: np.ndarray,
    shape: tuple[int | None, ...],
    dtype: type = np.float32,
    error: type[DataError] = DataError,
) -> None:
    """`error` unless `array` has `dtype`, the `shape` (None = any) and only finite values."""
    if array.dtype != np.dtype(dtype):
        raise error(
            f"{path}: '{name}' has dtype {array.dtype}, expected {np.dtype(dtype)}; {REBUILD_HINT}"
        )
    if array.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, array.shape, strict=True)
    ):
        want = "[" + ", ".join("N" if s is None else str(s) for s in shape) + "]"
        raise error(
            f"{path}: '{name}' has shape {list(array.shape)}, expected {want}; {REBUILD_HINT}"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise error(f"{path}: '{name}' contains NaN or infinite values; {REBUILD_HINT}")


def save_csv(frame: pd.DataFrame, path: str | Path, **to_csv) -> None:
    """Write a metrics table to CSV (no index; keyword arguments go to DataFrame.to_csv), atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, **to_csv)


def save_table(frame: pd.DataFrame, path: str | Path, metadata: dict) -> None:
    """Write a table to Parquet with JSON metadata under the schema key `diffloc`, atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**(table.schema.metadata or {}), _PARQUET_KEY: json.dumps(metadata, sort_keys=True)}
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)


def read_table(path: str | Path, error: type[DataError] = DataError) -> tuple[pd.DataFrame, dict]:
    """A Parquet table written with diffloc metadata, and that metadata; `error` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file is missing")
    try:
        table = pq.read_table(path)
        metadata = json.loads(table.schema.metadata[_PARQUET_KEY])
    except Exception as exc:
        raise error(
            f"{path}: corrupt, truncated or not a diffloc table ({exc}); {REBUILD_HINT}"
        ) from exc
    return table.to_pandas(), metadata

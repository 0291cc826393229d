"""Simulated data: in-memory containers (padded emitter scenes, shards of images) and the files
`data/{split}/{shard}.npz|.parquet` and phi's `yhat/{split}/{shard}.npz`: write, validate, read.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffloc.data.files import (
    REBUILD_HINT,
    ShardError,
    check_array,
    load_npz,
    read_table,
    save_npz,
    save_table,
)
from diffloc.physics.camera import Camera
from diffloc.physics.kde import kde_from_emitters

# Emitter table: one row per emitter; positions in LR pixels from the image corner (pixel i
# covers [i, i+1)) and in nm; u is the first image axis (rows), v the second (columns).
EMITTER_COLUMNS = {
    "image": "int32",  # image index within the shard
    "emitter": "int32",  # emitter index within the image
    "u_px": "float64",
    "v_px": "float64",
    "u_nm": "float64",
    "v_nm": "float64",
    "photons": "float64",  # expected detected photons i0 of this emitter
}


@dataclass(frozen=True)
class Scene:
    """Emitters of N images padded to M per image: u, v in LR px and photons, each [N, M]."""

    u: np.ndarray
    v: np.ndarray
    photons: np.ndarray
    counts: np.ndarray  # [N] number of real emitters; padding slots have photons 0

    @property
    def mask(self) -> np.ndarray:
        """[N, M] True where a slot holds a real emitter."""
        return np.arange(self.u.shape[1]) < self.counts[:, None]

    def to_frame(self, pixel_size_nm: float) -> pd.DataFrame:
        """One row per real emitter (EMITTER_COLUMNS), in image-then-emitter order."""
        image, emitter = np.nonzero(self.mask)
        u, v = self.u[image, emitter], self.v[image, emitter]
        frame = pd.DataFrame(
            {
                "image": image,
                "emitter": emitter,
                "u_px": u,
                "v_px": v,
                "u_nm": u * pixel_size_nm,
                "v_nm": v * pixel_size_nm,
                "photons": self.photons[image, emitter],
            }
        )
        return frame.astype(EMITTER_COLUMNS)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, n_images: int) -> "Scene":
        """Rebuild the padded scene of `n_images` images from an emitter table."""
        image = frame["image"].to_numpy()
        emitter = frame["emitter"].to_numpy()
        counts = np.bincount(image, minlength=n_images)
        m = int(counts.max(initial=0))
        u, v, photons = (np.zeros((n_images, m)) for _ in range(3))
        u[image, emitter] = frame["u_px"].to_numpy()
        v[image, emitter] = frame["v_px"].to_numpy()
        photons[image, emitter] = frame["photons"].to_numpy()
        return cls(u, v, photons, counts)


@dataclass(frozen=True)
class Shard:
    """One shard: camera images x [N, H, W] (ADU), KDEs y [N, sH, sW], camera, emitters, metadata.

    `emitters` is None when only the images were read.
    """

    x: np.ndarray
    y: np.ndarray
    camera: Camera
    emitters: pd.DataFrame | None
    metadata: dict

    @property
    def n_images(self) -> int:
        """Number of images N in the shard."""
        return self.x.shape[0]


SHARD_ARRAYS = ("x", "y", "gain", "offset", "readout_var")


def write_shard(shard: Shard, npz_path: str | Path, parquet_path: str | Path) -> None:
    """Write a shard's images (NPZ) and emitter table (Parquet), each atomically."""
    arrays = {
        "x": shard.x,
        "y": shard.y,
        "gain": shard.camera.gain,
        "offset": shard.camera.offset,
        "readout_var": shard.camera.readout_var,
    }
    for name, array in arrays.items():
        if array.dtype != np.float32:
            raise ValueError(f"shard array {name!r} must be float32, got {array.dtype}")
    save_npz(npz_path, arrays, shard.metadata)
    save_table(shard.emitters.astype(EMITTER_COLUMNS), parquet_path, shard.metadata)


def read_emitters(path: str | Path, n_images: int) -> tuple[pd.DataFrame, dict]:
    """Read and validate an emitter table of a shard with `n_images` images."""
    path = Path(path)
    frame, metadata = read_table(path, ShardError)
    if list(frame.columns) != list(EMITTER_COLUMNS):
        raise ShardError(
            f"{path}: columns {list(frame.columns)}, expected {list(EMITTER_COLUMNS)}; {REBUILD_HINT}"
        )
    for column, dtype in EMITTER_COLUMNS.items():
        if frame[column].dtype != np.dtype(dtype):
            raise ShardError(
                f"{path}: column '{column}' has dtype {frame[column].dtype}, expected {dtype}"
            )
    values = frame[["u_px", "v_px", "u_nm", "v_nm", "photons"]].to_numpy()
    if not np.all(np.isfinite(values)):
        raise ShardError(f"{path}: emitter table contains NaN or infinite values; {REBUILD_HINT}")
    image = frame["image"].to_numpy()
    if len(frame) and (image.min() < 0 or image.max() >= n_images):
        raise ShardError(f"{path}: image indices outside [0, {n_images}); {REBUILD_HINT}")
    expected_emitter = frame.groupby("image").cumcount().to_numpy()
    if not np.array_equal(frame["emitter"].to_numpy(), expected_emitter) or np.any(
        np.diff(image) < 0
    ):
        raise ShardError(
            f"{path}: rows must be sorted by image with emitters numbered 0, 1, ...; {REBUILD_HINT}"
        )
    return frame, metadata


def read_shard(
    npz_path: str | Path, parquet_path: str | Path | None = None, expected_hash: str | None = None
) -> Shard:
    """Read, validate and cross-check a shard's NPZ and (unless None) Parquet files."""
    npz_path = Path(npz_path)
    arrays, metadata = load_npz(npz_path, SHARD_ARRAYS, ShardError)
    try:
        n = int(metadata["n_images"])
        geometry = metadata["config"]["geometry"]
        size, s = int(geometry["lr_size"]), int(geometry["upsample"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ShardError(f"{npz_path}: metadata lacks n_images or geometry ({exc})") from exc
    check_array(npz_path, "x", arrays["x"], (n, size, size), error=ShardError)
    check_array(npz_path, "y", arrays["y"], (n, s * size, s * size), error=ShardError)
    for name in ("gain", "offset", "readout_var"):
        check_array(npz_path, name, arrays[name], (size, size), error=ShardError)
    if expected_hash is not None and metadata.get("config_hash") != expected_hash:
        raise ShardError(
            f"{npz_path}: config hash {metadata.get('config_hash')} does not match the current "
            f"config ({expected_hash}); rerun the simulation for this shard"
        )
    try:
        camera = Camera(arrays["gain"], arrays["offset"], arrays["readout_var"])
    except ValueError as exc:
        raise ShardError(f"{npz_path}: invalid camera maps ({exc})") from exc
    if parquet_path is None:
        return Shard(arrays["x"], arrays["y"], camera, None, metadata)
    parquet_path = Path(parquet_path)
    emitters, table_meta = read_emitters(parquet_path, n)
    if table_meta.get("config_hash") != metadata.get("config_hash"):
        raise ShardError(
            f"{parquet_path}: config hash {table_meta.get('config_hash')} does not match its "
            f"images in {npz_path} ({metadata.get('config_hash')})"
        )
    return Shard(arrays["x"], arrays["y"], camera, emitters, metadata)


def read_yhat(path: str | Path) -> tuple[np.ndarray, dict]:
    """phi's KDE estimates yhat float32 [N, sH, sW] of one shard, validated, and their metadata."""
    path = Path(path)
    arrays, metadata = load_npz(path, ("yhat",), ShardError)
    n = metadata.get("n_images")
    if not isinstance(n, int):
        raise ShardError(f"{path}: metadata lacks n_images; {REBUILD_HINT}")
    check_array(path, "yhat", arrays["yhat"], (n, None, None), error=ShardError)
    return arrays["yhat"], metadata


def shard_size(npz_path: str | Path) -> int:
    """Number of images in an NPZ artifact, from its metadata (arrays are not read)."""
    _, metadata = load_npz(npz_path, (), ShardError)
    return int(metadata["n_images"])


def image_range(paths: list[str | Path], start: int, stop: int, read) -> np.ndarray:
    """Images [start, stop) of a split stored in shards `paths` (in order), reading only the
    shards that hold them; `read(path)` returns one shard's image stack [n, ...]."""
    out, offset = [], 0
    for path in paths:
        n = shard_size(path)
        lo, hi = max(start, offset), min(stop, offset + n)
        if lo < hi:
            out.append(read(path)[lo - offset : hi - offset])
        offset += n
    if stop > offset or start < 0 or start >= stop:
        raise ValueError(f"images [{start}, {stop}) are not all in the {offset} images of {paths}")
    return np.concatenate(out)


def shard_kde(shard: Shard, sigma_y: float) -> np.ndarray:
    """The shard's true KDEs [N, sH, sW] (KDE units) at kernel width `sigma_y` (HR px): its stored
    y when it was simulated at that width, else rendered from its emitter table the same way."""
    cfg = shard.metadata["config"]
    if cfg["kde"]["sigma_y"] == sigma_y:
        return shard.y
    if shard.emitters is None:
        raise ShardError(
            f"shard {shard.metadata['split']}/{shard.metadata['shard']}: its KDEs at sigma_y = "
            f"{sigma_y:g} need its emitter table (read the shard with its Parquet file)"
        )
    geometry, emitters = cfg["geometry"], shard.emitters
    return kde_from_emitters(
        emitters["image"].to_numpy(),
        emitters["u_px"].to_numpy(),
        emitters["v_px"].to_numpy(),
        shard.n_images,
        geometry["lr_size"],
        geometry["upsample"],
        sigma_y,
        cfg["kde"]["normalize"],
    )

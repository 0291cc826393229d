"""MCMC chunk files `mcmc/{setting}/{split}/{chunk}.*`: chains (Parquet, one row per kept draw),
push-forward maps (NPZ: `mean`, `var`, `std` float32 [N, sH, sW], `image` int32 [N]) and
per-image diagnostics (CSV): write, validate, read.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffloc.data.files import (
    REBUILD_HINT,
    McmcFileError,
    check_array,
    load_npz,
    read_table,
    save_csv,
    save_npz,
    save_table,
)

FORMAT = "diffloc.mcmc/1"


MAP_KEYS = ("mean", "var", "std")


CHAIN_COLUMNS = {
    "image": "int32",  # image index within the set (shard * shard_size + index in the shard)
    "chain": "int32",
    "draw": "int32",  # iteration after burn-in
    "u_px": "float64",
    "v_px": "float64",
    "photons": "float64",  # the known i0, or the sampled one with mcmc.fit_photons
    "nll": "float64",  # negative log-likelihood at the draw
}


@dataclass(frozen=True)
class ChunkResult:
    """A chunk's outputs in memory: thinned chains, push-forward maps, diagnostics, metadata."""

    chains: pd.DataFrame
    maps: dict[str, np.ndarray]
    diagnostics: pd.DataFrame
    metadata: dict


def write_chunk(
    result: ChunkResult, chains_path: str | Path, maps_path: str | Path, csv_path: str | Path
) -> None:
    """Write a chunk's chains (Parquet), maps (NPZ) and diagnostics (CSV), each atomically."""
    save_table(result.chains, chains_path, result.metadata)
    save_npz(maps_path, result.maps, result.metadata)
    save_csv(result.diagnostics, csv_path, float_format="%.9g")


def read_chains(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read and validate a chains table; McmcFileError naming the file if it is not one."""
    path = Path(path)
    frame, metadata = read_table(path, McmcFileError)
    if metadata.get("format") != FORMAT or list(frame.columns) != list(CHAIN_COLUMNS):
        raise McmcFileError(
            f"{path}: not an MCMC chains table (columns {list(frame.columns)}); {REBUILD_HINT}"
        )
    if not np.all(np.isfinite(frame[["u_px", "v_px", "photons", "nll"]].to_numpy())):
        raise McmcFileError(f"{path}: chains contain NaN or infinite values; {REBUILD_HINT}")
    return frame, metadata


def read_maps(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read and validate push-forward maps (`MAP_KEYS` float32 [N, sH, sW], `image` [N])."""
    path = Path(path)
    arrays, metadata = load_npz(path, (*MAP_KEYS, "image"), McmcFileError)
    if metadata.get("format") != FORMAT:
        raise McmcFileError(
            f"{path}: not an MCMC maps file (format {metadata.get('format')!r}); {REBUILD_HINT}"
        )
    n = arrays["image"].shape[0]
    side = int(
        metadata["config"]["geometry"]["upsample"] * metadata["config"]["geometry"]["lr_size"]
    )
    for key in MAP_KEYS:
        check_array(path, key, arrays[key], (n, side, side), error=McmcFileError)
    check_array(path, "image", arrays["image"], (n,), np.int32, error=McmcFileError)
    return arrays, metadata


def read_diagnostics(path: str | Path) -> pd.DataFrame:
    """Read a per-image diagnostics CSV; McmcFileError naming the file if it is missing or malformed."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise McmcFileError(f"{path}: cannot read diagnostics CSV ({exc}); {REBUILD_HINT}") from exc
    needed = {"set", "setting", "beta", "image", "acceptance", "std_u_nm", "crlb_u_nm", "rhat_u"}
    if not needed <= set(frame.columns):
        raise McmcFileError(
            f"{path}: missing columns {sorted(needed - set(frame.columns))}; {REBUILD_HINT}"
        )
    return frame

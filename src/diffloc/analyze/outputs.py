"""An analysis's files, written all-or-nothing into its output folder.

OUTPUT_FILES: the localisation table (Parquet, one row per localisation, units in the column
names, metadata under the schema key `diffloc`), its ThunderSTORM CSV and Picasso HDF5 + YAML
exports (data.exports), and the renders on the HR grid (float32 TIFF + 8-bit PNG preview):
`render` (phi's KDE summed over all frames), `render_psi_mean` and `render_psi_std` (psi's
posterior mean and per-pixel std of the KDE summed over the frames psi sampled; zero if none).
Everything is first written to a hidden staging folder inside the output folder and moved into
place only when every file is complete, so a failure leaves no partial output.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import tifffile

from diffloc.analyze.names import OUTPUT_FILES
from diffloc.analyze.pipeline import ChunkResult
from diffloc.data.exports import write_picasso_hdf5, write_thunderstorm_csv
from diffloc.data.files import save_table


def export_table(table: pd.DataFrame, sigma_px: float, pixel_size_nm: float) -> pd.DataFrame:
    """The exporters' table (data.exports.LOCALISATION_COLUMNS) of an analysis table."""
    return pd.DataFrame(
        {
            "frame": table["frame"].to_numpy(),
            "x_px": table["x_px"].to_numpy(),
            "y_px": table["y_px"].to_numpy(),
            "photons": table["photons"].to_numpy(),
            "background": table["background_photons_per_px"].to_numpy(),
            "sx_px": np.full(len(table), sigma_px),
            "sy_px": np.full(len(table), sigma_px),
            "uncertainty_x_px": table["uncertainty_x_nm"].to_numpy() / pixel_size_nm,
            "uncertainty_y_px": table["uncertainty_y_nm"].to_numpy() / pixel_size_nm,
        }
    )


def write_image(path: Path, image: np.ndarray, metadata: dict) -> None:
    """A float32 TIFF of `image` (its metadata as JSON in the description) at `path`."""
    tifffile.imwrite(path, image.astype(np.float32), description=json.dumps(metadata))


def write_preview(path: Path, image: np.ndarray, cmap: str) -> None:
    """An 8-bit PNG preview of `image`, colour-mapped between 0 and its 99.9th percentile."""
    top = float(np.percentile(image, 99.9)) if image.size else 0.0
    matplotlib.image.imsave(path, image, cmap=cmap, vmin=0.0, vmax=top if top > 0 else 1.0)


def write_outputs(
    result: ChunkResult,
    out: str | Path,
    *,
    shape: tuple[int, int],
    n_frames: int,
    sigma_px: float,
    pixel_size_nm: float,
    metadata: dict,
    files: dict[str, str | Path] | None = None,
) -> dict[str, Path]:
    """Write OUTPUT_FILES (or the paths `files` names) for a merged result; all or nothing."""
    out = Path(out)
    targets = {k: Path(files[k]) if files else out / name for k, name in OUTPUT_FILES.items()}
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".diffloc-staging-", dir=out))
    try:
        staged = {k: stage / OUTPUT_FILES[k] for k in targets}
        meta = {**metadata, "n_frames": n_frames, "n_psi_frames": result.n_psi_frames}
        save_table(result.table, staged["table"], meta)
        exported = export_table(result.table, sigma_px, pixel_size_nm)
        write_thunderstorm_csv(exported, staged["thunderstorm"], pixel_size_nm=pixel_size_nm)
        write_picasso_hdf5(
            exported,
            staged["picasso"],
            width=shape[1],
            height=shape[0],
            n_frames=n_frames,
            pixel_size_nm=pixel_size_nm,
        )
        std = np.sqrt(np.maximum(result.sums["psi_var_sum"], 0.0))
        images = {
            "render": (result.sums["kde_sum"], "magma"),
            "psi_mean": (result.sums["psi_mean_sum"], "magma"),
            "psi_std": (std, "viridis"),
        }
        for name, (image, cmap) in images.items():
            key = "render" if name == "render" else name
            write_image(staged[f"{key}_tif"], image, meta)
            write_preview(staged[f"{key}_png"], image, cmap)
        for key, path in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged[key], path)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return targets

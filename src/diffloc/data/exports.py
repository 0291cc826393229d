"""Localisation tables out: ThunderSTORM CSV and Picasso HDF5 (+ its YAML), atomically.

The diffloc table is a pandas DataFrame, one row per localisation, with LOCALISATION_COLUMNS:
frame (0-based movie frame index); x_px, y_px (camera pixels: pixel i covers [i, i + 1), its
centre is i + 0.5; x is the column, y the row); photons (total photons); background (photons
per pixel); sx_px, sy_px (PSF sigma, px); uncertainty_x_px, uncertainty_y_px (standard
deviation of the position, px). A bad table (missing or non-numeric column, NaN or infinite
value, negative or fractional frame, sigma <= 0, negative uncertainty) raises ValueError before
anything is written; a writer never leaves a partial file (diffloc.data.files.atomic_path).
Rows are written sorted by frame (stable).

Conventions, as read in each program's source code (facts only, no code copied):

ThunderSTORM (github.com/zitmen/thunderstorm, commit e85c565):
- Pixel centres at i + 0.5, like diffloc: estimators/MultipleLocationsImageFitting.java, run(),
  fits on a sub-image grid whose 0 is the detected pixel's integer index xInt and stores
  fit + xInt + 0.5 (FullImageFitting.java and EmptyEstimator.java add the same 0.5). Pixels
  become nm by a plain product: MoleculeDescriptor.Units.convertTo -> CameraSetupPlugIn.
  pixelsToNanometers (px * pixel size). So x [nm] = x_px * pixel_size_nm, no shift.
- Frames count from 1: AnalysisPlugIn.run(ImageProcessor) stores ip.getSliceNumber() (ImageJ
  slices count from 1) through storeFits; the importer (ImportExport/DLMImportExport.java,
  importFromFile) adds startingFrame - 1, i.e. nothing for the default start 1. frame = f + 1.
- ids count from 1: results/GenericTableModel.java, getNewId() returns ++maxId from 0.
- Column labels are "name [unit]" (estimators/PSF/MoleculeDescriptor.java, getLabel) with names
  from PSFModel.Params (x, y, sigma, intensity, offset, bkgstd), MoleculeDescriptor (id, frame)
  and MoleculeDescriptor.Fitting (uncertainty_xy), units from the Units enum (nm, photon; id and
  frame unitless, so no brackets). DLMImportExport.exportToFile quotes each header label in
  double quotes and writes numbers with java.text.DecimalFormat (util/StringFormatting.java:
  US symbols, no grouping, no exponent); the importer parses with the same DecimalFormat, which
  stops at an exponent, so this writer uses fixed-point numbers only.
- offset is the PSF model's constant term, the background per pixel, after the camera offset
  is subtracted (AnalysisPlugIn.run); bkgstd is the standard deviation of the fit residuals
  (LSQFitter.java, MLEFitter.java), the background noise b of Fitting.uncertaintyXY (Thompson /
  Mortensen); uncertainty_xy is one per-axis standard deviation (Fitting.uncertaintyXY).
  Mapping: sigma [nm] = sqrt(sx_px * sy_px) * pixel size (ThunderSTORM's 2-D column is one
  symmetric sigma; its uncertaintyXY uses sigma1 * sigma2 as sigma^2 for elliptic PSFs);
  intensity [photon] = photons; offset [photon] = background; bkgstd [photon] =
  sqrt(background), the Poisson noise of the background, which is Mortensen's b (diffloc does
  not measure residuals); uncertainty_xy [nm] = sqrt((ux^2 + uy^2) / 2) * pixel size, the
  per-axis root mean square, which keeps the mean squared error of the two axes.

Picasso (github.com/jungmannlab/picasso, v0.10.3, commit 96e0da5):
- Pixel centres at integers: gausslq.py fits a spot box on the grid
  np.arange(-size_half, size_half + 1) (pixel j of the box at j - size_half, integrated over
  [g - 0.5, g + 0.5]) and locs_from_fits adds the fitted offset to the box centre's pixel index
  identifications["x"]; localize.py _cut_spots_frame cuts frame[yc - r : yc + r + 1,
  xc - r : xc + r + 1] around that index. So Picasso x = x_px - 0.5, y = y_px - 0.5.
- Frames count from 0: localize.py identify_by_frame_number uses the movie index.
- Fields and dtypes (gausslq.py locs_from_fits): frame uint32; x, y, photons, sx, sy, bg, lpx,
  lpy float32; photons and bg (per pixel) in photons, x, y, sx, sy, lpx, lpy in camera pixels.
- Files (io.py): save_locs writes locs.to_records(index=False) with h5py as the dataset "locs",
  and save_info writes yaml.dump_all(list of dicts) to the same base name + ".yaml"; load_locs
  reads "locs" (pandas.read_hdf) and the YAML (load_info, yaml.load_all), then
  lib.ensure_sanity raises KeyError unless the metadata hold Width, Height and Frames, and drops
  rows with NaN/inf, x >= Width, y >= Height, or negative x, y, lpx, lpy, photons, sx or sy.
  Render (gui/render.py, View.add) also reads Pixelsize (nm; optional, else its setting).
  Consequence: a localisation in the outer half pixel at the left or top edge (x_px or y_px
  < 0.5) has a negative Picasso coordinate and Picasso drops it; write_picasso_hdf5 warns.
"""

import math
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import yaml

from diffloc import __version__
from diffloc.data.files import atomic_path

LOCALISATION_COLUMNS = (
    "frame",
    "x_px",
    "y_px",
    "photons",
    "background",
    "sx_px",
    "sy_px",
    "uncertainty_x_px",
    "uncertainty_y_px",
)

THUNDERSTORM_COLUMNS = (
    "id",
    "frame",
    "x [nm]",
    "y [nm]",
    "sigma [nm]",
    "intensity [photon]",
    "offset [photon]",
    "bkgstd [photon]",
    "uncertainty_xy [nm]",
)

# Picasso's `locs` record layout for a 2-D Gaussian fit (gausslq.locs_from_fits), little-endian.
PICASSO_DTYPE = np.dtype(
    [
        ("frame", "<u4"),
        ("x", "<f4"),
        ("y", "<f4"),
        ("photons", "<f4"),
        ("sx", "<f4"),
        ("sy", "<f4"),
        ("bg", "<f4"),
        ("lpx", "<f4"),
        ("lpy", "<f4"),
    ]
)

_FIXED_POINT = "%.5f"  # ThunderSTORM's DecimalFormat parser reads no exponent


def check_localisations(locs: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """The table's LOCALISATION_COLUMNS (float64; frame int64), sorted by frame; ValueError if bad.

    `path` is the file about to be written, named in every message.
    """
    if not isinstance(locs, pd.DataFrame):
        raise TypeError(f"cannot write {path}: localisations must be a pandas DataFrame")
    missing = [c for c in LOCALISATION_COLUMNS if c not in locs.columns]
    if missing:
        raise ValueError(
            f"cannot write {path}: the localisation table lacks columns {missing} "
            f"(it has {list(map(str, locs.columns))})"
        )
    out = {}
    for name in LOCALISATION_COLUMNS:
        column = locs[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise ValueError(
                f"cannot write {path}: column {name!r} has dtype {column.dtype}, expected numbers"
            )
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        _require(path, name, np.isfinite(values), "NaN or infinite")
        out[name] = values
    frame = out["frame"]
    _require(path, "frame", (frame >= 0) & (frame == np.round(frame)), "negative or fractional")
    _require(path, "frame", frame < 2**32, "too large (>= 2^32)")
    for name in ("sx_px", "sy_px"):
        _require(path, name, out[name] > 0, "zero or negative")
    for name in ("uncertainty_x_px", "uncertainty_y_px"):
        _require(path, name, out[name] >= 0, "negative")
    table = pd.DataFrame(out)
    table["frame"] = frame.astype(np.int64)
    return table.sort_values("frame", kind="stable", ignore_index=True)


def _require(path, name: str, ok: np.ndarray, what: str) -> None:
    """ValueError naming the file, column, count and first row unless `ok` holds everywhere."""
    if not ok.all():
        bad = np.flatnonzero(~ok)
        raise ValueError(
            f"cannot write {path}: column {name!r} has {bad.size} {what} value(s), "
            f"first at row {int(bad[0])}"
        )


def _positive(name: str, value, integer: bool = False) -> float | int:
    """`value` if a finite number > 0 (an int if `integer`); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0, got {value}")
    return int(value) if integer else float(value)


def write_thunderstorm_csv(locs: pd.DataFrame, path: str | Path, *, pixel_size_nm: float) -> None:
    """Write localisations as a ThunderSTORM CSV (THUNDERSTORM_COLUMNS; conventions above)."""
    pixel = _positive("pixel_size_nm", pixel_size_nm)
    t = check_localisations(locs, path)
    ux, uy = t["uncertainty_x_px"].to_numpy(), t["uncertainty_y_px"].to_numpy()
    columns = [
        np.arange(1, len(t) + 1, dtype=np.float64),  # id, from 1
        t["frame"].to_numpy(dtype=np.float64) + 1.0,  # ImageJ slice number, from 1
        t["x_px"].to_numpy() * pixel,  # same pixel-centre convention: no shift
        t["y_px"].to_numpy() * pixel,
        np.sqrt(t["sx_px"].to_numpy() * t["sy_px"].to_numpy()) * pixel,
        t["photons"].to_numpy(),
        t["background"].to_numpy(),
        np.sqrt(np.maximum(t["background"].to_numpy(), 0.0)),
        np.sqrt((ux**2 + uy**2) / 2.0) * pixel,
    ]
    data = np.column_stack(columns) if len(t) else np.empty((0, len(THUNDERSTORM_COLUMNS)))
    header = ",".join(f'"{c}"' for c in THUNDERSTORM_COLUMNS)
    fmt = ["%d", "%d"] + [_FIXED_POINT] * (len(THUNDERSTORM_COLUMNS) - 2)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        handle.write(header + "\n")
        np.savetxt(handle, data, fmt=fmt, delimiter=",")


def picasso_yaml_path(path: str | Path) -> Path:
    """The metadata file Picasso pairs with a localisation file: same base name, `.yaml`."""
    return Path(path).with_suffix(".yaml")


def write_picasso_hdf5(
    locs: pd.DataFrame,
    path: str | Path,
    *,
    width: int,
    height: int,
    n_frames: int,
    pixel_size_nm: float | None = None,
) -> Path:
    """Write localisations as a Picasso `.hdf5` file and its `.yaml`; return the YAML's path.

    `width`, `height` (camera pixels) and `n_frames` describe the movie; positions must lie in
    it ([0, width) x [0, height) in diffloc pixels) and frames below n_frames. The YAML holds
    Width, Height, Frames, Pixelsize (if given) and Generated by. Warns about rows Picasso's
    loader will drop (x_px or y_px < 0.5, negative photons).
    """
    path = Path(path)
    if path.suffix != ".hdf5":
        raise ValueError(f"cannot write {path}: a Picasso localisation file ends in .hdf5")
    width = _positive("width", width, integer=True)
    height = _positive("height", height, integer=True)
    n_frames = _positive("n_frames", n_frames, integer=True)
    pixel = None if pixel_size_nm is None else _positive("pixel_size_nm", pixel_size_nm)
    t = check_localisations(locs, path)
    x, y = t["x_px"].to_numpy(), t["y_px"].to_numpy()
    _require(path, "frame", t["frame"].to_numpy() < n_frames, f"out of range (>= {n_frames})")
    _require(path, "x_px", (x >= 0) & (x < width), f"out of the image [0, {width})")
    _require(path, "y_px", (y >= 0) & (y < height), f"out of the image [0, {height})")
    dropped = (x < 0.5) | (y < 0.5) | (t["photons"].to_numpy() < 0)
    if dropped.any():
        warnings.warn(
            f"{path}: Picasso's loader (lib.ensure_sanity) will drop {int(dropped.sum())} "
            "localisation(s): x_px or y_px < 0.5 (a negative Picasso coordinate) or negative "
            "photons",
            stacklevel=2,
        )

    records = np.empty(len(t), dtype=PICASSO_DTYPE)
    records["frame"] = t["frame"].to_numpy()
    records["x"] = x - 0.5  # Picasso: pixel centres at integers
    records["y"] = y - 0.5
    records["photons"] = t["photons"].to_numpy()
    records["sx"] = t["sx_px"].to_numpy()
    records["sy"] = t["sy_px"].to_numpy()
    records["bg"] = t["background"].to_numpy()
    records["lpx"] = t["uncertainty_x_px"].to_numpy()
    records["lpy"] = t["uncertainty_y_px"].to_numpy()

    info = {
        "Generated by": f"diffloc {__version__}",
        "Width": width,
        "Height": height,
        "Frames": n_frames,
    }
    if pixel is not None:
        info["Pixelsize"] = pixel
    yaml_path = picasso_yaml_path(path)
    with atomic_path(path) as tmp_locs, atomic_path(yaml_path) as tmp_yaml:
        with h5py.File(tmp_locs, "w") as handle:
            handle.create_dataset("locs", data=records)
        with open(tmp_yaml, "w") as handle:
            yaml.safe_dump_all([info], handle, default_flow_style=False, sort_keys=False)
    return yaml_path

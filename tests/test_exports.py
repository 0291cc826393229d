"""ThunderSTORM CSV and Picasso HDF5 exports, read back with pandas / h5py / yaml and checked
against each program's conventions (see diffloc.data.exports: the source files they come from):
ThunderSTORM puts a pixel centre at i + 0.5 (like diffloc), counts frames and ids from 1, and
writes nm; Picasso puts a pixel centre at the integer i, counts frames from 0, and writes px."""

import math
import re

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from diffloc.data import exports
from diffloc.data.exports import (
    LOCALISATION_COLUMNS,
    PICASSO_DTYPE,
    THUNDERSTORM_COLUMNS,
    picasso_yaml_path,
    write_picasso_hdf5,
    write_thunderstorm_csv,
)

PIXEL_NM = 108.0
WIDTH, HEIGHT, FRAMES = 32, 24, 10


def locs_table() -> pd.DataFrame:
    """Three localisations, not sorted by frame; the first sits on the centre of pixel (3, 7)."""
    return pd.DataFrame(
        {
            "frame": [4, 0, 2],
            "x_px": [3.5, 10.25, 31.9],
            "y_px": [7.5, 0.75, 20.0],
            "photons": [1500.0, 320.5, 80.0],
            "background": [12.0, 4.0, 0.0],
            "sx_px": [1.2, 1.0, 1.5],
            "sy_px": [1.2, 1.44, 1.5],
            "uncertainty_x_px": [0.05, 0.1, 0.3],
            "uncertainty_y_px": [0.05, 0.2, 0.4],
        }
    )


# --- ThunderSTORM ------------------------------------------------------------------------------


def test_thunderstorm_header_is_thunderstorms(tmp_path):
    path = tmp_path / "locs.csv"
    write_thunderstorm_csv(locs_table(), path, pixel_size_nm=PIXEL_NM)
    header = path.read_text().splitlines()[0]
    assert header == (
        '"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]",'
        '"offset [photon]","bkgstd [photon]","uncertainty_xy [nm]"'
    )
    assert tuple(pd.read_csv(path).columns) == THUNDERSTORM_COLUMNS


def test_thunderstorm_values_and_conventions(tmp_path):
    path = tmp_path / "locs.csv"
    write_thunderstorm_csv(locs_table(), path, pixel_size_nm=PIXEL_NM)
    back = pd.read_csv(path)
    # rows sorted by frame: table rows 1, 2, 0
    assert back["id"].tolist() == [1, 2, 3]  # ThunderSTORM ids count from 1
    assert back["frame"].tolist() == [1, 3, 5]  # ImageJ slice numbers: 0-based frame + 1
    centre = back.iloc[2]  # the localisation on the centre of pixel column 3, row 7
    # ThunderSTORM's pixel centre is at i + 0.5 px, so (i + 0.5) * pixel size in nm
    assert centre["x [nm]"] == pytest.approx((3 + 0.5) * PIXEL_NM, abs=1e-5)
    assert centre["y [nm]"] == pytest.approx((7 + 0.5) * PIXEL_NM, abs=1e-5)
    second = back.iloc[0]  # frame 0 row: sx 1.0, sy 1.44, ux 0.1, uy 0.2, bg 4
    assert second["x [nm]"] == pytest.approx(10.25 * PIXEL_NM, abs=1e-5)
    assert second["sigma [nm]"] == pytest.approx(1.2 * PIXEL_NM, abs=1e-5)  # sqrt(1.0 * 1.44)
    assert second["uncertainty_xy [nm]"] == pytest.approx(
        math.sqrt((0.1**2 + 0.2**2) / 2) * PIXEL_NM, abs=1e-5
    )
    assert second["intensity [photon]"] == pytest.approx(320.5)
    assert second["offset [photon]"] == pytest.approx(4.0)
    assert second["bkgstd [photon]"] == pytest.approx(2.0)  # Poisson: sqrt(4 photons)
    assert back.iloc[1]["bkgstd [photon]"] == 0.0


def test_thunderstorm_numbers_are_fixed_point(tmp_path):
    """ThunderSTORM's DecimalFormat parser stops at an exponent: no 1e-07 in the file."""
    table = locs_table()
    table.loc[0, "uncertainty_x_px"] = 1e-7
    table.loc[1, "photons"] = 1e12
    path = tmp_path / "locs.csv"
    write_thunderstorm_csv(table, path, pixel_size_nm=PIXEL_NM)
    body = path.read_text().splitlines()[1:]
    assert len(body) == 3
    for line in body:
        assert not re.search(r"[eE]", line), line
        fields = line.split(",")
        assert re.fullmatch(r"\d+", fields[0]) and re.fullmatch(r"\d+", fields[1])


def test_empty_table_writes_a_header_only(tmp_path):
    empty = locs_table().iloc[:0]
    write_thunderstorm_csv(empty, tmp_path / "locs.csv", pixel_size_nm=PIXEL_NM)
    assert len(pd.read_csv(tmp_path / "locs.csv")) == 0
    write_picasso_hdf5(empty, tmp_path / "locs.hdf5", width=WIDTH, height=HEIGHT, n_frames=1)
    with h5py.File(tmp_path / "locs.hdf5", "r") as handle:
        assert handle["locs"].shape == (0,) and handle["locs"].dtype == PICASSO_DTYPE


# --- Picasso ----------------------------------------------------------------------------------


def read_picasso(path):
    with h5py.File(path, "r") as handle:
        assert list(handle.keys()) == ["locs"]
        return handle["locs"][...]


def test_picasso_dtype_is_picassos(tmp_path):
    path = tmp_path / "locs.hdf5"
    write_picasso_hdf5(locs_table(), path, width=WIDTH, height=HEIGHT, n_frames=FRAMES)
    locs = read_picasso(path)
    assert locs.dtype.names == ("frame", "x", "y", "photons", "sx", "sy", "bg", "lpx", "lpy")
    assert locs.dtype["frame"] == np.dtype("<u4")
    for name in locs.dtype.names[1:]:
        assert locs.dtype[name] == np.dtype("<f4"), name


def test_picasso_values_and_conventions(tmp_path):
    path = tmp_path / "locs.hdf5"
    yaml_path = write_picasso_hdf5(
        locs_table(), path, width=WIDTH, height=HEIGHT, n_frames=FRAMES, pixel_size_nm=PIXEL_NM
    )
    locs = read_picasso(path)
    assert locs["frame"].tolist() == [0, 2, 4]  # 0-based, sorted by frame
    centre = locs[2]  # the localisation on the centre of pixel column 3, row 7
    # Picasso's pixel centre is at the integer pixel index (gausslq / localize box grid)
    assert centre["x"] == 3.0 and centre["y"] == 7.0
    first = locs[0]
    assert first["x"] == np.float32(10.25 - 0.5) and first["y"] == np.float32(0.75 - 0.5)
    assert first["photons"] == np.float32(320.5) and first["bg"] == np.float32(4.0)
    assert (first["sx"], first["sy"]) == (np.float32(1.0), np.float32(1.44))
    assert (first["lpx"], first["lpy"]) == (np.float32(0.1), np.float32(0.2))
    # What Picasso's loader (lib.ensure_sanity) keeps: every row here
    assert np.all((locs["x"] >= 0) & (locs["x"] < WIDTH) & (locs["y"] >= 0))
    assert np.all(locs["y"] < HEIGHT)

    assert yaml_path == picasso_yaml_path(path) == tmp_path / "locs.yaml"
    with open(yaml_path) as handle:
        info = list(yaml.safe_load_all(handle))  # Picasso reads a list of YAML documents
    assert len(info) == 1
    assert {"Width": WIDTH, "Height": HEIGHT, "Frames": FRAMES}.items() <= info[0].items()
    assert info[0]["Pixelsize"] == PIXEL_NM
    assert all(type(info[0][k]) is int for k in ("Width", "Height", "Frames"))
    assert info[0]["Generated by"].startswith("diffloc")


def test_picasso_without_pixel_size_has_no_pixelsize_key(tmp_path):
    yaml_path = write_picasso_hdf5(
        locs_table(), tmp_path / "locs.hdf5", width=WIDTH, height=HEIGHT, n_frames=FRAMES
    )
    assert "Pixelsize" not in yaml.safe_load(yaml_path.read_text())


def test_picasso_warns_about_rows_its_loader_drops(tmp_path):
    table = locs_table()
    table.loc[1, "x_px"] = 0.2  # inside pixel 0 but left of its centre: Picasso x = -0.3
    with pytest.warns(UserWarning, match="drop 1 localisation"):
        write_picasso_hdf5(table, tmp_path / "locs.hdf5", width=WIDTH, height=HEIGHT, n_frames=5)
    assert read_picasso(tmp_path / "locs.hdf5")["x"][0] == np.float32(-0.3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"x_px": WIDTH}, "column 'x_px' has 1 out of the image"),
        ({"y_px": -0.1}, "column 'y_px' has 1 out of the image"),
        ({"frame": FRAMES}, "column 'frame' has 1 out of range"),
    ],
)
def test_picasso_rejects_rows_outside_the_movie(tmp_path, change, message):
    table = locs_table()
    for column, value in change.items():
        table.loc[1, column] = value
    with pytest.raises(ValueError, match=message):
        write_picasso_hdf5(
            table, tmp_path / "locs.hdf5", width=WIDTH, height=HEIGHT, n_frames=FRAMES
        )
    assert list(tmp_path.iterdir()) == []


def test_picasso_needs_hdf5_suffix_and_sizes(tmp_path):
    with pytest.raises(ValueError, match=r"ends in \.hdf5"):
        write_picasso_hdf5(locs_table(), tmp_path / "l.h5", width=8, height=8, n_frames=8)
    with pytest.raises(ValueError, match="width must be an integer"):
        write_picasso_hdf5(locs_table(), tmp_path / "l.hdf5", width=8.5, height=8, n_frames=8)
    with pytest.raises(ValueError, match="n_frames must be > 0"):
        write_picasso_hdf5(locs_table(), tmp_path / "l.hdf5", width=8, height=8, n_frames=0)
    with pytest.raises(ValueError, match="pixel_size_nm must be > 0"):
        write_thunderstorm_csv(locs_table(), tmp_path / "l.csv", pixel_size_nm=-1.0)
    assert list(tmp_path.iterdir()) == []


# --- bad tables and atomic writes ---------------------------------------------------------------


def _write_both(table, tmp_path):
    with pytest.raises(ValueError) as csv_error:
        write_thunderstorm_csv(table, tmp_path / "locs.csv", pixel_size_nm=PIXEL_NM)
    with pytest.raises(ValueError) as h5_error:
        write_picasso_hdf5(
            table, tmp_path / "locs.hdf5", width=WIDTH, height=HEIGHT, n_frames=FRAMES
        )
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
    return str(csv_error.value), str(h5_error.value)


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("x_px", np.nan, "column 'x_px' has 1 NaN or infinite value"),
        ("y_px", np.inf, "column 'y_px' has 1 NaN or infinite value"),
        ("photons", np.nan, "column 'photons' has 1 NaN or infinite value"),
        ("frame", -1, "column 'frame' has 1 negative or fractional value"),
        ("frame", 1.5, "column 'frame' has 1 negative or fractional value"),
        ("sx_px", 0.0, "column 'sx_px' has 1 zero or negative value"),
        ("uncertainty_y_px", -0.1, "column 'uncertainty_y_px' has 1 negative value"),
    ],
)
def test_bad_values_fail_before_writing(tmp_path, column, value, message):
    table = locs_table().astype({column: float})
    table.loc[2, column] = value
    for text, name in zip(_write_both(table, tmp_path), ("locs.csv", "locs.hdf5"), strict=True):
        assert f"cannot write {tmp_path / name}: {message}" in text


def test_missing_and_non_numeric_columns(tmp_path):
    for column in LOCALISATION_COLUMNS:
        csv_text, h5_text = _write_both(locs_table().drop(columns=column), tmp_path)
        assert f"lacks columns ['{column}']" in csv_text and column in h5_text
    table = locs_table()
    table["x_px"] = ["1", "2", "3"]
    csv_text, _ = _write_both(table, tmp_path)
    assert re.search(r"column 'x_px' has dtype \w+, expected numbers", csv_text)


def test_failed_writes_leave_old_files_and_no_partial_files(tmp_path, monkeypatch):
    csv_path, h5_path = tmp_path / "locs.csv", tmp_path / "locs.hdf5"
    write_thunderstorm_csv(locs_table(), csv_path, pixel_size_nm=PIXEL_NM)
    write_picasso_hdf5(locs_table(), h5_path, width=WIDTH, height=HEIGHT, n_frames=FRAMES)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports.np, "savetxt", boom)
    monkeypatch.setattr(exports.yaml, "safe_dump_all", boom)
    bigger = pd.concat([locs_table()] * 2, ignore_index=True)
    with pytest.raises(RuntimeError, match="disk full"):
        write_thunderstorm_csv(bigger, csv_path, pixel_size_nm=PIXEL_NM)
    with pytest.raises(RuntimeError, match="disk full"):
        write_picasso_hdf5(bigger, h5_path, width=WIDTH, height=HEIGHT, n_frames=FRAMES)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

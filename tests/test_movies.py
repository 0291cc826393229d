"""User movies (multi-page TIFF, OME-TIFF, ImageJ, compressed, page by page) and camera maps:
round trips against the arrays written with tifffile, and one clear error per kind of bad input."""

import re

import numpy as np
import pytest
import tifffile

from diffloc.data.files import DataError, MovieError
from diffloc.data.movies import open_movie, read_camera
from diffloc.physics.camera import Camera

N, H, W = 7, 5, 9  # non-square frames: a transposed read would fail


def frames(dtype=np.uint16, seed=0) -> np.ndarray:
    """Distinct pixel values, [N, H, W]."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 60000, size=(N, H, W)).astype(dtype)


def write_pages(path, data, **kwargs) -> None:
    """A movie written one frame at a time (each page its own series in tifffile's view)."""
    with tifffile.TiffWriter(path) as writer:
        for frame in data:
            writer.write(frame, **kwargs)


WRITERS = {
    # name: (writer, memory-mapped?)
    "multipage": (lambda p, d: tifffile.imwrite(p, d), True),
    "ome": (lambda p, d: tifffile.imwrite(p, d, ome=True, metadata={"axes": "TYX"}), True),
    "imagej": (lambda p, d: tifffile.imwrite(p, d, imagej=True, metadata={"axes": "TYX"}), True),
    "big-endian": (lambda p, d: tifffile.imwrite(p, d, byteorder=">"), True),
    "zlib": (lambda p, d: tifffile.imwrite(p, d, compression="zlib"), False),
    "ome-zlib": (
        lambda p, d: tifffile.imwrite(p, d, ome=True, compression="zlib", metadata={"axes": "TYX"}),
        False,
    ),
    "tiled": (lambda p, d: tifffile.imwrite(p, d, tile=(16, 16)), False),
    "page-by-page": (write_pages, False),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_round_trip(tmp_path, kind):
    write, memmapped = WRITERS[kind]
    data = frames()
    path = tmp_path / ("movie.ome.tif" if "ome" in kind else "movie.tif")
    write(path, data)
    with open_movie(path) as movie:
        assert movie.n_frames == N and len(movie) == N
        assert movie.shape == (H, W)
        assert movie.memmapped is memmapped
        full = movie.read(0, N)
        assert full.dtype == np.float32 and full.shape == (N, H, W)
        np.testing.assert_array_equal(full, data.astype(np.float32))
        np.testing.assert_array_equal(movie.read(2, 5), data[2:5].astype(np.float32))
        np.testing.assert_array_equal(movie.read(6, 7), data[6:7].astype(np.float32))
        assert movie.read(3, 3).shape == (0, H, W)


def test_uncompressed_movie_is_a_memory_map(tmp_path):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, frames())
    movie = open_movie(path)
    assert isinstance(movie._memmap, np.memmap) and movie._tif is None
    movie.close()
    with pytest.raises(ValueError, match="closed"):
        movie.read(0, 1)


def test_float_movie_and_chunks(tmp_path):
    data = frames(np.float32) / 7.0
    path = tmp_path / "movie.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TYX"})
    with open_movie(path) as movie:
        chunks = list(movie.chunks(3))
        assert [first for first, _ in chunks] == [0, 3, 6]
        np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), data)
        assert [first for first, _ in movie.chunks(4, start=1, stop=6)] == [1, 5]


def test_thousands_of_frames(tmp_path):
    data = np.arange(3000 * 4 * 6, dtype=np.uint16).reshape(3000, 4, 6)
    for name, kwargs in (("raw.tif", {}), ("zlib.tif", {"compression": "zlib"})):
        tifffile.imwrite(tmp_path / name, data, **kwargs)
        with open_movie(tmp_path / name) as movie:
            assert movie.n_frames == 3000 and movie.shape == (4, 6)
            np.testing.assert_array_equal(movie.read(2990, 3000), data[2990:])


@pytest.mark.parametrize("bad", [(-1, 2), (3, 2), (0, N + 1)])
def test_frame_range_outside_the_movie(tmp_path, bad):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, frames())
    with open_movie(path) as movie, pytest.raises(ValueError, match=r"movie\.tif: frame range"):
        movie.read(*bad)


def _bad_file(tmp_path, kind):
    path = tmp_path / "movie.tif"
    if kind == "missing":
        pass
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not a TIFF":
        path.write_text("frame,x,y\n1,2,3\n")
    elif kind == "single page":
        tifffile.imwrite(path, frames()[0])
    elif kind == "single OME plane":
        tifffile.imwrite(path, frames()[0], ome=True)
    elif kind == "RGB":
        tifffile.imwrite(path, np.zeros((N, H, W, 3), np.uint8), photometric="rgb")
    elif kind == "4-D":
        tifffile.imwrite(path, np.zeros((2, 3, H, W), np.uint16), photometric="minisblack")
    elif kind == "series of two shapes":
        with tifffile.TiffWriter(path) as writer:
            writer.write(np.zeros((H, W), np.uint16))
            writer.write(np.zeros((H + 1, W), np.uint16))
    elif kind == "complex pixels":
        tifffile.imwrite(path, np.zeros((N, H, W), np.complex64))
    return path


BAD = {
    "missing": "file is missing",
    "empty": "empty file",
    "not a TIFF": "not a TIFF file",
    "single page": "single 2-D image",
    "single OME plane": "single 2-D image",
    "RGB": "colour image data",
    "4-D": "4 dimensions",
    "series of two shapes": "2 image series",
    "complex pixels": "not supported",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_movie_fails_with_its_message(tmp_path, kind):
    path = _bad_file(tmp_path, kind)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(MovieError, match=re.escape(str(path)) + ": .*" + BAD[kind]):
        open_movie(path)
    assert sorted(tmp_path.iterdir()) == before  # nothing written
    assert issubclass(MovieError, DataError)


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_in_the_requested_range(tmp_path, compression, value):
    data = frames(np.float32)
    data[3, 1, 2] = value
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, compression=compression)
    with open_movie(path) as movie:
        movie.read(0, 3)  # the bad frame is not in this range
        movie.read(4, N)
        with pytest.raises(MovieError, match=r"movie\.tif: 1 NaN or infinite .* frame 3"):
            movie.read(2, 5)


def test_float64_beyond_float32_is_not_finite(tmp_path):
    data = frames(np.float64)
    data[1, 0, 0] = 1e300
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data)
    with open_movie(path) as movie, pytest.raises(MovieError, match="frame 1"):
        movie.read(0, N)


# --- camera maps ---------------------------------------------------------------------------


def test_scalar_camera():
    camera = read_camera((H, W), gain=2.5, offset=100, readout_var=4.0)
    assert isinstance(camera, Camera) and camera.shape == (H, W)
    for name, value in (("gain", 2.5), ("offset", 100.0), ("readout_var", 4.0)):
        arr = getattr(camera, name)
        assert arr.dtype == np.float32 and np.all(arr == value)
    assert read_camera((H, W), gain=1, offset=0, readout_var=0, em_gain=1).shape == (H, W)


def _maps(seed=1):
    rng = np.random.default_rng(seed)
    gain = rng.uniform(1.5, 3.0, (H, W)).astype(np.float32)
    offset = rng.uniform(90, 110, (H, W)).astype(np.float32)
    var = rng.uniform(0.0, 20.0, (H, W)).astype(np.float32)
    return gain, offset, var


def test_per_pixel_maps_from_tif_and_npy(tmp_path):
    gain, offset, var = _maps()
    np.save(tmp_path / "gain.npy", gain)
    tifffile.imwrite(tmp_path / "offset.tif", offset)
    tifffile.imwrite(tmp_path / "var.tiff", var[None])  # a (1, H, W) stack is one map
    camera = read_camera(
        (H, W),
        gain=tmp_path / "gain.npy",
        offset=str(tmp_path / "offset.tif"),
        readout_var=tmp_path / "var.tiff",
    )
    np.testing.assert_array_equal(camera.gain, gain)
    np.testing.assert_array_equal(camera.offset, offset)
    np.testing.assert_array_equal(camera.readout_var, var)
    mixed = read_camera((H, W), gain=2.0, offset=tmp_path / "offset.tif", readout_var=1.0)
    np.testing.assert_array_equal(mixed.offset, offset)
    assert np.all(mixed.gain == 2.0)


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
@pytest.mark.parametrize("shape", [(W, H), (H, W + 1), (2, H, W)])
def test_camera_map_of_the_wrong_shape(tmp_path, suffix, shape):
    path = tmp_path / f"gain{suffix}"
    array = np.full(shape, 2.0, np.float32)
    np.save(path, array) if suffix == ".npy" else tifffile.imwrite(path, array)
    with pytest.raises(MovieError, match=re.escape(str(path)) + r": camera gain map has shape"):
        read_camera((H, W), gain=path, offset=100, readout_var=1)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("gain", 0.0, "not > 0"),
        ("gain", np.nan, "NaN or infinite"),
        ("readout_var", -1.0, "not >= 0"),
        ("offset", np.inf, "NaN or infinite"),
    ],
)
def test_camera_map_with_bad_values(tmp_path, name, value, message):
    good = dict(zip(("gain", "offset", "readout_var"), _maps(), strict=True))
    good[name][2, 3] = value
    path = tmp_path / f"{name}.npy"
    np.save(path, good[name])
    kwargs = {"gain": 2.0, "offset": 100.0, "readout_var": 1.0, name: path}
    with pytest.raises(MovieError, match=re.escape(str(path)) + f": camera {name} map .*{message}"):
        read_camera((H, W), **kwargs)


def test_camera_map_files_that_are_not_maps(tmp_path):
    with pytest.raises(MovieError, match=r"gain\.txt: camera gain map must be"):
        (tmp_path / "gain.txt").write_text("2.0")
        read_camera((H, W), gain=tmp_path / "gain.txt", offset=0, readout_var=0)
    with pytest.raises(MovieError, match=r"gone\.npy: file is missing"):
        read_camera((H, W), gain=tmp_path / "gone.npy", offset=0, readout_var=0)
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(MovieError, match=r"bad\.npy: cannot read the camera offset map"):
        read_camera((H, W), gain=1, offset=tmp_path / "bad.npy", readout_var=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gain": 0.0}, "camera gain must be > 0"),
        ({"readout_var": -2.0}, "camera readout_var must be >= 0"),
        ({"offset": float("nan")}, "camera offset must be finite"),
        ({"gain": [1.0]}, "must be a number or"),
        ({"em_gain": 300.0}, "EM gain 300.0 > 1 .*excess noise"),
        ({"em_gain": 0.5}, "EM gain must be a finite number >= 1"),
    ],
)
def test_bad_camera_numbers(kwargs, message):
    args = {"gain": 2.0, "offset": 100.0, "readout_var": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        read_camera((H, W), **args)

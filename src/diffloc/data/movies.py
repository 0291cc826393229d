"""A user's movie and camera calibration in: TIFF / OME-TIFF stacks and camera maps.

Movies. `open_movie(path)` validates a multi-page TIFF or OME-TIFF (also ImageJ hyperstacks and
files written page by page) and returns a `Movie`: `n_frames`, `shape` (H, W) and
`read(start, stop)`, the frames [start, stop) as float32 [n, H, W]. Uncompressed, contiguous
pixel data are memory-mapped (`tifffile.memmap`; `Movie.memmapped` is True); anything else
(compressed, tiled, scattered pages) is read lazily, page by page, through an open
`tifffile.TiffFile`, so a movie of any length costs only the frames read. The frame axis is the
first axis of the one image series, whatever the file calls it (T, Z, C, I or Q); x is the last
axis (columns) and y the one before (rows), as everywhere in diffloc.

Bad input fails fast with a `MovieError` whose message starts with the file's path: a missing
or empty file, not a TIFF, a single 2-D image (one page) where a stack of frames is expected,
colour (RGB/RGBA samples) or more than 3 dimensions, several image series of different
shapes, a pixel type that is not real numbers, and (checked on each `read`) NaN or infinite
pixels in the frames read.

Camera maps. `read_camera(shape, gain=..., offset=..., readout_var=...)` builds a
`diffloc.physics.camera.Camera` from scalars or per-pixel (sCMOS) maps in .tif/.tiff or .npy
files, in the Camera's units: gain in ADU per photoelectron (the inverse of the "e-/ADU"
conversion factor most camera sheets quote), offset in ADU, readout variance in ADU^2 (the
square of the readout noise in ADU). A map must have the movie's frame shape.

EM gain. The usual EMCCD convention is an effective gain g_eff = G_EM * g (ADU per
photoelectron at the sensor) and an excess noise factor F^2 = 2 at high EM gain: the
multiplication register doubles the variance of the signal, var(x) = 2 g_eff^2 omega + w^2
(Mortensen et al. 2010; ThunderSTORM's MoleculeDescriptor.Fitting.uncertaintyXY and Picasso's
gausslq.localization_precision carry the same factor 2 for EMCCD data). `Camera` models
x = g * Poisson(omega) + N(o, w^2), whose signal variance is g^2 omega: it has no excess-noise
term. Matching both moments would need gain 2 g_eff and half the photons, which misreports
every photon count. So `read_camera` rejects an EM gain above 1 with a message saying why,
instead of returning a camera whose uncertainties would be too small by a factor sqrt(2); an
EM gain of 1 (or None) is a conventional CCD/sCMOS camera.
"""

import math
import os
from collections.abc import Iterator
from numbers import Real
from pathlib import Path

import numpy as np
import tifffile

from diffloc.data.files import MovieError
from diffloc.physics.camera import Camera

MAP_SUFFIXES = (".tif", ".tiff", ".npy")


class Movie:
    """A validated grayscale TIFF movie: `n_frames` frames of `shape` (H, W), read by range.

    Open it with `open_movie`. `read(start, stop)` returns float32 [stop - start, H, W].
    `memmapped` says whether the pixels are memory-mapped (uncompressed, contiguous data) or
    decoded page by page. Not thread-safe (one open file handle); close it, or use it in a
    `with` block, to release the file.
    """

    def __init__(
        self,
        path: Path,
        tif: tifffile.TiffFile | None,
        series: int | None,
        n_frames: int,
        shape: tuple[int, int],
        dtype: np.dtype,
        memmap: np.ndarray | None,
    ) -> None:
        self.path = path
        self.n_frames = n_frames
        self.shape = shape
        self.dtype = dtype
        self._tif = tif
        self._series = series  # None: frames are the file's pages, one per series
        self._memmap = memmap

    @property
    def memmapped(self) -> bool:
        """True if the pixels are memory-mapped, False if decoded page by page."""
        return self._memmap is not None

    def __repr__(self) -> str:
        mode = "memory-mapped" if self.memmapped else "page by page"
        return f"Movie({str(self.path)!r}, n_frames={self.n_frames}, shape={self.shape}, {mode})"

    def __len__(self) -> int:
        return self.n_frames

    def __enter__(self) -> "Movie":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the file (the memory map and any open TiffFile)."""
        self._memmap = None
        if self._tif is not None:
            self._tif.close()
            self._tif = None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as float32 [stop - start, H, W]; MovieError on NaN/inf pixels."""
        if isinstance(start, bool) or isinstance(stop, bool):
            raise TypeError("frame indices must be integers")
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop <= self.n_frames:
            raise ValueError(
                f"{self.path}: frame range [{start}, {stop}) is not within the movie's "
                f"{self.n_frames} frames [0, {self.n_frames})"
            )
        h, w = self.shape
        if start == stop:
            return np.empty((0, h, w), dtype=np.float32)
        if self._memmap is None and self._tif is None:
            raise ValueError(f"{self.path}: the movie is closed")
        if self._memmap is not None:
            raw = self._memmap[start:stop]
        else:
            try:
                raw = self._tif.asarray(key=list(range(start, stop)), series=self._series)
            except Exception as exc:  # decoder and I/O errors all mean an unreadable file
                raise MovieError(
                    f"{self.path}: cannot read frames [{start}, {stop}) "
                    f"({type(exc).__name__}: {exc}); the file is corrupt or truncated"
                ) from exc
        with np.errstate(over="ignore"):  # float64 beyond float32's range -> inf, caught below
            frames = np.asarray(raw, dtype=np.float32).reshape(stop - start, h, w)
        finite = np.isfinite(frames)
        if not finite.all():
            bad = np.flatnonzero(~finite.all(axis=(1, 2)))
            raise MovieError(
                f"{self.path}: {int((~finite).sum())} NaN or infinite pixel(s) in frames "
                f"[{start}, {stop}), first in frame {start + int(bad[0])}; "
                "a movie's pixels must be finite numbers"
            )
        return frames

    def chunks(
        self, size: int, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first frame index, frames float32 [<= size, H, W]) over [start, stop)."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        stop = self.n_frames if stop is None else stop
        for first in range(start, stop, size):
            yield first, self.read(first, min(first + size, stop))


def open_movie(path: str | os.PathLike) -> Movie:
    """Open and validate a multi-page TIFF or OME-TIFF movie; MovieError naming the file if bad."""
    path = Path(path)
    _check_file(path, "a TIFF movie")
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:
        raise MovieError(
            f"{path}: not a TIFF file, or a corrupt one ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        return _movie(path, tif)
    except BaseException:
        tif.close()
        raise


def _movie(path: Path, tif: tifffile.TiffFile) -> Movie:
    """The Movie of an open TiffFile (closed here if memory-mapped), or MovieError."""
    try:
        series = list(tif.series)
    except Exception as exc:
        raise MovieError(f"{path}: corrupt TIFF ({type(exc).__name__}: {exc})") from exc
    if not series:
        raise MovieError(f"{path}: the TIFF holds no images")
    for s in series:
        _check_pixels(path, s)
    if len(series) == 1:
        s = series[0]
        shape = tuple(int(n) for n in s.shape)
        if len(shape) == 2:
            raise MovieError(
                f"{path}: holds a single 2-D image of shape {list(shape)} (one page), "
                "expected a stack of frames (a multi-page TIFF movie)"
            )
        if len(shape) != 3:
            raise MovieError(
                f"{path}: image data have {len(shape)} dimensions (axes {s.axes}, shape "
                f"{list(shape)}), expected 3: frames x height x width of one grayscale channel"
            )
        n_frames, h, w = shape
        try:
            memmap = tifffile.memmap(path, series=0, mode="r")
        except Exception:  # compressed, tiled, scattered pages, foreign byte layout: lazy reads
            memmap = None
        if memmap is not None and memmap.size == n_frames * h * w:
            tif.close()
            return Movie(
                path, None, None, n_frames, (h, w), s.dtype, memmap.reshape(n_frames, h, w)
            )
        if len(s.pages) != n_frames:
            raise MovieError(
                f"{path}: {n_frames} frames stored in {len(s.pages)} pages and not "
                "memory-mappable; save the movie as a multi-page TIFF, one frame per page"
            )
        return Movie(path, tif, 0, n_frames, (h, w), s.dtype, None)
    # Several series: a movie written page by page (one 2-D series per page) is still a stack.
    shapes = {(tuple(int(n) for n in s.shape), np.dtype(s.dtype)) for s in series}
    single_pages = all(len(s.pages) == 1 for s in series) and len(tif.pages) == len(series)
    if len(shapes) != 1 or len(next(iter(shapes))[0]) != 2 or not single_pages:
        listed = ", ".join(f"{s.axes} {list(s.shape)}" for s in series[:5])
        raise MovieError(
            f"{path}: holds {len(series)} image series ({listed}"
            f"{', ...' if len(series) > 5 else ''}), expected one stack of frames of one shape"
        )
    (h, w), dtype = next(iter(shapes))
    return Movie(path, tif, None, len(series), (h, w), dtype, None)


def _check_pixels(path: Path, series) -> None:
    """MovieError unless a series holds one grayscale channel of real numbers."""
    samples = series.axes.count("S")
    if samples:
        n = series.shape[series.axes.index("S")]
        raise MovieError(
            f"{path}: colour image data ({n} samples per pixel, axes {series.axes}, shape "
            f"{list(series.shape)}), expected grayscale frames; convert the movie to one "
            "grayscale channel"
        )
    dtype = np.dtype(series.dtype)
    if dtype.kind not in "uif":
        raise MovieError(
            f"{path}: pixel type {dtype} is not supported, expected integer or float pixels"
        )


def read_camera(
    shape: tuple[int, int],
    *,
    gain: float | str | os.PathLike,
    offset: float | str | os.PathLike,
    readout_var: float | str | os.PathLike,
    em_gain: float | None = None,
) -> Camera:
    """The Camera of a movie with frames of `shape` (H, W), from scalars or per-pixel map files.

    Each of `gain` (ADU per photoelectron), `offset` (ADU) and `readout_var` (ADU^2) is a
    number (the same on every pixel) or the path of a .tif/.tiff/.npy map of shape (H, W)
    (an sCMOS calibration). `em_gain` above 1 is rejected (see the module docstring: Camera has
    no EMCCD excess-noise term). MovieError naming the file for a bad map file, ValueError for
    a bad number.
    """
    shape = (int(shape[0]), int(shape[1]))
    if em_gain is not None:
        if isinstance(em_gain, bool) or not isinstance(em_gain, Real):
            raise ValueError(f"EM gain must be a number, got {em_gain!r}")
        if not (math.isfinite(em_gain) and em_gain >= 1):
            raise ValueError(f"EM gain must be a finite number >= 1, got {em_gain}")
        if em_gain > 1:
            raise ValueError(
                f"EM gain {em_gain} > 1 (EMCCD) is not supported: the EM register's excess "
                "noise doubles the signal variance (F^2 = 2), which diffloc's camera model "
                "(gain * Poisson + Gaussian readout) cannot express, so every uncertainty would "
                "be too small by sqrt(2). Use a conventional CCD or sCMOS movie, or EM gain 1"
            )
    maps = {
        "gain": _camera_map(gain, "gain", shape),
        "offset": _camera_map(offset, "offset", shape),
        "readout_var": _camera_map(readout_var, "readout_var", shape),
    }
    return Camera(**maps)


_CAMERA_RULES = {
    "gain": (lambda a: a > 0, "> 0 (ADU per photoelectron)"),
    "offset": (np.isfinite, "finite (ADU)"),
    "readout_var": (lambda a: a >= 0, ">= 0 (ADU^2, the square of the readout noise)"),
}


def _camera_map(value, name: str, shape: tuple[int, int]) -> np.ndarray:
    """A float32 [H, W] camera map from a number or a map file; checked against `_CAMERA_RULES`."""
    rule, wanted = _CAMERA_RULES[name]
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        array = _load_map(path, name)
        while array.ndim > 2 and array.shape[0] == 1:  # a single-page stack (1, H, W)
            array = array[0]
        if array.shape != shape:
            raise MovieError(
                f"{path}: camera {name} map has shape {list(array.shape)}, expected "
                f"{list(shape)} (the movie's frame shape, height x width)"
            )
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise MovieError(f"{path}: camera {name} map has NaN or infinite values")
        bad = ~rule(array)
        if bad.any():
            raise MovieError(
                f"{path}: camera {name} map has {int(bad.sum())} pixel(s) that are not {wanted}"
            )
        return array
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(
            f"camera {name} must be a number or a .tif/.tiff/.npy map path, got {value!r}"
        )
    if not math.isfinite(value) or not rule(np.float64(value)):
        raise ValueError(f"camera {name} must be {wanted}, got {value}")
    return np.full(shape, value, dtype=np.float32)


def _load_map(path: Path, name: str) -> np.ndarray:
    """The numeric array in a .tif/.tiff/.npy camera-map file; MovieError if unreadable."""
    _check_file(path, f"a camera {name} map")
    suffix = path.suffix.lower()
    if suffix not in MAP_SUFFIXES:
        raise MovieError(
            f"{path}: camera {name} map must be a {', '.join(MAP_SUFFIXES)} file, got {suffix!r}"
        )
    try:
        array = np.load(path, allow_pickle=False) if suffix == ".npy" else tifffile.imread(path)
    except Exception as exc:
        raise MovieError(
            f"{path}: cannot read the camera {name} map ({type(exc).__name__}: {exc})"
        ) from exc
    array = np.asarray(array)
    if array.dtype.kind not in "uif":
        raise MovieError(f"{path}: camera {name} map has dtype {array.dtype}, expected numbers")
    return array


def _check_file(path: Path, what: str) -> None:
    """MovieError unless `path` is a non-empty file."""
    if not path.exists():
        raise MovieError(f"{path}: file is missing (expected {what})")
    if not path.is_file():
        raise MovieError(f"{path}: not a file (expected {what})")
    if path.stat().st_size == 0:
        raise MovieError(f"{path}: empty file (0 bytes), expected {what}")

"""Analysis settings: the `analyze` config section (or the CLI's options) plus the models' card.

Lengths are in LR (camera) pixels unless a name says nm or hr; psi's tiles are the models'
training size (geometry.lr_size LR px, the KDE lr_size * upsample HR px).
"""

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from diffloc.analyze.localise import POSITIONS, SIGNIFICANCE
from diffloc.analyze.nulls import is_null
from diffloc.analyze.recalibration import UNCERTAINTY_LEVEL
from diffloc.localize.detection import DetectorSettings, detector_settings

# The `analyze` config keys that shape the computation (the rest name files), with the CLI's
# defaults, equal to config/config.yaml's (threads: the card's calibration; the CLI runs one
# process per core of analyze.cli.CLI_THREADS threads, the workflow's chunk jobs job_threads).
DEFAULTS = {
    "pixel_size_nm": 108.3,
    "psf_sigma_nm": None,
    "chunk_frames": 500,
    "batch_pixels": 65536,
    "psi_frames": 1,
    "psi_maps": True,
    "tile_margin": 3,
    "fit_half_width": 3,
    "position": "mle",
    "merge_px": 1.0,
    "residual_rounds": 2,
    "min_snr": 4.45,
    "significance": "score",
    "levels": [0.68, 0.95],
    "threads": 2,
    "device": "auto",
}


@dataclass(frozen=True)
class AnalyzeSettings:
    """Everything one chunk of frames needs besides the frames, camera and networks."""

    pixel_size_nm: float  # the movie's (and the models') camera pixel pitch
    sigma_x: float  # PSF std (LR px)
    upsample: int  # HR px per LR px
    tile: int  # psi's tile side (LR px): the models' geometry.lr_size
    detector: DetectorSettings
    match_radius: float  # HR px: a sample's detection belongs to a localisation within this
    sampler: dict  # diffusion.sampler: kind, steps, spacing, k, batch_size, threads
    batch_pixels: int  # LR pixels per phi forward pass (frames per pass = this / H W)
    psi_frames: int  # psi samples frames [0, psi_frames); -1: every frame
    psi_maps: bool  # psi samples every tile with signal (render maps) | only localisations' tiles
    tile_margin: int  # LR px of context around a psi tile's core
    fit_half_width: int  # photon/background fit and CRLB on (2 r + 1)^2 camera pixels
    position: str  # kde: phi's refined detection | mle: Poisson MLE on the camera window
    merge_px: float  # LR px: closer detections (mle: and fits) in a frame are one emitter
    residual_rounds: int  # mle: rounds adding the emitters phi missed, from the fits' residual
    min_snr: float  # a detection is kept when its significance statistic >= this
    significance: str  # wald: fitted photons / sqrt(CRLB of photons) | score: score test's z
    levels: tuple[float, ...]  # central intervals of psi's position spread (0.68 among them)
    interval_scales: dict | None  # the card's position_calibration (None: psi's own intervals)
    threads: int  # torch CPU threads of the analysis (phi and psi)
    device: str  # auto | cpu | cuda
    seed: int

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        if self.significance not in SIGNIFICANCE:
            raise ValueError(
                f"significance must be one of {SIGNIFICANCE}, got {self.significance!r}"
            )
        if UNCERTAINTY_LEVEL not in self.levels:
            raise ValueError(
                f"analyze.levels must include {UNCERTAINTY_LEVEL} (its half-width is the "
                f"reported uncertainty), got {list(self.levels)}"
            )
        if self.interval_scales is not None:
            if "floor_nm" not in self.interval_scales:
                raise ValueError(
                    "the models' card calibrates psi's intervals without a floor (floor_nm): it "
                    "was built by an older diffloc; rebuild it (snakemake analyze_models)"
                )
            if "detection" not in self.interval_scales:
                raise ValueError(
                    "the models' card does not record the detection settings psi's intervals "
                    "were calibrated with: it was built by an older diffloc; rebuild it "
                    "(snakemake analyze_models)"
                )
            differ = {
                k: (getattr(self, k), v)
                for k, v in self.interval_scales["detection"].items()
                if getattr(self, k) != v
            }
            if differ:
                warnings.warn(
                    "psi's position intervals were calibrated for the localisations of other "
                    "detection settings (this analysis, card): "
                    + ", ".join(f"analyze.{k} {a!r}, {b!r}" for k, (a, b) in differ.items())
                    + "; their coverage is not measured for these",
                    stacklevel=2,
                )
            missing = set(self.levels) - set(self.interval_scales["levels"])
            if missing:
                raise ValueError(
                    f"analyze.levels {sorted(missing)}: the models' psi intervals are calibrated "
                    f"at {self.interval_scales['levels']} only; use those levels or rebuild the "
                    "card (analyze_models) with these analyze.levels"
                )
        if self.tile - 2 * self.tile_margin < 1:
            raise ValueError(
                f"tile_margin {self.tile_margin} leaves no core in a {self.tile} px psi tile"
            )
        if (
            self.psi_frames < -1
            or self.fit_half_width < 1
            or self.batch_pixels < 1
            or self.min_snr < 0
            or self.merge_px < 0
            or self.residual_rounds < 0
        ):
            raise ValueError(f"invalid analysis settings: {self}")

    @property
    def nm_per_hr(self) -> float:
        """nm per HR (KDE) pixel."""
        return self.pixel_size_nm / self.upsample

    def runs_psi(self, frame: int) -> bool:
        """Whether psi samples movie frame `frame` (0-based)."""
        return self.psi_frames == -1 or frame < self.psi_frames


def psi_frame_count(value: int | str) -> int:
    """`psi_frames` as an int: a count >= 0 (also as a string, from a command line), or -1 for
    'all'."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return -1
    try:
        count = int(value) if isinstance(value, str) else value
    except ValueError:
        count = None
    if not isinstance(count, int) or isinstance(count, bool) or count < -1:
        raise ValueError(f"psi_frames must be a count >= 0 or 'all', got {value!r}")
    return count


def analyze_settings(
    analyze: dict, card: dict, seed: int, config: dict | None = None
) -> AnalyzeSettings:
    """Settings from the `analyze` section (missing keys: DEFAULTS) and the models' card; the
    detector and sampler come from `config` (an analysis config) when given, else the card."""
    a = {**DEFAULTS, **{k: v for k, v in analyze.items() if v is not None or k == "psf_sigma_nm"}}
    source = config if config is not None else card
    sampler = config["diffusion"]["sampler"] if config is not None else card["sampler"]
    return AnalyzeSettings(
        pixel_size_nm=float(a["pixel_size_nm"]),
        sigma_x=float(card["psf"]["sigma_x"]),
        upsample=int(card["geometry"]["upsample"]),
        tile=int(card["geometry"]["lr_size"]),
        detector=detector_settings({"localize": source["localize"], "kde": source["kde"]}),
        match_radius=float(source["localize"]["match_radius"]),
        sampler=dict(sampler),
        batch_pixels=int(a["batch_pixels"]),
        psi_frames=psi_frame_count(a["psi_frames"]),
        psi_maps=bool(a["psi_maps"]),
        tile_margin=int(a["tile_margin"]),
        fit_half_width=int(a["fit_half_width"]),
        position=str(a["position"]),
        merge_px=float(a["merge_px"]),
        residual_rounds=int(a["residual_rounds"]),
        min_snr=float(a["min_snr"]),
        significance=str(a["significance"]),
        levels=tuple(float(c) for c in a["levels"]),
        interval_scales=card.get("position_calibration"),
        threads=int(a["threads"]),
        device=str(a["device"]),
        seed=int(seed),
    )


def camera_value(value: float | str | os.PathLike, name: str) -> float | Path:
    """A camera setting as given on a command line or in a config: a number (also a numeric
    string, as `snakemake --config` passes them) or the path of a per-pixel map file."""
    if value is None:
        raise ValueError(f"camera {name} is not set: give a number or a map file")
    if isinstance(value, bool):
        raise ValueError(f"camera {name} must be a number or a map path, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return Path(value)


def em_gain_value(value: float | str | None) -> float | None:
    """The camera's EM gain as given on a command line or in a config: None (also 'null' or
    'none', as `snakemake --config` passes YAML's null) or a number."""
    if is_null(value):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except ValueError:
        raise ValueError(f"camera em_gain must be a number or null, got {value!r}") from None

"""`diffloc analyze MOVIE.tif --models DIR --out DIR ...`: the command-line entry point.

Runs the same code as the workflow's `analyze` target (open and check, chunks of frames, merge,
all-or-nothing outputs), the chunks on this process and helper processes (analyze.workers).
Bad input ends with one line on stderr naming the problem (no traceback) and exit status 2;
nothing is written.
"""

import argparse
import logging
import sys
from pathlib import Path

import yaml

from diffloc.analyze.card import read_card
from diffloc.analyze.localise import POSITIONS, SIGNIFICANCE
from diffloc.analyze.outputs import write_outputs
from diffloc.analyze.pipeline import merge_chunks
from diffloc.analyze.session import open_analysis
from diffloc.analyze.settings import DEFAULTS, psi_frame_count
from diffloc.analyze.workers import analyse_chunks, auto_workers
from diffloc.config import ConfigError
from diffloc.data.files import DataError
from diffloc.runtime import resolve_device

log = logging.getLogger("diffloc")

CAMERA_KEYS = ("gain", "offset", "readout_var", "em_gain")
CLI_THREADS = 1  # torch threads per worker process: one process per core (analyze.workers)


def parser() -> argparse.ArgumentParser:
    """The `diffloc` argument parser (sub-command `analyze`)."""
    top = argparse.ArgumentParser(prog="diffloc", description="diffloc command-line tools")
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "analyze",
        help="localise a TIFF movie with trained phi/psi models",
        description="Localise every frame of a (multi-page, OME-) TIFF movie with phi, estimate "
        "photons, background and sqrt(CRLB) per localisation, and psi's position uncertainty on "
        "the first --psi-frames frames; write Parquet, ThunderSTORM CSV, Picasso HDF5 and renders.",
    )
    p.add_argument("movie", type=Path, help="multi-page TIFF / OME-TIFF movie (ADU)")
    p.add_argument(
        "--models", type=Path, required=True, help="folder with phi.pt, psi.pt, analysis.json"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--pixel-size", type=float, required=True, help="camera pixel size in the sample (nm)"
    )
    p.add_argument(
        "--psf-sigma-nm",
        type=float,
        default=None,
        help="PSF sigma (nm), checked against the models'",
    )
    p.add_argument(
        "--camera",
        type=Path,
        default=None,
        help="YAML file with gain, offset, readout_var, em_gain",
    )
    p.add_argument("--gain", default=None, help="ADU per photoelectron: number or .tif/.npy map")
    p.add_argument("--offset", default=None, help="ADU: number or .tif/.npy map")
    p.add_argument("--readout-var", dest="readout_var", default=None, help="ADU^2: number or map")
    p.add_argument(
        "--em-gain",
        dest="em_gain",
        type=float,
        default=None,
        help="EMCCD gain (only 1 is supported)",
    )
    p.add_argument(
        "--psi-frames",
        default=str(DEFAULTS["psi_frames"]),
        help="psi samples the first N frames (0: none, 'all')",
    )
    p.add_argument(
        "--no-psi-maps",
        dest="psi_maps",
        action="store_false",
        help="psi samples only the tiles holding localisations: their uncertainties at about half"
        " the cost, no psi render maps (render_psi_* stay zero)",
    )
    p.add_argument(
        "--min-snr",
        dest="min_snr",
        type=float,
        default=DEFAULTS["min_snr"],
        help="keep detections whose significance statistic (--significance) is >= this (0: all)",
    )
    p.add_argument(
        "--significance",
        choices=SIGNIFICANCE,
        default=DEFAULTS["significance"],
        help="wald: fitted photons / sqrt(CRLB of photons), background fitted on the window; "
        "score: score test of no emitter, background from a ring around the window",
    )
    p.add_argument(
        "--position",
        choices=POSITIONS,
        default=DEFAULTS["position"],
        help="mle: Poisson maximum-likelihood fit on the camera pixels, started at the detection; "
        "kde: phi's refined detection",
    )
    p.add_argument(
        "--merge-px",
        dest="merge_px",
        type=float,
        default=DEFAULTS["merge_px"],
        help="position mle: of fits in one frame closer than this (camera px) keep the brightest",
    )
    p.add_argument(
        "--residual-rounds",
        dest="residual_rounds",
        type=int,
        default=DEFAULTS["residual_rounds"],
        help="position mle: rounds of adding emitters found in the fits' residual (0: none)",
    )
    p.add_argument(
        "--chunk-frames",
        type=int,
        default=DEFAULTS["chunk_frames"],
        help="frames read and analysed at a time",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="analysis config (detector, sampler); default: the models' own",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=CLI_THREADS,
        help="torch CPU threads per worker process",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes analysing chunks at once (default: the usable cores / --threads; 1 on "
        "a GPU)",
    )
    p.add_argument("--device", default=DEFAULTS["device"], choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--seed", type=int, default=None, help="seed of psi's samples (default: the models')"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return top


def camera_settings(args: argparse.Namespace) -> dict:
    """Camera values: the --camera YAML (map paths relative to it), then the single options."""
    camera: dict = {}
    if args.camera is not None:
        if not args.camera.is_file():
            raise ValueError(f"{args.camera}: camera file is missing")
        loaded = yaml.safe_load(args.camera.read_text()) or {}
        if not isinstance(loaded, dict) or set(loaded) - set(CAMERA_KEYS):
            raise ValueError(f"{args.camera}: expected a mapping with keys {list(CAMERA_KEYS)}")
        for key, value in loaded.items():
            if isinstance(value, str):
                path = Path(value)
                value = str(path if path.is_absolute() else args.camera.parent / path)
            camera[key] = value
    for key in CAMERA_KEYS:
        if getattr(args, key) is not None:
            camera[key] = getattr(args, key)
    return camera


def analyze(args: argparse.Namespace) -> None:
    """Run one analysis from parsed arguments."""
    config = None
    if args.config is not None:
        if not args.config.is_file():
            raise ValueError(f"{args.config}: config file is missing")
        config = yaml.safe_load(args.config.read_text())
        missing = [
            k
            for k in ("geometry", "psf", "kde", "localize", "diffusion")
            if k not in (config or {})
        ]
        if missing:
            raise ValueError(f"{args.config}: not a diffloc config, it lacks {missing}")
    if args.chunk_frames < 1:
        raise ValueError(f"--chunk-frames must be >= 1, got {args.chunk_frames}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    try:
        device = resolve_device(args.device)
    except RuntimeError as error:  # cuda asked for, none there: bad input, not a crash
        raise ValueError(f"--device {args.device}: {error}") from None
    workers = auto_workers(args.threads, device) if args.workers is None else args.workers
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    analyze_cfg = {
        "pixel_size_nm": args.pixel_size,
        "psf_sigma_nm": args.psf_sigma_nm,
        "psi_frames": psi_frame_count(args.psi_frames),
        "min_snr": args.min_snr,
        "significance": args.significance,
        "psi_maps": args.psi_maps,
        "position": args.position,
        "merge_px": args.merge_px,
        "residual_rounds": args.residual_rounds,
        "threads": args.threads,
        "device": args.device,
    }
    camera = camera_settings(args)
    seed = args.seed if args.seed is not None else int(read_card(args.models)["seed"])
    open_args = (args.movie, args.models, camera, analyze_cfg, seed, config)
    analysis = open_analysis(*open_args)
    with analysis.movie as movie:
        bounds = [
            (a, min(a + args.chunk_frames, movie.n_frames))
            for a in range(0, movie.n_frames, args.chunk_frames)
        ]
        parts = analyse_chunks(analysis, open_args, bounds, workers, not args.no_progress)
    merged = merge_chunks(parts)
    files = write_outputs(
        merged,
        args.out,
        shape=movie.shape,
        n_frames=movie.n_frames,
        sigma_px=analysis.settings.sigma_x,
        pixel_size_nm=analysis.settings.pixel_size_nm,
        metadata=analysis.metadata(),
    )
    log.info(
        "%d localisations in %d frames -> %s", len(merged.table), movie.n_frames, files["table"]
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `diffloc` console script; returns the exit status."""
    args = parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        analyze(args)
    except (DataError, ValueError, ConfigError) as error:
        print(f"diffloc analyze: error: {error}", file=sys.stderr)
        return 2
    finally:
        log.removeHandler(handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`diffloc analyze` throughput on this machine: phi + detection frames/s, psi seconds per frame.

On a synthetic 64 x 64 px sCMOS movie (density 1 emitter per 4 um^2, photons 100-2000,
background 20 photons/px) with the phi and psi architectures of config/analyze.yaml (phi: a
fixed-filter phi of that size, diffloc.analyze.synthetic.analytic_phi: same FLOPs as a trained
one, and it detects the emitters; psi: random weights, same cost), on `--threads` torch threads:

- the analysis without psi (diffloc.analyze.pipeline.analyze_chunk: phi, detection, fits,
  the position fit of analyze.position, significance filter), batched whole frames, in
  `--workers` processes of one torch thread each on as many chunks at once (the layout of
  `diffloc analyze`, target: >= 200 frames/s on 2 cores), beside one process on `--threads`
  threads, the same with position kde, with the other significance test (wald | score) and
  the baseline of one frame per call, in the same run;
- phi on whole frames vs on overlapping 20 x 20 px tiles (3 px margin) stitched from their
  cores: speed and agreement (max |yhat difference| in KDE units, detections within 0.05 px);
- psi: seconds per 20 x 20 px tile at the config's sampler (K samples, S steps) and per 64 x 64
  frame (times the frame's busy tiles).

    python benchmarks/bench_analyze.py [--frames 256] [--threads 2] [--workers 2] [--psi-tiles 1]
"""

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from diffloc import seeding
from diffloc.analyze.card import read_card
from diffloc.analyze.frames import Tiling, phi_kde, to_photons
from diffloc.analyze.pipeline import analyze_chunk
from diffloc.analyze.settings import AnalyzeSettings, analyze_settings
from diffloc.analyze.synthetic import analytic_phi, synthetic_movie
from diffloc.analyze.uncertainty import SKIP_BELOW
from diffloc.config import load_config
from diffloc.data.models import load_model
from diffloc.localize.detection import detect, detector_settings
from diffloc.localize.matching import match_detections
from diffloc.phi.network import load_phi_model
from diffloc.physics.camera import Camera
from diffloc.provenance import hardware
from diffloc.psi.diffusion import Sampler, build_psi

REPO = Path(__file__).resolve().parents[1]
SIZE, BACKGROUND = 64, 20.0


def localise(phi, frames, camera, settings: AnalyzeSettings) -> tuple[float, int]:
    """Seconds and localisations of the analysis without psi (phi, detection, fits and
    the position fit of `settings`, significance filter) over frames."""
    began = time.perf_counter()
    result = analyze_chunk(frames, 0, camera, phi, None, settings, torch.device("cpu"))
    return time.perf_counter() - began, len(result.table)


def host_reference(repeats: int = 7) -> str:
    """This host's speed on a fixed load, to compare runs of this benchmark across machines
    (2-core hosts that report the same processor have differed ~2x): GMAC/s of one phi context
    convolution (16 frames of 64 x 64, 17 -> 16 channels, 3 x 3) on 1 torch thread, median of
    `repeats`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.rand(16, 17, 64, 64).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(17, 16, 3, padding=2, dilation=2).to(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        conv(x)
        for _ in range(repeats):
            began = time.perf_counter()
            conv(x)
            times.append(time.perf_counter() - began)
    torch.set_num_threads(before)
    macs = 16 * 64 * 64 * 17 * 9 * 16
    return (
        f"host reference: {macs / np.median(times) / 1e9:.1f} GMAC/s (phi context conv, 1 thread)"
    )


_pool_job: tuple | None = None  # a worker's (phi, frames, camera, settings)


def _pool_init(job: tuple) -> None:
    """Worker initialiser: one torch thread, the benchmark's phi, movie, camera and settings."""
    global _pool_job
    torch.set_num_threads(1)
    _pool_job = job


def _pool_chunk(start: int, stop: int) -> int:
    """Localisations of frames [start, stop) in a worker (the analysis without psi)."""
    phi, frames, camera, settings = _pool_job
    with torch.inference_mode():
        return localise(phi, frames[start:stop], camera, settings)[1]


def pooled_rate(phi, frames, camera, settings: AnalyzeSettings, workers: int, repeats: int):
    """Frames/s (sorted, one per repeat) of the analysis without psi with the frames split into
    `workers` chunks analysed at once by as many processes of one torch thread each (the
    `diffloc analyze --workers` layout), after a warm-up round; and the localisations. The
    steady state only: analyze.workers.analyse_chunks also opens a movie file and a models
    folder and pays the helpers' start-up on every call, which the end-to-end timing in the
    README covers."""
    n = len(frames)
    bounds = [(i * n // workers, (i + 1) * n // workers) for i in range(workers)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, context, _pool_init, ((phi, frames, camera, settings),)
    ) as pool:
        list(pool.map(_pool_chunk, *zip(*bounds, strict=True)))
        rates, found = [], 0
        for _ in range(repeats):
            began = time.perf_counter()
            found = sum(pool.map(_pool_chunk, *zip(*bounds, strict=True)))
            rates.append(n / (time.perf_counter() - began))
    return sorted(rates), found


def tiled_kde(phi, photons: np.ndarray, tiling: Tiling) -> np.ndarray:
    """phi on overlapping tiles (zero beyond the frame), stitched from the tiles' cores."""
    n = len(photons)
    tiles = np.concatenate([tiling.cut(p, 1) for p in photons])
    kde = phi_kde(phi, tiles, 1 << 20, torch.device("cpu"))
    per = len(tiles) // n
    return np.stack([tiling.stitch(kde[i * per : (i + 1) * per], 4) for i in range(n)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "config" / "analyze.yaml"))
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the analysis")
    parser.add_argument(
        "--workers", type=int, default=2, help="processes of the multi-process measurement"
    )
    parser.add_argument("--psi-tiles", type=int, default=1, help="tiles psi samples (0: skip)")
    parser.add_argument(
        "--models",
        default=None,
        help="a trained models folder (analysis.json): its phi instead of the fixed-filter one",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    sigma, pixel = cfg["psf"]["sigma_x"], cfg["geometry"]["pixel_size_nm"]
    camera = Camera.scmos(
        (SIZE, SIZE), 2.0, 100.0, 4.0, **cfg["camera"]["scmos"], rng=seeding.rng(1, "bench")
    )
    movie = synthetic_movie(
        n_frames=args.frames, size=SIZE, density_per_um2=0.25,
        photons={"dist": "loguniform", "low": 100, "high": 2000}, background=BACKGROUND,
        camera=camera, pixel_size_nm=pixel, sigma_x=sigma, seed=1,
    )  # fmt: skip
    if args.models:
        card = read_card(args.models)
        phi, _ = load_model(Path(args.models) / card["phi_file"], load_phi_model)
        phi.eval()
        phi_name = f"trained phi {args.models}"
    else:
        model = cfg["phi"]["model"]
        phi = analytic_phi(model, scale=1 / 150, background=BACKGROUND)
        phi_name = "fixed-filter phi"
    settings = detector_settings(cfg)
    analysis = analyze_settings(cfg["analyze"], cfg, 0, cfg)
    print(f"hardware: {hardware()}; {host_reference()}")
    print(f"movie: {args.frames} frames of {SIZE} x {SIZE} px, {len(movie.truth)} emitters; "
          f"{phi_name} ({phi.head}, {sum(p.numel() for p in phi.parameters())} parameters), "
          f"detector {settings.detector}, position "
          f"{analysis.position}, {analysis.batch_pixels} LR px per phi pass")  # fmt: skip
    with torch.inference_mode():
        localise(phi, movie.frames, camera, analysis)  # warm-up at full size (allocations)
        runs = [localise(phi, movie.frames, camera, analysis) for _ in range(args.repeats)]
        rates = sorted(args.frames / t for t, _ in runs)
        kde_only = min(
            localise(phi, movie.frames, camera, replace(analysis, position="kde"))[0]
            for _ in range(args.repeats)
        )
        other = "score" if analysis.significance == "wald" else "wald"
        other_test = min(
            localise(phi, movie.frames, camera, replace(analysis, significance=other))[0]
            for _ in range(args.repeats)
        )
        one = min(args.frames, 64)
        pool_rates, pool_found = pooled_rate(
            phi, movie.frames, camera, analysis, args.workers, args.repeats
        )
        per_frame = sum(
            localise(phi, movie.frames[i : i + 1], camera, analysis)[0] for i in range(one)
        )
        print(f"analysis without psi (phi + detection + fits + {analysis.position} "
              f"position), {args.workers} processes of 1 torch thread on {args.workers} chunks "
              f"at once (diffloc analyze's default layout on {args.workers} cores), "
              f"{args.repeats} runs: median {np.median(pool_rates):.0f} frames/s (slowest "
              f"{pool_rates[0]:.0f}, fastest {pool_rates[-1]:.0f}; {pool_found} localisations); "
              f"target >= 200 frames/s")  # fmt: skip
        print(f"analysis without psi (phi + detection + fits + {analysis.position} "
              f"position), batched whole frames, {args.repeats} runs: median "
              f"{np.median(rates):.0f} frames/s (slowest {rates[0]:.0f}, fastest {rates[-1]:.0f}; "
              f"{runs[0][1]} localisations); with position kde: {args.frames / kde_only:.0f} "
              f"frames/s (fastest); significance {analysis.significance} (the config's), with "
              f"{other}: {args.frames / other_test:.0f} frames/s (fastest); baseline one frame "
              f"at a time: {one / per_frame:.0f} frames/s; target >= 200 frames/s")  # fmt: skip

        photons = to_photons(movie.frames[:one], camera)
        t0 = time.perf_counter()
        whole = phi_kde(phi, photons, 1 << 18, torch.device("cpu"))
        t1 = time.perf_counter()
        tiled = tiled_kde(phi, photons, Tiling((SIZE, SIZE), 20, 3))
        t2 = time.perf_counter()
        a, b = detect(whole, settings), detect(tiled, settings)
        agree = total = 0
        for i in range(one):
            pa = a[a["image"] == i][["u_hr", "v_hr"]].to_numpy()
            pb = b[b["image"] == i][["u_hr", "v_hr"]].to_numpy()
            agree += int((match_detections(pa, pb, 0.2, "one_to_one") >= 0).sum())
            total += max(len(pa), len(pb))
        print(f"phi whole frames {one / (t1 - t0):.0f} frames/s vs 20 x 20 tiles (margin 3) "
              f"{one / (t2 - t1):.0f} frames/s; max |yhat difference| "
              f"{np.abs(whole - tiled).max():.3g} KDE units; detections within 0.05 px: "
              f"{agree} of {total}")  # fmt: skip

        if args.psi_tiles:
            psi_cfg = {k: cfg[k] for k in ("geometry", "kde", "diffusion")}
            torch.manual_seed(0)
            net, diffusion = build_psi(psi_cfg)
            sampler, k = cfg["diffusion"]["sampler"], cfg["diffusion"]["sampler"]["k"]
            tiling = Tiling((SIZE, SIZE), cfg["geometry"]["lr_size"], 3)
            tiles = tiling.cut(whole[0], 4)
            busy = int((tiles.max(axis=(1, 2)) >= SKIP_BELOW).sum())
            cond = torch.from_numpy(tiles[: args.psi_tiles])
            gen = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            diffusion.sample(net, cond, k, gen, Sampler.from_config(sampler), sampler["batch_size"])
            per_tile = (time.perf_counter() - t0) / args.psi_tiles
            print(f"psi ({sampler['kind']}, {sampler['steps']} steps, K = {k}, U-Net C = "
                  f"{cfg['diffusion']['unet']['channels']}): {per_tile:.1f} s per 20 x 20 px "
                  f"tile; a 64 x 64 frame has {len(tiles)} tiles, {busy} busy in frame 0: "
                  f"~{per_tile * busy:.0f} s per frame")  # fmt: skip


if __name__ == "__main__":
    main()

"""Simulation throughput: vectorised shards vs a per-emitter Python loop, on this machine.

Measures image pairs (20x20 camera image + 80x80 KDE, 10 emitters each) per second for
(1) the package's vectorised simulation in one process, (2) the same in P processes at once
(as `snakemake --cores P` runs shards), (3) a straightforward per-emitter loop, all in the same
run. Targets (issue 2): >= 20,000 pairs/s on 2 cores and >= 10x the loop.

    python benchmarks/bench_simulate.py [--images 20000] [--processes 2]
"""

import argparse
import math
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.special import erf

from diffloc.config import load_config, shard_config
from diffloc.data.shards import write_shard
from diffloc.provenance import hardware
from diffloc.simulate.scenes import simulate_shard

REPO = Path(__file__).resolve().parents[1]


def shard_cfgs(config: dict, n_images: int, shard_size: int) -> list[dict]:
    """Configs of ceil(n_images / shard_size) dense shards of the default scene."""
    config["simulation"]["splits"]["phi_train"] = {"n_images": n_images, "shard_size": shard_size}
    return [shard_config(config, "phi_train", i) for i in range(math.ceil(n_images / shard_size))]


def simulate_many(cfgs: list[dict]) -> int:
    """Simulate shards in turn; return the number of images."""
    return sum(simulate_shard(cfg).n_images for cfg in cfgs)


def vectorised_rate(cfgs: list[dict], processes: int) -> float:
    """Image pairs per second, shards spread over `processes` worker processes."""
    simulate_many(cfgs[:1])  # warm-up: imports, allocator, thread pools
    if processes == 1:
        start = time.perf_counter()
        n = simulate_many(cfgs)
        return n / (time.perf_counter() - start)
    chunks = [cfgs[i::processes] for i in range(processes)]
    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(simulate_many, [c[:1] for c in chunks])  # warm up every worker
        start = time.perf_counter()
        n = sum(pool.map(simulate_many, chunks))
        return n / (time.perf_counter() - start)


def loop_rate(n_images: int, cfg: dict) -> float:
    """Image pairs per second for a per-image, per-emitter Python loop of the same model."""
    rng = np.random.default_rng(0)
    size, s = cfg["geometry"]["lr_size"], cfg["geometry"]["upsample"]
    sx, sy = cfg["psf"]["sigma_x"], cfg["kde"]["sigma_y"]
    i0, radius = 200.0, cfg["scene"]["disc_radius"]
    cam = cfg["camera"]

    def integrals(centre, n, sigma):
        edges = np.arange(n + 1.0)
        return 0.5 * np.diff(erf((edges - centre) / (math.sqrt(2.0) * sigma)))

    start = time.perf_counter()
    for _ in range(n_images):
        omega = np.zeros((size, size))
        y = np.zeros((s * size, s * size))
        for _ in range(10):
            r, a = radius * math.sqrt(rng.random()), 2 * math.pi * rng.random()
            u, v = size / 2 + r * math.cos(a), size / 2 + r * math.sin(a)
            omega += i0 * np.outer(integrals(u, size, sx), integrals(v, size, sx))
            y += np.outer(integrals(s * u, s * size, sy), integrals(s * v, s * size, sy))
        x = cam["gain"] * rng.poisson(omega) + rng.normal(
            cam["offset"], math.sqrt(cam["readout_var"]), omega.shape
        )
        x.astype(np.float32), (y / y.max()).astype(np.float32)
    return n_images / (time.perf_counter() - start)


def io_rate(cfgs: list[dict]) -> float:
    """Image pairs per second for simulating and writing shards (NPZ + Parquet) in one process."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for i, cfg in enumerate(cfgs):
            write_shard(simulate_shard(cfg), Path(tmp, f"{i}.npz"), Path(tmp, f"{i}.parquet"))
        return sum(cfg["n_images"] for cfg in cfgs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="images for the vectorised runs")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument(
        "--processes", type=int, default=2, help="parallel processes (= cores used)"
    )
    parser.add_argument(
        "--loop-images", type=int, default=1000, help="images for the loop baseline"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="each figure is the best of this many runs"
    )
    args = parser.parse_args()
    best = lambda f, *a: max(f(*a) for _ in range(args.repeats))  # noqa: E731

    config = load_config(REPO / "config/config.yaml", REPO / "workflow/schemas/config.schema.yaml")
    cfgs = shard_cfgs(config, args.images, args.shard_size)
    print(f"hardware: {hardware()}")
    print(
        f"workload: {args.images} image pairs (x 20x20 ADU + y 80x80 KDE, 10 emitters), "
        f"shards of {args.shard_size}; each figure is the best of {args.repeats} runs"
    )
    one = best(vectorised_rate, cfgs, 1)
    many = best(vectorised_rate, cfgs, args.processes) if args.processes > 1 else one
    loop = best(loop_rate, args.loop_images, config)
    with_io = best(io_rate, cfgs[: max(1, len(cfgs) // 4)])
    rows = [
        ("per-emitter Python loop (baseline)", loop, ""),
        ("vectorised, 1 process", one, f"{one / loop:.0f}x loop"),
        (f"vectorised, {args.processes} processes", many, f"{many / loop:.0f}x loop"),
        ("vectorised + NPZ/Parquet write, 1 process", with_io, ""),
    ]
    for name, rate, note in rows:
        print(f"{name:<44s} {rate:>10,.0f} pairs/s  {note}")
    ok_rate, ok_speed = many >= 20_000, one / loop >= 10
    print(
        f"targets: >= 20,000 pairs/s on {args.processes} cores: {'met' if ok_rate else 'MISSED'}; "
        f">= 10x the loop on one core each: {'met' if ok_speed else 'MISSED'} ({one / loop:.1f}x)"
    )


if __name__ == "__main__":
    main()

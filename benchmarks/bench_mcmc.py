"""MCMC throughput: vectorised Metropolis-Hastings vs a naive single-chain loop, on this machine.

Measures chain-iterations per second for isolated emitters (i0 = 200, default camera) with the
package's sampler (`diffloc.mcmc.sample_emitters`): C chains x 1e4 iterations in one process,
the same split over P processes (as `snakemake --cores P` runs chunks), and with the likelihood
on the whole 20 x 20 image instead of the 10 x 10 window; beside a straightforward one-chain
Python loop over iterations with the whole-image likelihood, all in the same run. Each rate is
given per wall-clock second and per CPU-second (the latter barely moves when other work shares
the cores). Targets (issue 4): >= 1.5 million chain-iterations/s on 2 cores (1000 chains x 1e4
iterations in under ~7 s) and >= 30x the loop per chain-iteration.

    python benchmarks/bench_mcmc.py [--chains 1000] [--iterations 10000] [--processes 2]
"""

import argparse
import math
import multiprocessing as mp
import os
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
from scipy.special import erf

from diffloc.config import load_config, shard_config
from diffloc.mcmc.sampler import Setting, diagnostics, emitter_data, sample_emitters
from diffloc.provenance import hardware
from diffloc.simulate.scenes import simulate_shard

REPO = Path(__file__).resolve().parents[1]
CHAINS_PER_IMAGE = 4


def isolated_shard(n_images: int):
    """A simulated isolated-emitter shard at 200 photons from the default config."""
    config = load_config(REPO / "config/config.yaml", REPO / "workflow/schemas/config.schema.yaml")
    config["simulation"]["isolated"] = {
        "photons": [200],
        "n_images": n_images,
        "shard_size": n_images,
    }
    return config, simulate_shard(shard_config(config, "isolated_200", 0))


def run_sampler(job: tuple) -> tuple[float, float, int, float]:
    """Sample images [first, stop) of the shard; return wall s, CPU s, chain-iterations, max R-hat."""
    n_images, first, stop, iterations, window, seed = job
    _, shard = isolated_shard(n_images)
    photons = shard.emitters["photons"].to_numpy()[first:stop]
    data = emitter_data(shard.x[first:stop], shard.camera, 0.92, 0.0, window, photons)
    setting = Setting(1.0, iterations, iterations // 10, 0.05, target_acceptance=0.35)
    rng = np.random.default_rng(seed)
    start, cpu = time.perf_counter(), time.process_time()
    chains = sample_emitters(data, setting, CHAINS_PER_IMAGE, 1.0, False, rng)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    rhat = diagnostics(chains).filter(like="rhat_").to_numpy().max()
    return wall, cpu, (stop - first) * CHAINS_PER_IMAGE * iterations, rhat


def vectorised_rate(n_images: int, iterations: int, processes: int, window: int) -> tuple:
    """Chain-iterations per wall-clock second and per CPU-second, and the worst R-hat, with the
    images split over `processes` processes."""
    bounds = np.linspace(0, n_images, processes + 1).astype(int)
    jobs = [(n_images, a, b, iterations, window, i) for i, (a, b) in enumerate(pairwise(bounds))]
    if processes == 1:
        results = [run_sampler(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(processes) as pool:
            pool.map(run_sampler, [(n_images, 0, 2, 1000, window, 0)] * processes)  # warm-up
            results = pool.map(run_sampler, jobs)
    # the workers sample at the same time: the slowest one's sampling time is the wall time
    # (their diagnostics, run afterwards, are not part of it)
    work = sum(r[2] for r in results)
    wall, cpu = max(r[0] for r in results), sum(r[1] for r in results)
    return work / wall, work / cpu, max(r[3] for r in results)


def loop_rate(iterations: int) -> tuple[float, float]:
    """Chain-iterations per wall-clock second and per CPU-second of a one-chain Python loop
    with the whole-image likelihood."""
    config, shard = isolated_shard(1)
    camera, size, sigma = shard.camera, config["geometry"]["lr_size"], config["psf"]["sigma_x"]
    n = camera.poisson_counts(shard.x[0])
    rate0 = camera.effective_rate(np.zeros((size, size)))
    i0 = float(shard.emitters["photons"].iloc[0])
    edges = np.arange(size + 1.0)

    def nll(u, v):
        eu = 0.5 * np.diff(erf((edges - u) / (math.sqrt(2.0) * sigma)))
        ev = 0.5 * np.diff(erf((edges - v) / (math.sqrt(2.0) * sigma)))
        omega = rate0 + i0 * np.outer(eu, ev)
        return np.sum(omega - n * np.log(omega))

    rng = np.random.default_rng(0)
    theta = shard.emitters[["u_px", "v_px"]].to_numpy()[0]
    current, step = nll(*theta), 0.1
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        proposal = theta + step * rng.standard_normal(2)
        if np.all((proposal >= 0) & (proposal < size)):
            candidate = nll(*proposal)
            if math.log(rng.random()) < current - candidate:
                theta, current = proposal, candidate
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return iterations / wall, iterations / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=1000, help="chains in all (4 per image)")
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2, help="parallel processes (= cores)")
    parser.add_argument("--loop-iterations", type=int, default=5000)
    parser.add_argument(
        "--repeats", type=int, default=2, help="each figure is the best of this many"
    )
    args = parser.parse_args()
    n_images = args.chains // CHAINS_PER_IMAGE
    print(f"hardware: {hardware()}")
    print(
        f"workload: {n_images * CHAINS_PER_IMAGE} chains ({n_images} isolated emitters x "
        f"{CHAINS_PER_IMAGE}) x {args.iterations} iterations, i0 = 200, beta = 1; "
        f"each figure is the best of {args.repeats} runs"
    )

    def best(*job):
        return max((vectorised_rate(*job) for _ in range(args.repeats)), key=lambda r: r[0])

    load_before = os.getloadavg()[0]
    one, one_cpu, rhat_one = best(n_images, args.iterations, 1, 5)
    many, many_cpu, rhat_many = best(n_images, args.iterations, args.processes, 5)
    whole, whole_cpu, _ = best(n_images, args.iterations, 1, 10)
    loop, loop_cpu = max(loop_rate(args.loop_iterations) for _ in range(args.repeats))
    print(
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on "
        "the cores lowers the wall-clock rates; the per-CPU-second ones much less)"
    )
    print(f"{'':<48s} {'chain-it/s (wall)':>18s} {'per CPU-second':>15s}")
    rows = [
        ("one-chain Python loop, whole image (baseline)", loop, loop_cpu),
        ("vectorised, whole 20x20 image, 1 process", whole, whole_cpu),
        ("vectorised, 10x10 window, 1 process", one, one_cpu),
        (f"vectorised, 10x10 window, {args.processes} processes", many, many_cpu),
    ]
    for k, (name, rate, cpu) in enumerate(rows):
        note = f"  {cpu / loop_cpu:.0f}x the loop per CPU-second" if k else ""
        print(f"{name:<48s} {rate:>18,.0f} {cpu:>15,.0f}{note}")
    work = n_images * CHAINS_PER_IMAGE * args.iterations
    print(
        f"{work:,} chain-iterations take {work / many:.1f} s on {args.processes} processes "
        f"({work / one:.1f} s on one); max R-hat {max(rhat_one, rhat_many):.4f}"
    )
    ok_rate, ok_speed = many >= 1.5e6, one_cpu / loop_cpu >= 30
    print(
        f"targets: >= 1.5 M chain-it/s (wall) on {args.processes} cores: "
        f"{'met' if ok_rate else 'MISSED'}; >= 30x the loop per chain-iteration: "
        f"{'met' if ok_speed else 'MISSED'} ({one_cpu / loop_cpu:.0f}x per CPU-second, "
        f"{one / loop:.0f}x wall)"
    )


if __name__ == "__main__":
    main()

"""Posterior-sampling throughput of psi: seconds per test image for K samples.

  python benchmarks/bench_sampling.py            # default config on this CPU (+ paper scale on CUDA)
  python benchmarks/bench_sampling.py --tiny     # every path on the CPU at a tiny size (a test)

CPU: the default config's U-Net and sampler, untrained (same FLOPs as trained), channels_last.
CUDA (when available, or with --tiny): the paper-scale U-Net (config/paper.yaml) with T = 100
ancestral and with DDIM 20, batched over images x K, bf16 autocast, optional torch.compile.
"""

import argparse
import contextlib
import copy
import os
import platform
import time
from pathlib import Path

import torch

from diffloc.config import load_config
from diffloc.psi.diffusion import Sampler, build_psi

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def hardware() -> str:
    """One line naming the CPU (and GPU) this benchmark ran on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    return (
        f"CPU: {cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}; "
        f"GPU: {gpu}; torch {torch.__version__}"
    )


def seconds_per_image(
    config: dict,
    sampler: Sampler,
    k: int,
    n_images: int,
    batch_size: int,
    device: str,
    bf16: bool,
    compile_net: bool,
) -> float:
    """Wall-clock seconds per image for K samples (after one warm-up image)."""
    net, diffusion = build_psi(config)
    net = net.eval().to(device, memory_format=torch.channels_last)
    if compile_net:
        net = torch.compile(net)
    size = config["geometry"]["lr_size"] * config["geometry"]["upsample"]
    yhat = torch.rand((n_images + 1, size, size), generator=torch.Generator().manual_seed(0))
    yhat = yhat.to(device)
    amp = torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    gen = torch.Generator().manual_seed(1)
    with amp:
        diffusion.sample(net, yhat[:1], k, gen, sampler, batch_size)  # warm-up (and compile)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        diffusion.sample(net, yhat[1:], k, gen, sampler, batch_size)
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / n_images


def one_at_a_time_seconds(config: dict, sampler: Sampler, k: int, loops: int) -> float:
    """Baseline: seconds per image for K samples drawn one per call (no batching over K),
    timed for `loops` samples after a warm-up and scaled linearly to K."""
    net, diffusion = build_psi(config)
    net = net.eval().to("cpu", memory_format=torch.channels_last)
    size = config["geometry"]["lr_size"] * config["geometry"]["upsample"]
    yhat = torch.rand((1, size, size), generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    diffusion.sample(net, yhat, 1, gen, sampler, 1)  # warm-up
    start = time.perf_counter()
    for _ in range(loops):
        diffusion.sample(net, yhat, 1, gen, sampler, 1)
    return (time.perf_counter() - start) / loops * k


def shrink(config: dict) -> dict:
    """A tiny version of a config (16 x 16 KDEs, width 8, T = 20): same code path, few FLOPs."""
    config = copy.deepcopy(config)
    config["geometry"]["lr_size"] = 4
    config["diffusion"]["schedule"]["T"] = 20
    unet = config["diffusion"]["unet"]
    unet.update(channels=8, norm_groups=4, res_blocks=1)
    unet["attention_resolutions"] = [16 // unet["patch"] // 2]
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--paper-config", default=str(REPO / "config" / "paper.yaml"))
    parser.add_argument("--images", type=int, default=2, help="timed images per setting")
    parser.add_argument("--k", type=int, default=100, help="posterior samples per image")
    parser.add_argument("--gpu-batch", type=int, default=1000, help="network inputs per pass")
    parser.add_argument("--compile", action="store_true", help="torch.compile the GPU model")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, everything on the CPU")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads or args.tiny:
        torch.set_num_threads(args.threads or 1)  # tiny tensors: threading only adds overhead
    print(hardware())
    default = load_config(args.config, SCHEMA)
    paper = load_config(args.paper_config, SCHEMA)
    k, images = (4, 1) if args.tiny else (args.k, args.images)
    sampler = Sampler.from_config(default["diffusion"]["sampler"])
    batch = default["diffusion"]["sampler"]["batch_size"]
    cfg = shrink(default) if args.tiny else default
    loops = 2 if args.tiny else 10
    base = one_at_a_time_seconds(cfg, sampler, k, loops)
    sec = seconds_per_image(cfg, sampler, k, images, batch, "cpu", False, False)
    what = f"default model, cpu fp32, {sampler.kind} S={sampler.steps} ({sampler.spacing}), K={k}"
    print(f"{what}, one sample per call (baseline; {loops} timed, scaled to K): {base:.2f} s/image")
    print(f"{what}, batched over K (batch {batch}): {sec:.2f} s/image ({base / sec:.1f}x faster)")
    if not args.tiny:
        print(f"target <= 10 s/image for K = 100 on the CPU: {'met' if sec <= 10 else 'MISSED'}")
    if not (torch.cuda.is_available() or args.tiny):
        return
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    cfg = shrink(paper) if args.tiny else paper
    for paper_sampler in (
        Sampler("ancestral", cfg["diffusion"]["schedule"]["T"]),
        Sampler("ddim", 20),
    ):
        sec = seconds_per_image(
            cfg,
            paper_sampler,
            k,
            images,
            min(args.gpu_batch, 8) if args.tiny else args.gpu_batch,
            device,
            True,
            args.compile,
        )
        print(
            f"paper-scale model (C={cfg['diffusion']['unet']['channels']}), {device} bf16"
            f"{' compiled' if args.compile else ''}, {paper_sampler.kind} "
            f"S={paper_sampler.steps}, K={k}: {sec:.3f} s/image"
        )


if __name__ == "__main__":
    main()

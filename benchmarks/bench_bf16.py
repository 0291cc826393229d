"""Does bf16 change psi's posterior? Mean and std of K samples, bf16 autocast vs fp32, same weights.

    python benchmarks/bench_bf16.py --model results/gpu/models/seed_0/psi.pt \
        --yhat results/gpu/yhat/sigma_y_3/test/0000.npz \
        --npz results/gpu/data/test/0000.npz                     # trained psi of config/gpu.yaml, on CUDA
    python benchmarks/bench_bf16.py --tiny             # the code path on the CPU, tiny random net

For each sampler (the config's diffusion.sampler, by default dpmpp_2m 20, and the paper's
ancestral over all T steps) the first --images test images get K posterior samples twice from
the same seeds, once in fp32 and once with the network in bf16 autocast (the sampler's own
arithmetic stays fp32), and the per-pixel posterior mean and std (diffloc.psi.posterior) are
compared: relative change = ||bf16 - fp32||_2 / ||fp32||_2 over all pixels of the images, and
over the support (pixels where the fp32 mean >= calibration.support_floor); `std sum` is
sum(std bf16) / sum(std fp32) - 1 (a systematic shrink or spread). Beside it, the same numbers
for fp32 against fp32 from another seed: the Monte Carlo noise of K samples, for scale.
Target (issue 14): bf16 changes the posterior mean and std by less than 2 % (relative, all
pixels). Without --model the net has random weights: a check of the code, not of psi.
"""

import argparse
import contextlib
import copy
import time
from pathlib import Path

import numpy as np
import torch
from bench_sampling import random_condition  # this folder is on sys.path when run as a script

from diffloc.config import load_config
from diffloc.data.condition import Condition, read_condition
from diffloc.psi.diffusion import Sampler, build_psi, load_psi
from diffloc.psi.posterior import summarise

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TARGET = 0.02  # issue 14: relative change of the posterior mean and std


def relative_change(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """||a - b||_2 / ||b||_2 over the pixels in `mask` (all when None)."""
    if mask is not None:
        a, b = a[mask], b[mask]
    a, b = a.astype(np.float64), b.astype(np.float64)
    norm = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / norm) if norm > 0 else float(np.linalg.norm(a - b))


def moments(net, diffusion, yhat, sampler, k, batch, seed, device, bf16) -> dict[str, np.ndarray]:
    """Posterior mean and std [N, H, W] of K samples per image (bf16 autocast or fp32)."""
    amp = torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with amp:
        samples = diffusion.sample(
            net, yhat, k, torch.Generator().manual_seed(seed), sampler, batch
        )
    out = summarise(samples, [0.5], 0)
    return {"mean": out["mean"], "std": out["std"]}


def compare(a: dict, b: dict, floor: float) -> str:
    """One line: relative change of mean and std of `a` against `b` (all pixels; support)."""
    support = b["mean"] >= floor
    std_sum = float(a["std"].sum(dtype=np.float64) / b["std"].sum(dtype=np.float64) - 1.0)
    return (
        f"mean {relative_change(a['mean'], b['mean']):.2%} "
        f"(support {relative_change(a['mean'], b['mean'], support):.2%}), "
        f"std {relative_change(a['std'], b['std']):.2%} "
        f"(support {relative_change(a['std'], b['std'], support):.2%}), std sum {std_sum:+.2%}"
    )


def tiny_config(config: dict) -> dict:
    """16 x 16 KDEs, width 8, T = 20: the same code path in a second."""
    config = copy.deepcopy(config)
    config["geometry"]["lr_size"] = 4
    config["diffusion"]["schedule"]["T"] = 20
    unet = config["diffusion"]["unet"]
    unet.update(channels=8, norm_groups=4, res_blocks=1, multipliers=[1, 2], patch=1)
    unet["attention_resolutions"] = [8]
    config["diffusion"]["sampler"].update(k=8, batch_size=16)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config" / "gpu.yaml"))
    parser.add_argument(
        "--model", help="psi weights (models/seed_0/psi.pt); default: random weights"
    )
    parser.add_argument(
        "--yhat", help="phi's yhat file (yhat/sigma_y_3/test/0000.npz); default: random"
    )
    parser.add_argument(
        "--npz", help="the data shard of --yhat (camera images; psi conditioned on yhat_x)"
    )
    parser.add_argument("--images", type=int, default=4, help="images (first of --yhat)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ancestral", action="store_true", help="the config's sampler only")
    parser.add_argument("--tiny", action="store_true", help="tiny random net on the CPU (a test)")
    args = parser.parse_args()
    config = load_config(args.config, SCHEMA)
    if args.tiny:
        config, args.model, args.images = tiny_config(config), None, 2
        torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "no CUDA"
    print(f"device {device} ({gpu}); torch {torch.__version__}, CUDA {torch.version.cuda}")
    if args.model:
        net, diffusion, meta = load_psi(args.model, torch.device(device))
        net = net.eval()
        what = f"trained psi {args.model} (fingerprint {meta.get('fingerprint', '?')})"
        trained = meta["config"]  # builds the condition this psi was trained with
    else:
        torch.manual_seed(args.seed)
        net, diffusion = build_psi(config)
        with torch.no_grad():  # the zero-initialised output layer would make every sample yhat
            net.conv_out.weight.normal_(0.0, 0.02)
        net = net.eval().to(device, memory_format=torch.channels_last)
        what = "RANDOM weights (checks the code path, not psi's posterior)"
        trained = config
    condition = Condition.from_config(trained)
    if args.yhat:
        if condition.kind == "yhat_x" and not args.npz:
            parser.error("psi is conditioned on yhat_x: give the data shard of --yhat as --npz")
        npz = [args.npz] if args.npz else []
        cond = read_condition(condition, [args.yhat], npz, 0, args.images)
        yhat = torch.from_numpy(cond)
        what += f", condition {condition.kind} of {args.yhat} images 0..{yhat.shape[0] - 1}"
    else:
        yhat = random_condition(trained, args.images, args.seed)
        what += f", {args.images} random conditions ({condition.kind})"
    yhat = yhat.to(device)
    own = config["diffusion"]["sampler"]
    k, batch = own["k"], own["batch_size"]
    floor = config["calibration"]["support_floor"]
    samplers = [Sampler.from_config(own)]
    if not args.skip_ancestral:
        samplers.append(Sampler("ancestral", diffusion.T))  # the paper's: all T steps
    print(f"{what}; K = {k}, batch {batch}", flush=True)
    worst = 0.0
    for sampler in samplers:
        name = f"{sampler.kind} S={sampler.steps} ({sampler.spacing})"
        start = time.perf_counter()
        fp32 = moments(net, diffusion, yhat, sampler, k, batch, args.seed, device, False)
        bf16 = moments(net, diffusion, yhat, sampler, k, batch, args.seed, device, True)
        seconds = time.perf_counter() - start
        worst = max(
            worst,
            relative_change(bf16["mean"], fp32["mean"]),
            relative_change(bf16["std"], fp32["std"]),
        )
        print(f"{name}: bf16 vs fp32, same seeds: {compare(bf16, fp32, floor)}", flush=True)
        if sampler == samplers[0]:
            other = moments(net, diffusion, yhat, sampler, k, batch, args.seed + 1, device, False)
            print(
                f"{name}: fp32 vs fp32, another seed (MC noise of K = {k}): {compare(other, fp32, floor)}"
            )
        print(f"{name}: {seconds:.1f} s for fp32 + bf16", flush=True)
    ok = "met" if worst < TARGET else "MISSED"
    print(
        f"target: bf16 changes the posterior mean and std by < {TARGET:.0%}: {ok} (worst {worst:.2%})"
    )


if __name__ == "__main__":
    main()

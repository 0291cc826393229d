"""phi throughput on this machine: inference images/s and training seconds per step.

Uses the model and batch sizes of a config (default: config/config.yaml) on random photon
images (same FLOPs as real data), in channels_last, on the CPU with all usable cores or on CUDA
(--device cuda). Baseline in the same run: the same network in the default contiguous memory
format. On CUDA, fp32 runs convolutions in TF32 (torch's default) and --bf16 adds bf16
autocast inference; training uses bf16 autocast when the config's phi.train.cuda_bf16 says so.
Targets: >= 500 images/s for inference on 2 CPU cores (issue 3); on one H100/H200-class GPU
this prints images/s for the paper-scale phi of config/gpu.yaml (issue 14).

    python benchmarks/bench_phi.py [--config config/config.yaml] [--images 4096]
    python benchmarks/bench_phi.py --config config/gpu.yaml --device cuda --bf16
    python benchmarks/bench_phi.py --tiny          # every path on the CPU at a tiny size (a test)
"""

import argparse
import time
from pathlib import Path

import torch

from diffloc.config import load_config
from diffloc.phi.network import build_phi, phi_loss
from diffloc.provenance import hardware

REPO = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def inference_rate(
    model,
    n: int,
    batch: int,
    size: int,
    device,
    channels_last: bool,
    repeats: int,
    bf16: bool = False,
) -> float:
    """Best images/s of `repeats` passes over n random photon images."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt).eval()
    x = (torch.rand(batch, 1, size, size, device=device) * 20).contiguous(memory_format=fmt)
    with _autocast(device, bf16):
        model.predict(x)
        best = 0.0
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            for _ in range(max(1, n // batch)):
                model.predict(x)
            _sync(device)
            best = max(best, max(1, n // batch) * batch / (time.perf_counter() - start))
    return best


def step_seconds(model, batch: int, size: int, s: int, device, steps: int, bf16: bool) -> float:
    """Median seconds per Adam step (forward, backward, update) on a random batch."""
    model = model.to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    data = {
        "photons": (torch.rand(batch, 1, size, size, device=device) * 20).contiguous(
            memory_format=torch.channels_last
        ),
        "y": torch.rand(batch, 1, s * size, s * size, device=device).contiguous(
            memory_format=torch.channels_last
        ),
    }
    times = []
    for _ in range(steps + 2):
        _sync(device)
        start = time.perf_counter()
        with _autocast(device, bf16):
            loss = phi_loss(model, data, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[len(times[2:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config/config.yaml"))
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast inference")
    parser.add_argument("--tiny", action="store_true", help="tiny model and counts (a test)")
    args = parser.parse_args()
    config = load_config(args.config, REPO / "workflow/schemas/config.schema.yaml")
    device = torch.device(args.device)
    size, s = config["geometry"]["lr_size"], config["geometry"]["upsample"]
    phi = config["phi"]
    if args.tiny:
        phi["model"].update(width=4, hr_width=2)
        phi["infer_batch_size"], phi["train"]["batch_size"] = 16, 4
        args.images, args.steps, args.repeats = 32, 1, 1
        torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_phi(phi["model"], s)
    params = sum(p.numel() for p in model.parameters())
    print(f"hardware: {hardware()}")
    print(f"model: phi {phi['model']} ({params:,} parameters), {args.config}")
    batch = phi["infer_batch_size"]
    base = inference_rate(model, args.images, batch, size, device, False, args.repeats)
    fast = inference_rate(model, args.images, batch, size, device, True, args.repeats)
    print(f"inference, contiguous (baseline): {base:8.0f} images/s (batch {batch})")
    print(f"inference, channels_last:         {fast:8.0f} images/s  ({fast / base:.2f}x)")
    if args.bf16:
        half = inference_rate(model, args.images, batch, size, device, True, args.repeats, True)
        print(f"inference, channels_last bf16:    {half:8.0f} images/s  ({half / base:.2f}x)")
    bf16_train = device.type == "cuda" and phi["train"]["cuda_bf16"]
    train_batch = phi["train"]["batch_size"]
    step = step_seconds(model, train_batch, size, s, device, args.steps, bf16_train)
    print(
        f"training: {step * 1e3:.1f} ms per step of {train_batch} images"
        f"{' (bf16)' if bf16_train else ''}: {train_batch / step:.0f} images/s"
    )
    if device.type == "cpu" and not args.tiny:
        ok = max(base, fast) >= 500
        print(f"target >= 500 images/s for inference: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()

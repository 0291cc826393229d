"""phi throughput on this machine: inference images/s and training seconds per step.

Uses the model and batch sizes of a config (default: config/config.yaml) on random photon
images (same FLOPs as real data), in channels_last, on the CPU with all usable cores (or CUDA
with --device cuda). Baseline in the same run: the same network in the default contiguous
memory format. Target (issue 3): >= 500 images/s for inference on 2 CPU cores.

    python benchmarks/bench_phi.py [--config config/config.yaml] [--images 4096]
"""

import argparse
import os
import time
from pathlib import Path

import torch

from diffloc.config import load_config
from diffloc.phi.network import build_phi, phi_loss

REPO = Path(__file__).resolve().parents[1]


def hardware(device: torch.device) -> str:
    """CPU model and cores, or the GPU name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {len(os.sched_getaffinity(0))} usable cores, torch threads {torch.get_num_threads()}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def inference_rate(
    model, n: int, batch: int, size: int, device, channels_last: bool, repeats: int
) -> float:
    """Best images/s of `repeats` passes over n random photon images."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt).eval()
    x = (torch.rand(batch, 1, size, size, device=device) * 20).contiguous(memory_format=fmt)
    model.predict(x)
    best = 0.0
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(n // batch):
            model.predict(x)
        _sync(device)
        best = max(best, (n // batch) * batch / (time.perf_counter() - start))
    return best


def step_seconds(model, batch: int, size: int, s: int, device, steps: int) -> float:
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
    args = parser.parse_args()
    config = load_config(args.config, REPO / "workflow/schemas/config.schema.yaml")
    device = torch.device(args.device)
    size, s = config["geometry"]["lr_size"], config["geometry"]["upsample"]
    phi = config["phi"]
    torch.manual_seed(0)
    model = build_phi(phi["model"], s)
    params = sum(p.numel() for p in model.parameters())
    print(f"hardware: {hardware(device)}; torch {torch.__version__}")
    print(f"model: phi {phi['model']} ({params:,} parameters), {args.config}")
    batch = phi["infer_batch_size"]
    base = inference_rate(model, args.images, batch, size, device, False, args.repeats)
    fast = inference_rate(model, args.images, batch, size, device, True, args.repeats)
    step = step_seconds(model, phi["train"]["batch_size"], size, s, device, args.steps)
    print(f"inference, contiguous (baseline): {base:8.0f} images/s (batch {batch})")
    print(f"inference, channels_last:         {fast:8.0f} images/s  ({fast / base:.2f}x)")
    print(f"training: {step * 1e3:.0f} ms per step of {phi['train']['batch_size']} images")
    print(f"target >= 500 images/s for inference: {'met' if max(base, fast) >= 500 else 'MISSED'}")


if __name__ == "__main__":
    main()

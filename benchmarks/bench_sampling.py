"""Posterior-sampling cost of psi: seconds per image for K samples.

  python benchmarks/bench_sampling.py                         # default config on this CPU (+ CUDA)
  python benchmarks/bench_sampling.py --cuda-only --compile   # paper scale on CUDA, compile on/off
  python benchmarks/bench_sampling.py --cuda-only --compiled-only   # compiled only (after eager)
  python benchmarks/bench_sampling.py --tiny                  # every path on the CPU, tiny sizes

CPU: the default config's U-Net and sampler, untrained (same FLOPs as trained), channels_last,
one sample per call (baseline) and batched over K. Target (issue 3): <= 10 s per image, K = 100.

CUDA (when available; with --tiny the same code runs on the CPU at a tiny size): the U-Net of
config/gpu.yaml (paper width: C = 64, multipliers [1, 2, 4, 8, 8], 101 M parameters, as in
config/paper.yaml) and its T, with random weights in its zero-initialised output layer (the
FLOPs of a trained net), K samples per image batched over images x K (--gpu-batch network inputs
per pass; images per timing = one pass unless --images), for the paper's ancestral sampler over
all T steps and the 20-step ddim and dpmpp_2m (logsnr), each in fp32 (torch's default: cuDNN
convolutions in TF32) and in bf16 autocast, eager and, with --compile, torch.compile'd. One
untimed single-step pass of the same shapes warms up (and compiles) first. Every result is
printed as soon as it is measured, so a run stopped by a timeout keeps what it measured.
Target (issue 14, H100/H200-class GPU): <= 1 s per image for a 20-step sampler at K = 100.
"""

import argparse
import contextlib
import copy
import csv
import time
from pathlib import Path

import torch

from diffloc.config import load_config
from diffloc.data.condition import Condition
from diffloc.provenance import hardware
from diffloc.psi.diffusion import Sampler, build_psi

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TARGET_20_STEP_S = 1.0  # issue 14: seconds per image, K = 100, 20-step sampler, one GPU
CSV_COLUMNS = (
    "device",
    "model",
    "sampler",
    "steps",
    "spacing",
    "precision",
    "compiled",
    "k",
    "images",
    "batch",
    "seconds_per_image",
)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def precision(device: str, bf16: bool):
    """bf16 autocast on `device`, or no autocast (fp32)."""
    return torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def timing_net(config: dict, device: str, compile_net: bool, compile_backend: str = "inductor"):
    """psi's U-Net of `config` in eval mode, channels_last on `device`, with a random output
    layer (an untrained net outputs zeros: same FLOPs, but a trivial sampler state), and its
    diffusion process; torch.compile'd when asked."""
    torch.manual_seed(0)
    net, diffusion = build_psi(config)
    with torch.no_grad():
        net.conv_out.weight.normal_(0.0, 0.02)
    net = net.eval().to(device, memory_format=torch.channels_last)
    if compile_net:
        net = torch.compile(net, backend=compile_backend)
    return net, diffusion


def random_condition(config: dict, images: int, seed: int = 0) -> torch.Tensor:
    """A random condition [images, C, H, W] for psi of `config`: yhat in [0, 1] and, for
    diffusion.condition yhat_x, a photon channel in [0, 2] (the Anscombe scale at 0-100 photons)."""
    size = config["geometry"]["lr_size"] * config["geometry"]["upsample"]
    channels = Condition.from_config(config).channels
    gen = torch.Generator().manual_seed(seed)
    cond = torch.rand((images, channels, size, size), generator=gen)
    cond[:, 1:] *= 2
    return cond


def seconds_per_image(
    net,
    diffusion,
    yhat: torch.Tensor,
    sampler: Sampler,
    k: int,
    batch_size: int,
    device: str,
    bf16: bool,
) -> float:
    """Wall-clock seconds per image for K samples of every image of the condition yhat
    [N, C, H, W] (`random_condition`; timed after
    an untimed single-step pass of the same batch shapes: allocation, kernel choice, compile)."""
    gen = torch.Generator().manual_seed(1)
    with precision(device, bf16):
        diffusion.sample(net, yhat, k, gen, Sampler("ancestral", 1), batch_size)
        _sync(device)
        start = time.perf_counter()
        diffusion.sample(net, yhat, k, gen, sampler, batch_size)
        _sync(device)
    return (time.perf_counter() - start) / yhat.shape[0]


def one_at_a_time_seconds(config: dict, sampler: Sampler, k: int, loops: int) -> float:
    """Baseline: seconds per image for K samples drawn one per call (no batching over K),
    timed for `loops` samples after a warm-up and scaled linearly to K."""
    net, diffusion = build_psi(config)
    net = net.eval().to("cpu", memory_format=torch.channels_last)
    yhat = random_condition(config, 1)
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
    unet.update(channels=8, norm_groups=4, res_blocks=1, multipliers=unet["multipliers"][:3])
    unet["attention_resolutions"] = [16 // unet["patch"] // 2]
    return config


def cpu_default(args, default: dict) -> None:
    """The CPU benchmark of the default config: one sample per call vs batched over K."""
    k, images = (4, 1) if args.tiny else (args.k, args.images or 2)
    sampler = Sampler.from_config(default["diffusion"]["sampler"])
    batch = default["diffusion"]["sampler"]["batch_size"]
    cfg = shrink(default) if args.tiny else default
    loops = 2 if args.tiny else 10
    base = one_at_a_time_seconds(cfg, sampler, k, loops)
    net, diffusion = build_psi(cfg)
    net = net.eval().to("cpu", memory_format=torch.channels_last)
    yhat = random_condition(cfg, images)
    sec = seconds_per_image(net, diffusion, yhat, sampler, k, batch, "cpu", False)
    what = f"default model, cpu fp32, {sampler.kind} S={sampler.steps} ({sampler.spacing}), K={k}"
    print(f"{what}, one sample per call (baseline; {loops} timed, scaled to K): {base:.2f} s/image")
    print(f"{what}, batched over K (batch {batch}): {sec:.2f} s/image ({base / sec:.1f}x faster)")
    if not args.tiny:
        print(f"target <= 10 s/image for K = 100 on the CPU: {'met' if sec <= 10 else 'MISSED'}")


def paper_scale(args, gpu_config: dict, record) -> None:
    """The paper-scale U-Net on CUDA (or, with --tiny, a tiny one on the CPU): every sampler x
    precision x compile setting, one line each as soon as measured (and `record(row)`)."""
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    cfg = shrink(gpu_config) if args.tiny else gpu_config
    k = 4 if args.tiny else args.k
    batch = 8 if args.tiny else args.gpu_batch
    images = args.images or max(1, batch // k)
    T = cfg["diffusion"]["schedule"]["T"]
    samplers = [
        Sampler("ancestral", T),  # the paper's: eq. 5 over all T steps
        Sampler("ddim", min(20, T), "logsnr"),
        Sampler("dpmpp_2m", min(20, T), "logsnr"),  # the study's default
    ]
    yhat = random_condition(cfg, images).to(device)
    unet = cfg["diffusion"]["unet"]
    model = f"C={unet['channels']} x{unet['multipliers']}, T={T}"
    backend = "eager" if args.tiny else args.compile_backend  # tiny: trace only, no codegen
    best: dict[str, float] = {}
    for compiled in [True] if args.compiled_only else [False, True] if args.compile else [False]:
        net, diffusion = timing_net(cfg, device, compiled, backend)
        for bf16 in (False, True) if not compiled else (True, False):
            for sampler in samplers:
                sec = seconds_per_image(net, diffusion, yhat, sampler, k, batch, device, bf16)
                name = "bf16" if bf16 else "fp32"
                print(
                    f"paper-scale model ({model}), {device} {name}"
                    f"{' compiled' if compiled else ''}, {sampler.kind} S={sampler.steps}"
                    f" ({sampler.spacing}), K={k}, {images} images, batch {batch}: "
                    f"{sec:.3f} s/image",
                    flush=True,
                )
                key = f"{sampler.kind} S={sampler.steps}"
                best[key] = min(best.get(key, float("inf")), sec)
                row = [device, model, sampler.kind, sampler.steps, sampler.spacing, name]
                record([*row, compiled, k, images, batch, f"{sec:.4f}"])
        del net
        if device == "cuda":
            torch.cuda.empty_cache()
    if device == "cuda":
        fast = min(v for key, v in best.items() if key.endswith("S=20"))
        ok = "met" if fast <= TARGET_20_STEP_S else "MISSED"
        print(
            f"target <= {TARGET_20_STEP_S:g} s/image for a 20-step sampler at K = {k}: {ok} "
            f"(best {fast:.3f} s/image); ancestral S={T}: best {best[f'ancestral S={T}']:.3f}"
            " s/image",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--gpu-config", default=str(REPO / "config" / "gpu.yaml"))
    parser.add_argument("--images", type=int, default=0, help="timed images (0: one GPU pass)")
    parser.add_argument("--k", type=int, default=100, help="posterior samples per image")
    parser.add_argument("--gpu-batch", type=int, default=0, help="inputs per pass (0: config)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd")
    parser.add_argument("--compiled-only", action="store_true", help="time torch.compile'd only")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--cuda-only", action="store_true", help="skip the CPU default-model part")
    parser.add_argument("--csv", help="also write the paper-scale results to this CSV")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, everything on the CPU")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads or args.tiny:
        torch.set_num_threads(args.threads or 1)  # tiny tensors: threading only adds overhead
    print(hardware(), flush=True)
    gpu_config = load_config(args.gpu_config, SCHEMA)
    args.gpu_batch = args.gpu_batch or gpu_config["diffusion"]["sampler"]["batch_size"]
    if not args.cuda_only:
        cpu_default(args, load_config(args.config, SCHEMA))
    if not (torch.cuda.is_available() or args.tiny):
        print("no CUDA GPU: the paper-scale part runs on CUDA only (or with --tiny)")
        return
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(open(args.csv, "w", newline="")) if args.csv else None

        def record(row: list) -> None:
            if handle is not None:
                csv.writer(handle).writerow(row)
                handle.flush()  # kept if a timeout stops the run

        record(list(CSV_COLUMNS))
        paper_scale(args, gpu_config, record)


if __name__ == "__main__":
    main()

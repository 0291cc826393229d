"""The paper-scale GPU study (config/gpu.yaml) and its check script, on the CPU; the CUDA code
paths (bf16 autocast, torch.compile, training and sampling on the GPU) under the `gpu` marker.

CPU: gpu.yaml validates, is complete and paper-scale, and `snakemake -n` accepts it; the CUDA
benchmarks' tiny CPU paths run; benchmarks/gpu_check.sh passes `bash -n` and its --dry-run (the
CPU-side checks) and, without a GPU, stops with exit code 3. GPU (`pytest -m gpu`, skipped
without CUDA; benchmarks/gpu_check.sh runs them): see the tests marked `gpu` below.
"""

import copy
import csv
import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from diffloc.config import load_config
from diffloc.phi.network import Phi, phi_loss
from diffloc.psi.diffusion import Sampler, build_psi
from diffloc.training.batches import BatchStream, ShardSource, sequential_batches
from diffloc.training.loop import LOG_COLUMNS, TrainSettings, train

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
GPU_YAML = REPO / "config" / "gpu.yaml"
CHECK = REPO / "benchmarks" / "gpu_check.sh"
# fp32 activations of one paper-scale U-Net input at inference (measured on the CPU: peak RSS)
BYTES_PER_INPUT = 23e6
H200_BYTES = 139 * 2**30

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def gpu(test):
    """A test that needs CUDA: marked `gpu` (pytest -m gpu) and skipped without a GPU."""
    return pytest.mark.gpu(needs_cuda(test))


@pytest.fixture(scope="module")
def gpu_config() -> dict:
    return load_config(GPU_YAML, SCHEMA)


def _run(args: list, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


def _key_paths(tree, prefix=()) -> set:
    """Paths of every mapping key (lists and values are leaves)."""
    if not isinstance(tree, dict):
        return set()
    paths = set()
    for key, value in tree.items():
        paths |= {(*prefix, key)} | _key_paths(value, (*prefix, key))
    return paths


# ----- config/gpu.yaml ------------------------------------------------------------------------
def test_gpu_config_is_the_paper_scale_study(gpu_config):
    paper = load_config(REPO / "config" / "paper.yaml", SCHEMA)
    assert gpu_config["run"] == "gpu"
    diff = gpu_config["diffusion"]
    for key in ("channels", "multipliers", "res_blocks", "attention_resolutions", "patch"):
        assert diff["unet"][key] == paper["diffusion"]["unet"][key], key  # paper-width U-Net
    assert diff["unet"]["channels"] == 64 and diff["unet"]["multipliers"] == [1, 2, 4, 8, 8]
    assert diff["schedule"]["T"] == paper["diffusion"]["schedule"]["T"] == 100
    assert diff["schedule"]["kind"] == "linear"  # reaches gamma_T ~ 0 (unlike the paper's)
    gamma_t = np.prod(
        1 - np.linspace(diff["schedule"]["beta_start"], diff["schedule"]["beta_end"], 100)
    )
    assert gamma_t < 1e-4
    # the study's default sampler, K = 119 per image (>= the paper's 100; K + 1 = 120: exact intervals)
    assert {k: diff["sampler"][k] for k in ("kind", "steps", "spacing", "k")} == {
        "kind": "dpmpp_2m",
        "steps": 20,
        "spacing": "logsnr",
        "k": 119,
    }
    abl = gpu_config["calibration"]["ablation"]
    assert "ancestral" in abl["samplers"] and 100 in abl["steps"]  # the paper's: all T steps
    assert max(abl["k"]) == 100
    assert diff["train"]["device"] == "auto" and diff["train"]["cuda_bf16"]


def test_gpu_config_is_complete(gpu_config):
    """Every key of the default config is set (gpu.yaml does not lean on the deep merge)."""
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert _key_paths(yaml.safe_load(GPU_YAML.read_text())) == _key_paths(default)


def test_all_sampling_jobs_at_once_fit_in_an_h200(gpu_config):
    """`--cores all` may start every posterior chunk and ablation job together on one GPU."""
    post, abl = gpu_config["posterior"], gpu_config["calibration"]["ablation"]
    chunks = lambda n: -(-n // post["chunk_size"])  # noqa: E731
    isolated = len(gpu_config["simulation"]["isolated"]["photons"])
    jobs = chunks(post["test_images"]) + chunks(gpu_config["calibration"]["val_images"])
    jobs += isolated * chunks(post["isolated_images"])
    batch = gpu_config["diffusion"]["sampler"]["batch_size"]
    own = gpu_config["diffusion"]["sampler"]["kind"]
    kinds = len(set(abl["samplers"]) | {own})
    need = (jobs * batch + kinds * abl["batch_size"]) * BYTES_PER_INPUT
    assert need < 0.85 * H200_BYTES, f"{need / 2**30:.0f} GiB"


def test_snakemake_dry_run_accepts_gpu_yaml():
    result = _run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "--quiet",
            "--configfile",
            "config/gpu.yaml",
        ]
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


# ----- the training loop's data-wait measurement (log only) ---------------------------------
def test_training_logs_its_wait_for_batches_and_keeps_its_csv(tmp_path, caplog):
    rng = np.random.default_rng(0)
    photons = rng.poisson(5.0, size=(6, 8, 8)).astype(np.float32)
    y = (np.repeat(np.repeat(photons, 4, 1), 4, 2) / 20.0).astype(np.float32)
    sources = [ShardSource(6, lambda: {"photons": photons, "y": y})]
    settings = TrainSettings(4, 4, 1e-2, 1, 0.0, 1.0, 2, 10, 0.0, "cpu", False, 1, "none")
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="diffloc.training.loop"):
        train(
            Phi(4, 2, [1, 2]),
            phi_loss,
            BatchStream(sources, 4, 7, ("t",)),
            lambda: sequential_batches(sources, 4),
            settings,
            seed=7,
            key=("t",),
            checkpoint=tmp_path / "c.ckpt",
            log_csv=tmp_path / "log.csv",
            fingerprint="fp",
            progress=False,
        )
    assert "waited" in caplog.text and "for batches of" in caplog.text
    with open(tmp_path / "log.csv") as handle:
        assert tuple(next(csv.reader(handle))) == LOG_COLUMNS


# ----- the benchmarks' CPU paths --------------------------------------------------------------
def test_bench_sampling_tiny_runs_every_cuda_setting_on_the_cpu(tmp_path):
    table = tmp_path / "bench.csv"
    result = _run(
        [
            sys.executable,
            "benchmarks/bench_sampling.py",
            "--tiny",
            "--cuda-only",
            "--csv",
            str(table),
        ]
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(table.open()))
    settings = {(r["sampler"], r["precision"]) for r in rows}
    kinds = {"ancestral", "ddim", "dpmpp_2m"}
    assert settings == {(s, p) for s in kinds for p in ("fp32", "bf16")}
    assert all(float(r["seconds_per_image"]) > 0 for r in rows)
    assert "s/image" in result.stdout


@pytest.mark.slow
def test_bench_sampling_tiny_compiled(tmp_path):
    result = _run(
        [
            sys.executable,
            "benchmarks/bench_sampling.py",
            "--tiny",
            "--cuda-only",
            "--compiled-only",
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" compiled, ") == 6


def test_bench_phi_tiny_runs():
    result = _run(
        [
            sys.executable,
            "benchmarks/bench_phi.py",
            "--tiny",
            "--bf16",
            "--config",
            "config/gpu.yaml",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert (
        "images/s" in result.stdout and "bf16" in result.stdout and "ms per step" in result.stdout
    )


def test_bench_bf16_tiny_compares_bf16_with_fp32():
    result = _run([sys.executable, "benchmarks/bench_bf16.py", "--tiny"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "RANDOM weights" in out
    assert out.count("bf16 vs fp32, same seeds") == 2  # the study's sampler and the paper's
    assert "another seed" in out and "target:" in out


def test_gpu_report_summarises_a_check(tmp_path):
    start = time.time() - 100
    with open(tmp_path / "nvidia_smi.csv", "w") as handle:
        handle.write("timestamp, utilization.gpu [%], memory.used [MiB], power.draw [W]\n")
        for i in range(100):
            stamp = datetime.fromtimestamp(start + i).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]
            handle.write(f"{stamp}, {80 if i >= 50 else 0}, 2048, 100.0\n")
    (tmp_path / "phases.tsv").write_text(f"study\t{start + 50}\t{start + 99}\t0\n")
    (tmp_path / "gpu_check.log").write_text("versions: torch 9\ndevice: a GPU\n")
    run = tmp_path / "run"
    (run / "logs" / "seed_0").mkdir(parents=True)
    (run / "benchmarks" / "seed_1").mkdir(parents=True)
    (run / "benchmarks" / "seed_1" / "train_psi.tsv").write_text("s\th:m:s\n30.0\t0:00:30\n")
    (run / "logs" / "seed_0" / "train_psi.log").write_text(
        "step 4: waited 1.50 s for batches of 30.00 s in the training loop (5.0 %)\n"
    )
    result = _run(
        [
            sys.executable,
            "benchmarks/gpu_report.py",
            "--check-dir",
            str(tmp_path),
            "--run",
            str(run),
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "| study | 0 | 49 | 80 %" in result.stdout
    assert "seed_0/train_psi.log: waited 1.5 s for batches of 30.0 s in the loop (5.0 %)" in (
        result.stdout
    )
    assert "| train_psi | 30 |" in result.stdout  # benchmarks/seed_1/: the rule below the seed
    assert "device: a GPU" in result.stdout and "calibration_targets.csv: MISSING" in result.stdout


# ----- benchmarks/gpu_check.sh ----------------------------------------------------------------
def test_gpu_check_script_parses():
    assert _run(["bash", "-n", str(CHECK)]).returncode == 0
    bad = _run(["bash", str(CHECK), "--phases", "everything"])
    assert bad.returncode == 64 and "unknown phase" in bad.stderr


def test_gpu_check_dry_run_runs_the_cpu_side_checks(tmp_path):
    result = _run(["bash", str(CHECK), "--dry-run"], env={**os.environ, "OUT": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-3000:]
    log = (tmp_path / "gpu_check.log").read_text()
    for line in ("modules import", "config/gpu.yaml validates", "snakemake -n", "dry run:"):
        assert line in log


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_gpu_check_without_a_gpu_stops_after_the_cpu_checks(tmp_path):
    result = _run(["bash", str(CHECK)], env={**os.environ, "OUT": str(tmp_path)})
    assert result.returncode == 3, result.stdout[-3000:]
    assert "NO CUDA GPU VISIBLE" in result.stdout


# ----- on CUDA --------------------------------------------------------------------------------
def _small_psi(gpu_config: dict) -> dict:
    """gpu.yaml with a 32 x 32 KDE and a narrow U-Net: the same code, a fast compile."""
    config = copy.deepcopy(gpu_config)
    config["geometry"]["lr_size"] = 8
    config["diffusion"]["unet"].update(
        channels=32, multipliers=[1, 2, 2], attention_resolutions=[16, 8], norm_groups=8
    )
    return config


def _random_output_layer(net):
    with torch.no_grad():  # the zero-initialised output layer would hide every difference
        net.conv_out.weight.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(5))
    return net


@gpu
def test_cuda_bf16_forward_of_the_paper_unet_is_close_to_fp32(gpu_config):
    torch.manual_seed(0)
    net, _ = build_psi(gpu_config)
    net = _random_output_layer(net).eval().to("cuda", memory_format=torch.channels_last)
    gen = torch.Generator("cuda").manual_seed(1)
    x = torch.randn(8, 2, 80, 80, device="cuda", generator=gen)
    t = torch.rand(8, device="cuda", generator=gen)
    with torch.inference_mode():
        fp32 = net(x, t)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = net(x, t).float()
    rel = (bf16 - fp32).norm() / fp32.norm()
    assert torch.isfinite(bf16).all() and rel < 0.05, float(rel)


@gpu
def test_cuda_bf16_training_steps_run_and_log_the_data_wait(gpu_config, tmp_path, caplog):
    config = _small_psi(gpu_config)
    torch.manual_seed(0)
    net, diffusion = build_psi(config)
    rng = np.random.default_rng(0)
    y = rng.random((32, 32, 32), dtype=np.float32) ** 4
    yhat = np.clip(y + rng.normal(0, 0.05, y.shape), 0, 1).astype(np.float32)
    sources = [ShardSource(32, lambda: {"y": y, "yhat": yhat})]
    settings = TrainSettings(30, 16, 1e-3, 2, 0.0, 1.0, 10, 100, 0.99, "cuda", True, 1, "none")
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def loss(model, batch, generator):
        return diffusion.training_loss(model, batch["y"], batch["yhat"], generator)

    with caplog.at_level(logging.INFO, logger="diffloc.training.loop"):
        result = train(
            net,
            loss,
            BatchStream(sources, 16, 3, ("g",)),
            lambda: sequential_batches(sources, 16),
            settings,
            seed=3,
            key=("g",),
            checkpoint=tmp_path / "c.ckpt",
            log_csv=tmp_path / "log.csv",
            fingerprint="fp",
            progress=False,
        )
    losses = [row["train_loss"] for row in result.rows] + [row["val_loss"] for row in result.rows]
    assert len(result.rows) == 3 and all(np.isfinite(losses))
    after = result.model.state_dict()
    assert all(v.is_cuda for v in after.values())
    assert any(not torch.equal(before[k], after[k].cpu()) for k in before)  # it learnt
    assert "for batches of" in caplog.text


@gpu
def test_cuda_sampling_is_reproducible_and_batching_invariant(gpu_config):
    config = _small_psi(gpu_config)
    torch.manual_seed(0)
    net, diffusion = build_psi(config)
    net = _random_output_layer(net).eval().to("cuda", memory_format=torch.channels_last)
    yhat = torch.rand((3, 32, 32), generator=torch.Generator().manual_seed(1)).cuda()
    sampler = Sampler("dpmpp_2m", 20, "logsnr")
    runs = [
        diffusion.sample(net, yhat, 8, torch.Generator().manual_seed(2), sampler, batch)
        for batch in (16, 16, 8)
    ]
    assert runs[0].shape == (3, 8, 32, 32) and torch.isfinite(runs[0]).all()
    torch.testing.assert_close(runs[1], runs[0], atol=1e-4, rtol=0)
    # another batch may pick other (TF32) convolution kernels: rounding differences only
    torch.testing.assert_close(runs[2], runs[0], atol=5e-3, rtol=0)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        half = diffusion.sample(net, yhat, 8, torch.Generator().manual_seed(2), sampler, 16)
    assert half.dtype == torch.float32 and (half - runs[0]).abs().mean() < 0.02


@gpu
def test_cuda_compiled_unet_matches_eager(gpu_config):
    config = _small_psi(gpu_config)
    torch.manual_seed(0)
    net, _ = build_psi(config)
    net = _random_output_layer(net).eval().to("cuda", memory_format=torch.channels_last)
    compiled = torch.compile(net)
    x = torch.randn(16, 2, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    t = torch.rand(16, device="cuda")
    with torch.inference_mode():
        eager, fast = net(x, t), compiled(x, t)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            fast_bf16 = compiled(x, t).float()
    assert (fast - eager).norm() / eager.norm() < 1e-2
    assert (fast_bf16 - eager).norm() / eager.norm() < 0.05

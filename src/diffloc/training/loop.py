"""One training loop for phi and psi: Adam with warm-up and cosine decay, validation, CSV log,
progress bar, EMA, checkpoints and exact resume.

Every random draw of step s (dropout, diffusion times and noise) is seeded from
(seed, key, s) and batch s is a pure function of (seed, key, s), so a run killed and resumed
from its last checkpoint ends, on CPU, with weights identical to an uninterrupted run.
"""

import copy
import csv
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from diffloc import seeding
from diffloc.data.files import atomic_path
from diffloc.data.models import save_model
from diffloc.provenance import machine, source_fingerprint, versions
from diffloc.runtime import resolve_device, torch_threads
from diffloc.training.augment import AUGMENTS, augment_batch
from diffloc.training.batches import Arrays, BatchStream, ShardSource, sequential_batches

log = logging.getLogger(__name__)


LOG_COLUMNS = ("step", "train_loss", "val_loss", "lr", "seconds")


LossFn = Callable[[nn.Module, dict[str, torch.Tensor], torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class TrainSettings:
    """The `train` config section of a network (steps, optimiser, cadence, device, threads)."""

    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    weight_decay: float
    grad_clip: float
    val_every: int
    checkpoint_every: int
    ema_decay: float
    device: str
    cuda_bf16: bool
    threads: int
    augment: str

    def __post_init__(self):
        if self.augment not in AUGMENTS:
            raise ValueError(f"train.augment {self.augment!r}; allowed: {list(AUGMENTS)}")

    @classmethod
    def from_config(cls, cfg: dict) -> "TrainSettings":
        """Settings from a config section holding exactly these keys."""
        return cls(**{f.name: cfg[f.name] for f in fields(cls)})


@dataclass
class TrainResult:
    """Trained network (last weights), its EMA copy (or None) and the log rows."""

    model: nn.Module
    ema: nn.Module | None
    rows: list[dict]

    @property
    def inference_model(self) -> nn.Module:
        """The weights to use for inference: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.model


def learning_rate(step: int, s: TrainSettings) -> float:
    """Learning rate at `step`: linear warm-up over warmup_steps, then cosine decay to 0."""
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
    return s.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def to_tensors(batch: Arrays, device: torch.device) -> dict[str, torch.Tensor]:
    """Image arrays [B, H, W] or [B, C, H, W] -> float32 tensors [B, 1, H, W] or [B, C, H, W]
    (channels_last) on `device`."""
    out = {}
    for name, array in batch.items():
        t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)
        if t.ndim == 3:
            t = t.unsqueeze(1)
        if t.ndim == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        out[name] = t
    return out


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def evaluate(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Arrays],
    device: torch.device,
    seed: int,
    key: tuple,
    bf16: bool = False,
) -> float:
    """Mean loss over `batches` in eval mode, with a fixed generator per batch."""
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=bf16):
        for i, batch in enumerate(batches):
            tensors = to_tensors(batch, device)
            n = next(iter(tensors.values())).shape[0]
            gen = _generator(device, seeding.torch_seed(seed, *key, "val", i))
            total += float(loss_fn(model, tensors, gen)) * n
            count += n
    model.train()
    return total / count


def _write_log(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _log_data_wait(step: int, data_seconds: float, loop_seconds: float) -> None:
    """Log the seconds the loop waited for batches out of its wall time (log only)."""
    share = 100.0 * data_seconds / loop_seconds if loop_seconds > 0 else 0.0
    log.info(
        "step %d: waited %.2f s for batches of %.2f s in the training loop (%.1f %%)",
        step,
        data_seconds,
        loop_seconds,
        share,
    )


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        ema_params, params = list(ema.parameters()), list(model.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)


def train(
    model: nn.Module,
    loss_fn: LossFn,
    stream: BatchStream,
    val_batches: Callable[[], Iterable[Arrays]],
    settings: TrainSettings,
    *,
    seed: int,
    key: tuple[str | int, ...],
    checkpoint: Path,
    log_csv: Path,
    fingerprint: str,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train `model` for settings.steps steps, resuming from `checkpoint` if it matches.

    `loss_fn(model, tensors, generator)` returns the scalar loss of one batch; `val_batches()`
    yields the validation set. `fingerprint` identifies the run (config, data); a checkpoint
    with another fingerprint, or written by other diffloc source code
    (`provenance.source_fingerprint`), is ignored (and said so in the log). `on_step(step)` is called
    after each completed step (tests use it to simulate a kill). Torch runs on `settings.threads`
    CPU threads whatever the job was given: the order of float reductions, and so the weights,
    depend on the thread count, and pinning it keeps them independent of the machine's cores.
    """
    with torch_threads(settings.threads):
        device = resolve_device(settings.device)
        bf16 = settings.cuda_bf16 and device.type == "cuda"
        model = model.to(device, memory_format=torch.channels_last)
        ema = copy.deepcopy(model) if settings.ema_decay > 0 else None
        opt = torch.optim.Adam(
            model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        start, rows, elapsed, running, running_n = 0, [], 0.0, 0.0, 0
        if checkpoint.exists():
            state = torch.load(checkpoint, map_location=device, weights_only=True)
            if state.get("fingerprint") != fingerprint:
                log.warning(
                    "ignoring checkpoint %s: it belongs to another config or data", checkpoint
                )
            elif state.get("code") != source_fingerprint():
                log.warning(
                    "ignoring checkpoint %s: it was written by other diffloc code (source "
                    "fingerprint %s, now %s); training from step 0",
                    checkpoint, state.get("code"), source_fingerprint(),
                )  # fmt: skip
            else:
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                if ema is not None:
                    ema.load_state_dict(state["ema"])
                start, rows, elapsed = state["step"], state["rows"], state["seconds"]
                running, running_n = state["running"], state["running_n"]
                log.info("resuming from %s at step %d", checkpoint, start)
        model.train()
        if ema is not None:
            ema.eval()
        t0 = time.perf_counter() - elapsed
        # log only: wall time spent waiting for batches (read, index, copy to the device) against the
        # whole loop, since this process started it; on CUDA the GPU idles while a batch is prepared
        loop_began, data_seconds = time.perf_counter(), 0.0
        bar = tqdm(
            range(start, settings.steps),
            initial=start,
            total=settings.steps,
            desc="training",
            unit="step",
            disable=not progress,
            file=sys.stderr,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
        for step in bar:
            lr = learning_rate(step, settings)
            for group in opt.param_groups:
                group["lr"] = lr
            torch.manual_seed(seeding.torch_seed(seed, *key, "dropout", step))
            gen = _generator(device, seeding.torch_seed(seed, *key, "loss", step))
            waited = time.perf_counter()
            batch = augment_batch(
                stream.batch(step),
                settings.augment,
                seeding.rng(seed, *key, "augment", step),
            )
            tensors = to_tensors(batch, device)
            data_seconds += time.perf_counter() - waited
            with torch.autocast("cuda", torch.bfloat16, enabled=bf16):
                loss = loss_fn(model, tensors, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {float(loss)} at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            opt.step()
            if ema is not None:
                _ema_update(ema, model, settings.ema_decay)
            running += loss.item()
            running_n += 1
            done = step + 1
            if done % settings.val_every == 0 or done == settings.steps:
                val = evaluate(
                    ema if ema is not None else model,
                    loss_fn,
                    val_batches(),
                    device,
                    seed,
                    key,
                    bf16,
                )
                rows.append(
                    {
                        "step": done,
                        "train_loss": running / running_n,
                        "val_loss": val,
                        "lr": lr,
                        "seconds": round(time.perf_counter() - t0, 3),
                    }
                )
                running, running_n = 0.0, 0
                _write_log(log_csv, rows)
                bar.set_postfix(train=f"{rows[-1]['train_loss']:.3g}", val=f"{val:.3g}")
                log.info(
                    "step %d: train %.4g, val %.4g, lr %.3g", done, rows[-1]["train_loss"], val, lr
                )
                _log_data_wait(done, data_seconds, time.perf_counter() - loop_began)
            if done % settings.checkpoint_every == 0 and done < settings.steps:
                state = {
                    "fingerprint": fingerprint,
                    "code": source_fingerprint(),
                    "step": done,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None,
                    "rows": rows,
                    "running": running,
                    "running_n": running_n,
                    "seconds": time.perf_counter() - t0,
                }
                with atomic_path(checkpoint) as tmp:
                    torch.save(state, tmp)
            if on_step is not None:
                on_step(done)
        bar.close()
        return TrainResult(model, ema, rows)


def train_and_save(
    model: nn.Module,
    loss_fn: LossFn,
    train_sources: list[ShardSource],
    val_sources: list[ShardSource],
    settings: TrainSettings,
    *,
    seed: int,
    key: tuple[str | int, ...],
    model_path: Path,
    model_config: dict,
    metadata: dict,
    checkpoint: Path,
    log_csv: Path,
    fingerprint: str,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """`train` on shuffled batches of `train_sources`, validating on all of `val_sources`; write
    the inference weights (EMA when on) with `metadata` plus the run's provenance, then drop
    the checkpoint, which only a killed run needs."""
    result = train(
        model,
        loss_fn,
        BatchStream(train_sources, settings.batch_size, seed, (*key, "batches")),
        lambda: sequential_batches(val_sources, settings.batch_size),
        settings,
        seed=seed,
        key=key,
        checkpoint=checkpoint,
        log_csv=log_csv,
        fingerprint=fingerprint,
        progress=progress,
        on_step=on_step,
    )
    provenance = {
        "fingerprint": fingerprint,
        "seed": seed,
        "final": {k: v for k, v in result.rows[-1].items() if k != "seconds"},  # no wall time
        "weights": "ema" if result.ema is not None else "last",
        "versions": versions(),
        "machine": {k: machine()[k] for k in ("cpu_model", "torch_build", "cuda_device")},
    }
    save_model(model_path, result.inference_model, model_config, {**metadata, **provenance})
    checkpoint.unlink(missing_ok=True)
    log.info("saved %s (final validation loss %.4g)", model_path, result.rows[-1]["val_loss"])
    return result

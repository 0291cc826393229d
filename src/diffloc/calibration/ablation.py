"""Sampler ablation: calibration and cost of psi's samplers (kind, steps S, samples K).

Every sampler kind x steps S of `calibration.ablation` draws K_max = max(k) samples per image
once; K = k < K_max uses the first k of them (samples of an image are exchangeable, so this
is a subsample of the same run, not a separate run). Its cost is counted in network
evaluations per image (one image through the U-Net: counted during sampling, exact and
machine-independent; K / K_max of the K_max count for a subsample), and timed in seconds per
image for K_max on the job's device and threads (scaled by k / K_max for the subsamples,
stated in the `seconds_source` column). Seconds are machine-dependent: they go to a timing
table, never into the metrics or the recommendation.

Calibration per (kind, S, K), on the ablation images:
- dense test images: coverage of central intervals (sample quantiles by
  diffusion.summary.quantile_method) of y0 on support pixels (y0 or the posterior mean >=
  floor), each against its tested level at that K (`level_<c>`, calibration.metrics),
  `coverage_error` = mean over the levels of |coverage - tested level|, z-score RMS, CRPS
  (fair estimator, KDE units);
- isolated emitters (when MCMC maps are given): median over images of the RMS-std ratio to the
  MCMC (beta = 1) push-forward std on the support, and the median Pearson r of the std maps.

`measure` runs the grid's settings of one kind on the ablation images (`AblationImages`, read
by `diffloc.calibration.inputs.read_ablation_images`): the metrics table (network evaluations
included) is reproducible, the timing table is not. `recommend` picks a setting by
calibration first and by network evaluations second.
"""

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from diffloc import seeding
from diffloc.calibration import metrics as cal
from diffloc.psi.diffusion import Diffusion, Net, Sampler
from diffloc.runtime import describe_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One sampler setting of the ablation grid (K_max samples per image)."""

    kind: str
    steps: int
    spacing: str
    eta: float

    def sampler(self) -> Sampler:
        return Sampler(
            self.kind, self.steps, self.spacing, self.eta if self.kind == "ddim" else 0.0
        )


def grid(cfg: dict, reference: dict) -> list[Run]:
    """The ablation runs: every kind x steps of `cfg` (calibration.ablation), then the study's
    own sampler (`reference`, diffusion.sampler) unless the grid already holds it."""
    runs = [
        Run(kind, int(s), cfg["spacing"], float(cfg["ddim_eta"]) if kind == "ddim" else 0.0)
        for kind in cfg["samplers"]
        for s in cfg["steps"]
    ]
    ref = Run(
        reference["kind"],
        int(reference["steps"]),
        reference["spacing"],
        float(reference.get("eta", 0.0)),
    )
    return runs if ref in runs else [*runs, ref]


def warm_up(diffusion: Diffusion, net: Net, cond: torch.Tensor, k: int, batch_size: int) -> None:
    """One untimed single-step pass over the same batch shapes, so that one-off costs (memory
    allocation, kernel selection: ~3x the per-call time on a CPU) are not timed; it draws from
    its own generator and leaves the seeded ones untouched."""
    generator = torch.Generator(cond.device).manual_seed(0)
    diffusion.sample(net, cond, k, generator, Sampler("ancestral", 1), batch_size)


def draw(
    diffusion: Diffusion,
    net: Net,
    cond: torch.Tensor,
    k: int,
    generator: torch.Generator,
    run: Run,
    batch_size: int,
) -> tuple[np.ndarray, float, int]:
    """K samples per image of psi's condition cond [N, C, H, W] ([N, K, H, W] numpy, KDE
    units), the wall seconds taken and the network evaluations made (images passed through the
    net, summed over its calls)."""
    evaluations = [0]

    def count(_module, inputs, _output):
        evaluations[0] += int(inputs[0].shape[0])

    hook = net.register_forward_hook(count)
    try:
        began = time.perf_counter()
        samples = diffusion.sample(net, cond, k, generator, run.sampler(), batch_size)
        seconds = time.perf_counter() - began
    finally:
        hook.remove()
    return samples.numpy(), seconds, evaluations[0]


def dense_metrics(
    samples: np.ndarray, y0: np.ndarray, levels: Sequence[float], method: str, floor: float
) -> dict[str, float]:
    """Coverage per level (intervals by numpy quantile `method`) against its tested level at K
    (`level_<c>`), coverage_error, z RMS and CRPS of samples [N, K, H, W] against y0."""
    x = np.asarray(samples, dtype=np.float64)
    mean, std = x.mean(axis=1), x.std(axis=1, ddof=1)
    mask = cal.support_mask(floor, y0, mean)
    out = {}
    for c in levels:
        lo, hi = cal.sample_interval(x, c, method)
        out[f"level_{100 * c:g}"] = cal.sample_ranks_level(x.shape[1], c, method)
        out[f"coverage_{100 * c:g}"] = cal.coverage(y0, lo, hi, mask)
    out["coverage_error"] = float(
        np.mean([abs(out[f"coverage_{100 * c:g}"] - out[f"level_{100 * c:g}"]) for c in levels])
    )
    z, _ = cal.z_scores(y0, mean, std, mask)
    out["z_rms"] = cal.z_summary(z)["z_rms"]
    out["crps"] = float(np.mean(cal.crps_samples(y0, x, mask)))
    return out


def isolated_metrics(
    samples: np.ndarray, y0: np.ndarray, mcmc_std: np.ndarray, floor: float
) -> dict[str, float]:
    """Median RMS-std ratio and Pearson r of psi's std to the MCMC std over isolated images."""
    x = np.asarray(samples, dtype=np.float64)
    mean, std = x.mean(axis=1), x.std(axis=1, ddof=1)
    mask = cal.support_mask(floor, y0, mean)
    return {
        "std_ratio_mcmc": _median(cal.rms_ratio(std, mcmc_std, mask)),
        "pearson_mcmc": _median(cal.pearson(std, mcmc_std, mask)),
    }


def _median(values: np.ndarray) -> float:
    """Median of the finite values (NaN if none: e.g. a zero std map has no correlation)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def subsample_rows(
    run: Run,
    ks: Sequence[int],
    dense: np.ndarray,
    y0: np.ndarray,
    isolated: np.ndarray | None,
    y0_isolated: np.ndarray | None,
    mcmc_std: np.ndarray | None,
    levels: Sequence[float],
    method: str,
    floor: float,
    evaluations_per_image: float,
) -> pd.DataFrame:
    """Metrics of one run for every K in ks (the first K samples of its K_max), with its network
    evaluations per image (`evaluations_per_image` counted at K_max, scaled by K / K_max);
    no timings."""
    rows = []
    for k in sorted(ks):
        row = {"sampler": run.kind, "steps": run.steps, "spacing": run.spacing, "eta": run.eta}
        row["k"] = k
        row["network_evaluations_per_image"] = evaluations_per_image * k / max(ks)
        row["n_test_images"] = len(dense)
        row["n_isolated_images"] = 0 if isolated is None else len(isolated)
        row.update(dense_metrics(dense[:, :k], y0, levels, method, floor))
        if isolated is not None:
            row.update(isolated_metrics(isolated[:, :k], y0_isolated, mcmc_std, floor))
        rows.append(row)
    return pd.DataFrame(rows)


def timing_rows(run: Run, ks: Sequence[int], seconds_per_image: float) -> pd.DataFrame:
    """Seconds per image for each K: measured at K_max, scaled by K / K_max below it."""
    k_max = max(ks)
    return pd.DataFrame(
        [
            {
                "sampler": run.kind,
                "steps": run.steps,
                "k": k,
                "seconds_per_image": seconds_per_image * k / k_max,
                "seconds_source": "measured" if k == k_max else f"scaled from K = {k_max}",
            }
            for k in sorted(ks)
        ]
    )


@dataclass(frozen=True)
class AblationImages:
    """The ablation's images: true KDEs `y0` [N, H, W] of the dense test images and psi's
    `condition` [N, C, H, W] (`diffloc.data.condition`: phi's estimates, for yhat_x with the
    camera images) per group ("test", and "isolated" when isolated images are used), with the
    isolated emitters' true KDEs and MCMC (beta = 1) std maps [M, H, W] (None without them)."""

    y0: np.ndarray
    condition: dict[str, np.ndarray]
    y0_isolated: np.ndarray | None = None
    mcmc_std: np.ndarray | None = None


def measure(
    diffusion: Diffusion,
    net: Net,
    images: AblationImages,
    runs: Sequence[Run],
    ks: Sequence[int],
    batch_size: int,
    levels: Sequence[float],
    method: str,
    floor: float,
    seed: int,
    device: torch.device,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw K_max = max(ks) samples per image with each run (stream ("ablation", kind, steps,
    group) of `seed`) after an untimed warm-up; return the metrics of every (run, K)
    (`subsample_rows`) and the seconds per image (`timing_rows`, with the device)."""
    cond = {name: torch.from_numpy(c).to(device) for name, c in images.condition.items()}
    for c in cond.values():
        warm_up(diffusion, net, c, max(ks), batch_size)
    metrics, timings = [], []
    for r in runs:
        samples, seconds, evaluations = {}, 0.0, 0
        for name, c in cond.items():
            generator = torch.Generator(device).manual_seed(
                seeding.torch_seed(seed, "ablation", r.kind, r.steps, name)
            )
            samples[name], took, made = draw(diffusion, net, c, max(ks), generator, r, batch_size)
            seconds += took
            evaluations += made
        n_images = sum(len(c) for c in images.condition.values())
        per_image = seconds / n_images
        log.info(
            "%s S = %d (%s): %.3f s per image for K = %d on %s, %d threads",
            r.kind,
            r.steps,
            r.spacing,
            per_image,
            max(ks),
            describe_device(device),
            torch.get_num_threads(),
        )
        metrics.append(
            subsample_rows(
                r,
                ks,
                samples["test"],
                images.y0,
                samples.get("isolated"),
                images.y0_isolated,
                images.mcmc_std,
                levels,
                method,
                floor,
                evaluations / n_images,
            )
        )
        timings.append(timing_rows(r, ks, per_image).assign(device=describe_device(device)))
    return pd.concat(metrics, ignore_index=True), pd.concat(timings, ignore_index=True)


def recommend(
    table: pd.DataFrame, max_coverage_error: float, ratio_bounds: Sequence[float]
) -> dict:
    """The cheapest setting (fewest network evaluations per image, then best coverage) whose
    coverage_error <= max_coverage_error and whose MCMC std ratio (when measured) lies within
    ratio_bounds; if none qualifies, the best-calibrated one (smallest coverage_error, ties by
    network evaluations). Seconds play no part, so identical runs recommend the same setting.
    Returns the row as a dict plus `qualified` (bool) and `text`, one sentence for the report."""
    lo, hi = ratio_bounds
    cost = "network_evaluations_per_image"
    ok = table["coverage_error"] <= max_coverage_error
    if "std_ratio_mcmc" in table:
        ok &= table["std_ratio_mcmc"].between(lo, hi)
    if ok.any():
        best = table[ok].sort_values([cost, "coverage_error"], kind="stable").iloc[0]
        why = f"cheapest setting with mean |coverage - nominal| <= {max_coverage_error:g}" + (
            f" and std ratio to MCMC in [{lo:g}, {hi:g}]" if "std_ratio_mcmc" in table else ""
        )
    else:
        best = table.sort_values(["coverage_error", cost], kind="stable").iloc[0]
        why = (
            f"no setting met mean |coverage - nominal| <= {max_coverage_error:g}"
            + (f" with std ratio to MCMC in [{lo:g}, {hi:g}]" if "std_ratio_mcmc" in table else "")
            + "; this is the best-calibrated one"
        )
    row = best.to_dict()
    ratio = row.get("std_ratio_mcmc", math.nan)
    text = (
        f"Recommended sampler: {row['sampler']} with S = {int(row['steps'])} steps and "
        f"K = {int(row['k'])} samples ({why}): {row[cost]:.0f} network evaluations per image, "
        f"mean |coverage - nominal| = {row['coverage_error']:.3f}, "
        f"coverage_90 = {row['coverage_90']:.3f}"
        + (f", std ratio to MCMC = {ratio:.2f}" if np.isfinite(ratio) else "")
        + "."
    )
    return {**row, "qualified": bool(ok.any()), "text": text}

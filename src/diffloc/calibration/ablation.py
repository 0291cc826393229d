"""Sampler ablation (SPEC section 9): calibration and cost of psi's samplers.

Every sampler kind x steps S of `calibration.ablation` draws K_max = max(k) samples per image
once; K = k < K_max uses the first k of them (samples of an image are exchangeable, so this
is a subsample of the same run, not a separate run). Its seconds per image are measured for
K_max on the job's device and threads, and scaled by k / K_max for the subsamples (sampling
cost is linear in K at a fixed batch; stated in the `seconds_source` column).

Calibration per (kind, S, K), on the ablation images:
- dense test images: coverage of central intervals (sample quantiles, numpy linear) of y0 on
  support pixels (y0 or the posterior mean >= floor), `coverage_error` = mean over the levels
  of |coverage - nominal|, z-score RMS, CRPS (fair estimator, KDE units);
- isolated emitters (when MCMC maps are given): median over images of the RMS-std ratio to the
  MCMC (beta = 1) push-forward std on the support, and the median Pearson r of the std maps.
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from diffloc.calibration import metrics as cal
from diffloc.psi.diffusion import Diffusion, Net, Sampler


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


def warm_up(diffusion: Diffusion, net: Net, yhat: torch.Tensor, k: int, batch_size: int) -> None:
    """One untimed single-step pass over the same batch shapes, so that one-off costs (memory
    allocation, kernel selection: ~3x the per-call time on a CPU) are not timed; it draws from
    its own generator and leaves the seeded ones untouched."""
    generator = torch.Generator(yhat.device).manual_seed(0)
    diffusion.sample(net, yhat, k, generator, Sampler("ancestral", 1), batch_size)


def draw(
    diffusion: Diffusion,
    net: Net,
    yhat: torch.Tensor,
    k: int,
    generator: torch.Generator,
    run: Run,
    batch_size: int,
) -> tuple[np.ndarray, float]:
    """K samples per image of yhat [N, H, W] ([N, K, H, W] numpy) and the wall seconds taken."""
    began = time.perf_counter()
    samples = diffusion.sample(net, yhat, k, generator, run.sampler(), batch_size)
    return samples.numpy(), time.perf_counter() - began


def dense_metrics(
    samples: np.ndarray, y0: np.ndarray, levels: Sequence[float], floor: float
) -> dict[str, float]:
    """Coverage per level, coverage_error, z RMS and CRPS of samples [N, K, H, W] against y0."""
    x = np.asarray(samples, dtype=np.float64)
    mean, std = x.mean(axis=1), x.std(axis=1, ddof=1)
    mask = cal.support_mask(floor, y0, mean)
    out = {}
    for c in levels:
        lo, hi = cal.sample_interval(x, c)
        out[f"coverage_{100 * c:g}"] = cal.coverage(y0, lo, hi, mask)
    out["coverage_error"] = float(np.mean([abs(out[f"coverage_{100 * c:g}"] - c) for c in levels]))
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
    floor: float,
) -> pd.DataFrame:
    """Metrics of one run for every K in ks (the first K samples of its K_max); no timings."""
    rows = []
    for k in sorted(ks):
        row = {"sampler": run.kind, "steps": run.steps, "spacing": run.spacing, "eta": run.eta}
        row["k"] = k
        row["n_test_images"] = len(dense)
        row["n_isolated_images"] = 0 if isolated is None else len(isolated)
        row.update(dense_metrics(dense[:, :k], y0, levels, floor))
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


def recommend(
    table: pd.DataFrame, max_coverage_error: float, ratio_bounds: Sequence[float]
) -> dict:
    """The fastest setting whose coverage_error <= max_coverage_error and whose MCMC std ratio
    (when measured) lies within ratio_bounds; if none qualifies, the best-calibrated one
    (smallest coverage_error, ties by seconds). Returns the row as a dict plus `qualified`
    (bool) and `text`, one sentence for the report."""
    lo, hi = ratio_bounds
    ok = table["coverage_error"] <= max_coverage_error
    if "std_ratio_mcmc" in table:
        ok &= table["std_ratio_mcmc"].between(lo, hi)
    if ok.any():
        best = table[ok].sort_values(["seconds_per_image", "coverage_error"]).iloc[0]
        why = f"fastest setting with mean |coverage - nominal| <= {max_coverage_error:g}" + (
            f" and std ratio to MCMC in [{lo:g}, {hi:g}]" if "std_ratio_mcmc" in table else ""
        )
    else:
        best = table.sort_values(["coverage_error", "seconds_per_image"]).iloc[0]
        why = (
            f"no setting met mean |coverage - nominal| <= {max_coverage_error:g}"
            + (f" with std ratio to MCMC in [{lo:g}, {hi:g}]" if "std_ratio_mcmc" in table else "")
            + "; this is the best-calibrated one"
        )
    row = best.to_dict()
    ratio = row.get("std_ratio_mcmc", math.nan)
    text = (
        f"Recommended sampler: {row['sampler']} with S = {int(row['steps'])} steps and "
        f"K = {int(row['k'])} samples ({why}): {row['seconds_per_image']:.3g} s per image, "
        f"mean |coverage - nominal| = {row['coverage_error']:.3f}, "
        f"coverage_90 = {row['coverage_90']:.3f}"
        + (f", std ratio to MCMC = {ratio:.2f}" if np.isfinite(ratio) else "")
        + "."
    )
    return {**row, "qualified": bool(ok.any()), "text": text}

"""Figure 6: is psi's uncertainty calibrated, on every training seed? (a) per isolated emitter,
RMS of psi's std map against the MCMC push-forward std over the emitter's support; (b) median
ratio per photon count, one line per psi seed and MCMC setting; (c) reliability diagram, tested
vs empirical coverage of central intervals on dense test pixels, per seed; (d) z-score
histograms against N(0, 1), per seed. Every table has a `seed` column (psi's training seed)."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import norm

METHOD_STYLE = {
    "psi": {"color": "tab:blue", "label": "psi (diffusion posterior)"},
    "psi_recalibrated": {"color": "tab:green", "label": "psi, recalibrated on val"},
    "phi_const_sigma": {"color": "tab:gray", "label": "phi + constant sigma"},
}
SETTING_MARKERS = ("o", "s", "^", "D")
SEED_LINES = ("-", "--", ":", "-.")


def _seed_line(seed: int, seeds: list) -> str:
    return SEED_LINES[seeds.index(seed) % len(SEED_LINES)]


def _setting_label(setting: str, beta: float) -> str:
    return f"MCMC {setting} (β = {beta:g})" + (", true posterior" if beta == 1 else "")


def figure6(
    per_image: pd.DataFrame,
    coverage: pd.DataFrame,
    reliability: pd.DataFrame,
    z_hist: pd.DataFrame,
) -> plt.Figure:
    """Four panels from the calibration tables (see the module docstring)."""
    fig, axes = plt.subplots(2, 2, figsize=(10.0, 8.6), layout="constrained")
    _std_scatter(axes[0, 0], per_image)
    _ratio_by_photons(axes[0, 1], per_image)
    _reliability(axes[1, 0], reliability, coverage)
    _z_panel(axes[1, 1], z_hist, coverage)
    seeds = sorted(coverage["seed"].unique())
    fig.suptitle(f"psi trained with {len(seeds)} seeds: {', '.join(str(x) for x in seeds)}")
    for ax, letter in zip(axes.ravel(), "abcd", strict=True):
        ax.set_title(f"({letter}) {ax.get_title()}")
    return fig


def _std_scatter(ax: plt.Axes, per_image: pd.DataFrame) -> None:
    photons = sorted(per_image["photons"].unique())
    cmap = plt.get_cmap("viridis")
    colors = {p: cmap(i / max(1, len(photons) - 1)) for i, p in enumerate(photons)}
    settings = list(dict.fromkeys(zip(per_image["setting"], per_image["beta"], strict=True)))
    for (setting, beta), marker in zip(settings, SETTING_MARKERS, strict=False):
        rows = per_image[per_image["setting"] == setting]
        filled = beta == 1
        ax.scatter(
            rows["rms_std_mcmc"],
            rows["rms_std_diffusion"],
            c=[colors[p] for p in rows["photons"]] if filled else "none",
            edgecolors=[colors[p] for p in rows["photons"]],
            marker=marker,
            s=26,
            linewidths=0.9,
        )
        ax.scatter(
            [],
            [],
            c="black" if filled else "none",
            edgecolors="black",
            marker=marker,
            s=26,
            label=_setting_label(setting, beta),
        )
    values = per_image[["rms_std_mcmc", "rms_std_diffusion"]].to_numpy()
    values = values[np.isfinite(values) & (values > 0)]
    lo, hi = values.min() / 1.5, values.max() * 1.5
    grid = np.array([lo, hi])
    ax.plot(grid, grid, color="black", lw=1, label="equal std")
    ax.fill_between(
        grid, grid * 0.8, grid * 1.25, color="black", alpha=0.08, label="ratio 0.8-1.25"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("MCMC push-forward std, RMS over support (KDE units)")
    ax.set_ylabel("psi posterior std, RMS over support (KDE units)")
    ax.set_title("std per isolated emitter, every psi seed")
    for p in photons:
        ax.scatter([], [], color=colors[p], marker="o", s=26, label=f"i0 = {p:g} photons")
    ax.legend(fontsize=7, loc="lower right", ncol=1, framealpha=0.9)


def _ratio_by_photons(ax: plt.Axes, per_image: pd.DataFrame) -> None:
    settings = list(dict.fromkeys(zip(per_image["setting"], per_image["beta"], strict=True)))
    seeds = sorted(per_image["seed"].unique())
    photons = sorted(per_image["photons"].unique())
    x = np.arange(len(photons))
    groups = [(j, st, sd) for j, st in enumerate(settings) for sd in seeds]
    width = 0.8 / max(1, len(groups))
    rng = np.random.default_rng(0)  # horizontal jitter of the points only
    for g, (j, (setting, beta), seed) in enumerate(groups):
        marker = SETTING_MARKERS[j % len(SETTING_MARKERS)]
        offset = (g - (len(groups) - 1) / 2) * width
        meds = []
        mine = per_image[(per_image["setting"] == setting) & (per_image["seed"] == seed)]
        for i, p in enumerate(photons):
            r = mine[mine["photons"] == p]["ratio"]
            r = r[np.isfinite(r)]
            ax.scatter(
                np.full(len(r), x[i] + offset) + rng.uniform(-0.06, 0.06, len(r)),
                r,
                s=9,
                color=f"C{j}",
                alpha=0.45,
                marker=marker,
            )
            meds.append(np.median(r) if len(r) else np.nan)
        ax.plot(
            x + offset,
            meds,
            marker=marker,
            color=f"C{j}",
            ls=_seed_line(seed, seeds),
            lw=1.2,
            ms=7,
            mfc="white",
            label=f"median, {_setting_label(setting, beta)}, psi seed {seed}",
        )
    ax.axhline(1.0, color="black", lw=1)
    ax.axhspan(0.8, 1.25, color="black", alpha=0.08, label="target 0.8-1.25 (vs β = 1)")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{p:g}" for p in photons])
    ax.set_xlabel("photons per emitter i0")
    ax.set_ylabel("RMS std ratio psi / MCMC (dots: images)")
    ax.set_title("std ratio by photon count and psi seed")
    ax.legend(fontsize=7, loc="best", framealpha=0.9)


def _reliability(ax: plt.Axes, reliability: pd.DataFrame, coverage: pd.DataFrame) -> None:
    ax.plot([0, 1], [0, 1], color="black", lw=1, label="calibrated (diagonal)")
    seeds = sorted(coverage["seed"].unique())
    fitted = {
        (r.method, r.seed): r.fitted for r in coverage[["method", "seed", "fitted"]].itertuples()
    }
    for (method, seed), rows in reliability.groupby(["method", "seed"], sort=False):
        style = METHOD_STYLE.get(method, {"color": None, "label": method})
        label = f"{style['label']}, seed {seed}"
        if method == "psi_recalibrated":
            label += f" (x{fitted[method, seed]:.2f})"
        elif method == "phi_const_sigma":
            label += f" (sigma = {fitted[method, seed]:.3f})"
        ax.errorbar(
            rows["nominal"],
            rows["empirical"],
            yerr=[rows["empirical"] - rows["lo"], rows["hi"] - rows["empirical"]],
            color=style["color"],
            marker="o",
            ms=4,
            capsize=2,
            lw=1.2,
            ls=_seed_line(seed, seeds),
            label=label,
        )
    low = min(0.3, float(np.nanmin(reliability[["nominal", "lo"]].to_numpy())) - 0.05)
    ax.set_xlim(max(0.0, low), 1)
    ax.set_ylim(max(0.0, low), 1)
    ax.set_aspect("equal")
    ax.set_xlabel("tested coverage of the central interval (exact for K exchangeable draws)")
    ax.set_ylabel("empirical coverage of the true y0")
    n = int(coverage["n_images"].iloc[0])
    ax.set_title(f"reliability, {n} test images per seed")
    ax.legend(fontsize=7, loc="upper left", framealpha=0.9)


def _z_panel(ax: plt.Axes, z_hist: pd.DataFrame, coverage: pd.DataFrame) -> None:
    stats = coverage.set_index(["method", "seed"])
    seeds = sorted(coverage["seed"].unique())
    for (method, seed), rows in z_hist.groupby(["method", "seed"], sort=False):
        style = METHOD_STYLE.get(method, {"color": None, "label": method})
        edges = np.append(rows["left"].to_numpy(), rows["right"].to_numpy()[-1])
        ax.stairs(
            rows["density"].to_numpy(),
            edges,
            color=style["color"],
            ls=_seed_line(seed, seeds),
            lw=1.3,
            label=f"{style['label']}, seed {seed}: z std {stats.loc[(method, seed), 'z_std']:.2f}",
        )
    z = np.linspace(z_hist["left"].min(), z_hist["right"].max(), 400)
    ax.plot(z, norm.pdf(z), color="black", lw=1, ls="--", label="N(0, 1)")
    ax.set_xlabel("z = (y0 - predictive mean) / predictive std (end bins: beyond)")
    ax.set_ylabel("density")
    ax.set_title("z-scores on dense test support pixels")
    ax.legend(fontsize=7, loc="upper left", framealpha=0.9)

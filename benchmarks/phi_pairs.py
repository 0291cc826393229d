"""Close pairs on the dense test set: recall by distance to the nearest other emitter, for phi
and the oracle (the same detector on the true KDEs), beside how much the camera image itself
tells a pair from one emitter.

The second table is physics, not a measurement of the code: for two emitters of `photons` each
at separation d (LR px) on the config's camera (Poisson counts, readout variance as its
Poisson-equivalent background w^2 / g^2, plus psf.background), 2 min KL(pair || one emitter)
over the best single emitter (position, photons and background free): the noncentrality of the
likelihood-ratio test of a pair against one emitter (chi-square, three more parameters). At a
0.1 % false-alarm rate (16.3) that test finds a pair of noncentrality 13 in 44 % of images and
of 25 in 88 %. The oracle needs none of it: the true KDE shows every pair it was drawn from.

    python benchmarks/phi_pairs.py results/default [--sigma-y 1.5] [--config config/config.yaml]
    python benchmarks/phi_pairs.py --physics-only   # the second table alone (no run needed)
"""

import argparse
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize

from diffloc.config import load_config, sigma_y_tag
from diffloc.data.models import load_model
from diffloc.data.shards import read_shard, shard_kde
from diffloc.localize.detection import detect, detector_settings
from diffloc.localize.matching import localization_table
from diffloc.phi.network import load_phi_model, predict_kde
from diffloc.physics.psf import expected_counts
from diffloc.provenance import hardware

REPO = Path(__file__).resolve().parents[1]
EDGES = (0.0, 1.0, 1.25, 1.5, 2.0, math.inf)  # LR px, nearest-neighbour distance bins
SEPARATIONS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)  # LR px
WINDOW = 17  # LR px per side of the model image (the pair's light is all inside)


def pair_rates(separation: float, photons: float, sigma: float, background: float) -> np.ndarray:
    """Expected counts [WINDOW, WINDOW] (photons) of two emitters of `photons` each, `separation`
    LR px apart along u, centred on the window, on a flat `background` (photons per px)."""
    c = WINDOW / 2
    u = np.array([c - separation / 2, c + separation / 2])
    v = np.array([c, c])
    return expected_counts(u, v, np.array([photons, photons]), WINDOW, sigma, background)


def single_rates(theta: np.ndarray, sigma: float) -> np.ndarray:
    """Expected counts of one emitter theta = (u, v, photons, background)."""
    u, v, i0, b = theta
    return expected_counts(np.array([u]), np.array([v]), np.array([i0]), WINDOW, sigma, b)


def poisson_kl(rate_p: np.ndarray, rate_q: np.ndarray) -> float:
    """KL divergence (nats) between independent Poisson pixels of rates p and q."""
    return float(np.sum(rate_p * np.log(rate_p / rate_q) - rate_p + rate_q))


def pair_statistic(separation: float, photons: float, sigma: float, background: float) -> float:
    """Noncentrality of the pair-against-one likelihood-ratio test, 2 min over one emitter of
    KL(pair || one emitter),
    of a pair of `photons` each `separation` LR px apart (PSF std `sigma` LR px, `background`
    photons per px, > 0)."""
    if background <= 0:
        raise ValueError(f"background must be > 0 photons per px, got {background}")
    pair = pair_rates(separation, photons, sigma, background)
    c = WINDOW / 2

    def objective(x: np.ndarray) -> float:
        theta = np.array(
            [c + x[0], c + x[1], 2 * photons * math.exp(x[2]), background * math.exp(x[3])]
        )
        return poisson_kl(pair, single_rates(theta, sigma))

    start = np.zeros(4)
    best = minimize(objective, start, method="Nelder-Mead",
                    options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 20000})  # fmt: skip
    return 2.0 * best.fun


def nearest_neighbour(emitters: pd.DataFrame) -> np.ndarray:
    """Distance (LR px) from each emitter (row order) to the nearest other one in its image."""
    uv = emitters[["u_px", "v_px"]].to_numpy(np.float64)
    out = np.full(len(emitters), np.inf)
    for rows in emitters.groupby("image").indices.values():
        d = np.hypot(*(uv[rows, None, :] - uv[None, rows, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        out[rows] = d.min(axis=1)
    return out


def found_emitters(table: pd.DataFrame, emitters: pd.DataFrame) -> np.ndarray:
    """Whether each emitter (row order) has a matched detection in `table` (localization_table)."""
    matched = table.loc[table["truth"] >= 0, ["image", "truth"]]
    hits = set(zip(matched["image"], matched["truth"], strict=True))
    return np.array(
        [(i, e) in hits for i, e in zip(emitters["image"], emitters["emitter"], strict=True)]
    )


def recall_table(results: Path, config: dict, sigma_y: float) -> pd.DataFrame:
    """Recall of phi and the oracle per nearest-neighbour bin on the test split of a run."""
    settings = detector_settings(config, sigma_y)
    geometry = config["geometry"]
    model_path = results / "models" / sigma_y_tag(sigma_y) / "phi.pt"
    network, _ = load_model(model_path, load_phi_model)
    shards = sorted((results / "data" / "test").glob("*.npz"))
    if not shards:
        raise FileNotFoundError(f"{results / 'data' / 'test'}: no test shards")
    found = {"phi": [], "oracle": []}
    distance = []
    for npz in shards:
        shard = read_shard(npz, npz.with_suffix(".parquet"))
        photons = shard.camera.photoelectrons(shard.x).astype(np.float32)
        kdes = {
            "phi": predict_kde(
                network, photons, config["phi"]["infer_batch_size"], torch.device("cpu")
            ),
            "oracle": shard_kde(shard, sigma_y),
        }
        for source, kde in kdes.items():
            table = localization_table(
                detect(kde, settings),
                shard.emitters,
                geometry["upsample"],
                geometry["pixel_size_nm"],
                config["localize"]["match_radius"],
            )
            found[source].append(found_emitters(table, shard.emitters))
        distance.append(nearest_neighbour(shard.emitters))
    distance = np.concatenate(distance)
    which = np.digitize(distance, EDGES[1:-1])
    rows = []
    for k, (low, high) in enumerate(itertools.pairwise(EDGES)):
        inside = which == k
        row = {"nearest_px": f"{low:g}-{high:g}", "emitters": int(inside.sum())}
        for source, flags in found.items():
            row[f"recall_{source}"] = float(np.concatenate(flags)[inside].mean())
        rows.append(row)
    rows.append(
        {
            "nearest_px": "all",
            "emitters": len(distance),
            **{f"recall_{s}": float(np.concatenate(f).mean()) for s, f in found.items()},
        }
    )
    return pd.DataFrame(rows)


def _fixed(dist: dict, key: str) -> float:
    """The value of a test-split scene distribution that must be fixed (photons per emitter,
    background photons per px)."""
    if dist["dist"] != "fixed":
        raise ValueError(f"the pair statistic needs a fixed {key} on the test split, got {dist}")
    return float(dist["value"])


def physics_table(config: dict) -> pd.DataFrame:
    """pair_statistic at SEPARATIONS for the test split's photons and the config's camera."""
    camera, psf = config["camera"], config["psf"]
    test = config["simulation"]["splits"]["test"].get("scene", {})
    photons = _fixed(test.get("photons", config["scene"]["photons"]), "photons")
    sky = _fixed(test["background"], "background") if "background" in test else psf["background"]
    background = sky + camera["readout_var"] / camera["gain"] ** 2
    return pd.DataFrame(
        {
            "separation_px": SEPARATIONS,
            "separation_nm": [d * config["geometry"]["pixel_size_nm"] for d in SEPARATIONS],
            "photons_each": photons,
            "noncentrality": [
                pair_statistic(d, photons, psf["sigma_x"], background) for d in SEPARATIONS
            ],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", type=Path, help="a run's folder, results/<run>")
    parser.add_argument("--sigma-y", type=float, default=1.5, help="KDE width (HR px)")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--physics-only", action="store_true")
    args = parser.parse_args()
    config = load_config(args.config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    torch.set_num_threads(config["phi"]["infer_threads"])
    print(hardware())
    pd.set_option("display.width", 120)
    if not args.physics_only:
        if args.results is None:
            parser.error("give a run's folder (results/<run>) or --physics-only")
        print(f"\nrecall by nearest-neighbour distance, test split of {args.results}, sigma_y "
              f"{args.sigma_y:g} HR px, detector {config['localize']['detector']}:")  # fmt: skip
        print(recall_table(args.results, config, args.sigma_y).round(3).to_string(index=False))
    print("\nnoncentrality of the pair-against-one likelihood-ratio test (camera of the config):")
    print(
        physics_table(config).round({"separation_nm": 1, "noncentrality": 2}).to_string(index=False)
    )


if __name__ == "__main__":
    main()

"""The analysis's targets on a synthetic movie, with trained models (config/analyze.yaml).

A 64 x 64 px sCMOS movie (default 500 frames; density 1 emitter per 4 um^2, pixel 108.3 nm,
photons log-uniform 100-2000, background 20 photons/px) is analysed by `diffloc analyze`; the
localisations are matched one-to-one to the truth per frame (within localize.match_radius),
truths within 1.5 px of the frame edge left out of the scores (the detector excludes its
border; a localisation matched to one of them is neither a true nor a false positive). Prints
recall and precision (targets >= 0.9, >= 0.95) overall and per decile of the true photons
(precision: false positives binned by their fitted photons), per photon decile the lateral RMSE
against 2 sqrt(CRLB) (sqrt of the mean per-axis CRLB of the matched localisations, times sqrt 2
for the lateral error; the bound at the true photons and background), and the coverage of psi's
68/95 % position intervals (target: within 0.07), pooled and per tercile of the true photons.

With --replicates N the same detection scores come from N movies (seeds --movie-seed, +1, ...)
analysed without psi, per movie and pooled, with exact binomial intervals: whether a movie that
misses the dimmest decile's target by a hair is sampling noise or a real shortfall.

    snakemake analyze_models --cores all --configfile config/analyze.yaml
    nice -n 10 python benchmarks/analyze_targets.py [--models results/analyze_models/models]
    python benchmarks/analyze_targets.py --replicates 24 --movie-seed 7
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import stats

from diffloc import seeding
from diffloc.analyze.card import read_card
from diffloc.analyze.cli import main as cli_main
from diffloc.analyze.localise import POSITIONS, SIGNIFICANCE
from diffloc.analyze.synthetic import SyntheticMovie, synthetic_movie
from diffloc.localize.matching import match_detections
from diffloc.physics.camera import Camera
from diffloc.physics.crlb import crlb as crlb_at

SIZE, EDGE, BACKGROUND = 64, 1.5, 20.0
LOW, HIGH = 100.0, 2000.0  # photons, log-uniform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="results/analyze_models/models")
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--movie-seed", type=int, default=7, help="seed of the movie and camera")
    parser.add_argument("--psi-frames", default="20")
    parser.add_argument("--position", default="mle", choices=POSITIONS)
    parser.add_argument(
        "--no-psi-maps", action="store_true", help="psi for the intervals only (diffloc analyze)"
    )
    parser.add_argument("--min-snr", default=None, help="analyze.min_snr (default: the models')")
    parser.add_argument("--significance", default=None, choices=SIGNIFICANCE)
    parser.add_argument("--config", default=None, help="analysis config (sampler, detector)")
    parser.add_argument(
        "--threads",
        default="2",
        help="torch threads of the analysis (the movie is one chunk, one process: psi's tiles "
        "run ~1.7x faster on 2 threads than on 1)",
    )
    parser.add_argument("--keep", default=None, help="folder to keep the movie and the analysis in")
    parser.add_argument(
        "--table", default=None, help="score this localisations.parquet of the movie, no analysis"
    )
    parser.add_argument(
        "--replicates", type=int, default=0,
        help="analyse this many movies (seeds --movie-seed, +1, ...) without psi and print the"
        " detection per photon decile per movie and pooled, with exact binomial intervals",
    )  # fmt: skip
    args = parser.parse_args()
    card = read_card(args.models)
    if args.replicates:
        replicates(args, card)
        return
    camera, movie = benchmark_movie(card, args.movie_seed, args.frames)
    if args.table:
        table = pd.read_parquet(args.table)
    else:
        table = analyse(args, movie, camera)
    pixel, sigma = card["geometry"]["pixel_size_nm"], card["psf"]["sigma_x"]
    score(table, movie.truth, card, camera, args.frames, pixel, sigma)


def benchmark_movie(card: dict, movie_seed: int, frames: int) -> tuple[Camera, SyntheticMovie]:
    """The sCMOS camera and the synthetic movie of one movie seed (the card's pixel and PSF)."""
    pixel, sigma = card["geometry"]["pixel_size_nm"], card["psf"]["sigma_x"]
    cam = card["camera"]
    camera = Camera.scmos(
        (SIZE, SIZE), cam["gain"], cam["offset"], cam["readout_var"], **cam["scmos"],
        rng=seeding.rng(movie_seed, "analyze_targets", "camera"),
    )  # fmt: skip
    movie = synthetic_movie(
        n_frames=frames, size=SIZE, density_per_um2=0.25,
        photons={"dist": "loguniform", "low": LOW, "high": HIGH}, background=BACKGROUND,
        camera=camera, pixel_size_nm=pixel, sigma_x=sigma, seed=movie_seed, name="targets",
    )  # fmt: skip
    return camera, movie


def analyse(args: argparse.Namespace, movie, camera: Camera) -> pd.DataFrame:
    """The movie written as a TIFF with its camera maps and analysed by `diffloc analyze`."""
    pixel = read_card(args.models)["geometry"]["pixel_size_nm"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        movie.truth.to_parquet(root / "truth.parquet")
        tifffile.imwrite(root / "movie.tif", movie.frames, photometric="minisblack")
        for name in ("gain", "offset", "readout_var"):
            np.save(root / f"{name}.npy", getattr(camera, name))
        status = cli_main([
            "analyze", str(root / "movie.tif"), "--models", args.models, "--out", str(root / "out"),
            "--pixel-size", str(pixel), "--gain", str(root / "gain.npy"),
            "--offset", str(root / "offset.npy"), "--readout-var", str(root / "readout_var.npy"),
            "--psi-frames", args.psi_frames, "--position", args.position, "--no-progress",
            "--threads", args.threads,
            *(["--config", args.config] if args.config else []),
            *(["--min-snr", args.min_snr] if args.min_snr is not None else []),
            *(["--significance", args.significance] if args.significance else []),
            *(["--no-psi-maps"] if args.no_psi_maps else []),
        ])  # fmt: skip
        if status:
            raise SystemExit(status)
        return pd.read_parquet(root / "out" / "localisations.parquet")


def score(
    table: pd.DataFrame, truth: pd.DataFrame, card: dict, camera: Camera, frames: int,
    pixel: float, sigma: float,
) -> None:  # fmt: skip
    """Print recall, precision, RMSE / sqrt(CRLB) per photon decile and psi's coverage."""
    m, found, fp_photons = match(table, truth, card, frames)
    n_true, tp, fp = len(found), len(m), len(fp_photons)
    print(f"recall {tp / n_true:.3f} (target >= 0.9), precision {tp / (tp + fp):.3f} (>= 0.95)")
    detection_by_decile(found, m["photons"].to_numpy(), fp_photons)
    err = np.hypot(m["x_px"] - m["true_x"], m["y_px"] - m["true_y"]) * pixel
    crlb = np.sqrt(m["crlb_x_nm"] ** 2 + m["crlb_y_nm"] ** 2)
    # the bound at the truth (true position, photons and background; photons a nuisance), the
    # reference of the target; the one at the estimated photons is printed beside it
    var = np.concatenate([
        crlb_at(m["true_y"].to_numpy()[i : i + 256], m["true_x"].to_numpy()[i : i + 256],
                m["true_photons"].to_numpy()[i : i + 256], camera, sigma, BACKGROUND)[:, :2]
        for i in range(0, len(m), 256)
    ])  # fmt: skip
    m = m.assign(
        err=err, crlb=crlb, crlb_truth=np.sqrt(var.sum(axis=1)) * pixel,
        decile=pd.qcut(m["true_photons"], 10, labels=False),
    )  # fmt: skip
    table_out = m.groupby("decile").agg(
        photons=("true_photons", "median"), n=("err", "size"),
        rmse_nm=("err", lambda e: float(np.sqrt(np.mean(e**2)))),
        sqrt_crlb_truth_nm=("crlb_truth", lambda c: float(np.sqrt(np.mean(c**2)))),
        sqrt_crlb_estimate_nm=("crlb", lambda c: float(np.sqrt(np.mean(c**2)))),
    )  # fmt: skip
    table_out["ratio"] = table_out["rmse_nm"] / table_out["sqrt_crlb_truth_nm"]
    table_out["passed"] = table_out["ratio"] <= 2.0
    print(table_out.to_string(float_format="%.2f"))
    psi = m[m["psi_sampled"] & m["psi_std_x_nm"].notna()]
    for level in ("68", "95"):
        cover = []
        for axis in ("x", "y"):
            true_nm = psi[f"true_{axis}"] * pixel
            lo, hi = psi[f"psi_lo{level}_{axis}_nm"], psi[f"psi_hi{level}_{axis}_nm"]
            cover.append(((true_nm >= lo) & (true_nm <= hi)).to_numpy())
        c = float(np.concatenate(cover).mean()) if len(psi) else float("nan")
        print(f"psi {level} % interval coverage {c:.3f} over {len(psi)} localisations "
              f"(target within 0.07 of 0.{level})")  # fmt: skip
    pc = card.get("position_calibration")
    if pc is not None:
        print(f"card's position calibration: floor {pc['floor_nm']:.2f} nm, 68 % / 95 % scales per "
              f"bin {pc['bins']}: {pc['scales']} over {pc['n']} localisations")  # fmt: skip
    if len(psi):
        psi_diagnostics(psi, pixel)


def match(
    table: pd.DataFrame, truth: pd.DataFrame, card: dict, frames: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Localisations matched one-to-one to the truth per frame: the matched localisations (with
    true_x, true_y in px and true_photons), the scored truths (photons, found) and the fitted
    photons of the false positives."""
    inner = ((truth[["x_px", "y_px"]] > EDGE) & (truth[["x_px", "y_px"]] < SIZE - EDGE)).all(axis=1)
    radius = card["localize"]["match_radius"] / card["geometry"]["upsample"]
    rows, found, false_photons = [], [], []
    for f in range(frames):
        t = truth[truth["frame"] == f]
        t_inner = inner[truth["frame"] == f].to_numpy()
        d = table[table["frame"] == f]
        # matched against every truth: a localisation of an emitter just beyond the scored
        # border (it may land inside) is not a false positive, only left out of the scores
        hit = match_detections(
            d[["x_px", "y_px"]].to_numpy(), t[["x_px", "y_px"]].to_numpy(), radius, "one_to_one"
        )
        edge_d = ((d[["x_px", "y_px"]] <= EDGE) | (d[["x_px", "y_px"]] >= SIZE - EDGE)).any(axis=1)
        false_photons.append(d["photons"].to_numpy()[(hit < 0) & ~edge_d.to_numpy()])
        ok = hit >= 0
        ok[ok] = t_inner[hit[ok]]
        hit_truth = np.zeros(len(t), bool)
        hit_truth[hit[ok]] = True
        found.append(
            pd.DataFrame({"photons": t["photons"].to_numpy(), "found": hit_truth})[t_inner]
        )
        matched = d[ok].assign(
            true_x=t["x_px"].to_numpy()[hit[ok]], true_y=t["y_px"].to_numpy()[hit[ok]],
            true_photons=t["photons"].to_numpy()[hit[ok]],
        )  # fmt: skip
        rows.append(matched)
    m = pd.concat(rows, ignore_index=True)
    return m, pd.concat(found, ignore_index=True), np.concatenate(false_photons)


def replicates(args: argparse.Namespace, card: dict) -> None:
    """Detection per decile of the photon law on `args.replicates` movies analysed without psi:
    per movie, pooled with exact (Clopper-Pearson) 95 % intervals, and how many movies would
    miss each target by binomial sampling alone if every movie had the pooled rates."""
    args.psi_frames = "0"
    edges = LOW * (HIGH / LOW) ** np.linspace(0.0, 1.0, 11)  # deciles of the log-uniform law
    counts = []
    for movie_seed in range(args.movie_seed, args.movie_seed + args.replicates):
        camera, movie = benchmark_movie(card, movie_seed, args.frames)
        m, found, fp_photons = match(analyse(args, movie, camera), movie.truth, card, args.frames)
        counts.append(decile_counts(found, m["photons"].to_numpy(), fp_photons, edges))
        n, k, tp, fp = counts[-1]
        print(f"movie {movie_seed}: dimmest decile ({edges[0]:.0f}-{edges[1]:.0f} photons) recall"
              f" {k[0] / n[0]:.3f} ({k[0]}/{n[0]}), precision {tp[0] / (tp[0] + fp[0]):.3f}"
              f" ({fp[0]} false positives); lowest decile recall {np.min(k / n):.3f},"
              f" precision {np.min(tp / (tp + fp)):.3f}", flush=True)  # fmt: skip
    c = np.stack(counts)  # [movie, (n_true, found, tp_fitted, fp_fitted), decile]
    n, k, tp, fp = c.sum(axis=0)
    rows = []
    for d in range(10):
        recall, precision = k[d] / n[d], tp[d] / (tp[d] + fp[d])
        r_lo, r_hi = clopper_pearson(k[d], n[d])
        p_lo, p_hi = clopper_pearson(tp[d], tp[d] + fp[d])
        movies_n, movies_k = c[:, 0, d], c[:, 1, d]
        movies_t = c[:, 2, d] + c[:, 3, d]
        below_r = stats.binom.cdf(np.ceil(0.9 * movies_n) - 1, movies_n, recall)
        below_p = stats.binom.cdf(np.ceil(0.95 * movies_t) - 1, movies_t, precision)
        rows.append({
            "photons": f"{edges[d]:.0f}-{edges[d + 1]:.0f}", "n_true": n[d], "recall": recall,
            "recall_lo95": r_lo, "recall_hi95": r_hi, "precision": precision,
            "precision_lo95": p_lo, "precision_hi95": p_hi,
            "movies_recall_below": int(np.sum(movies_k < 0.9 * movies_n)),
            "expected_below": float(below_r.sum()),
            "movies_precision_below": int(np.sum(c[:, 2, d] < 0.95 * movies_t)),
            "expected_p_below": float(below_p.sum()),
        })  # fmt: skip
    print(f"pooled over {len(c)} movies of {args.frames} frames (seeds {args.movie_seed}-"
          f"{args.movie_seed + len(c) - 1}); recall per decile of the true photons, precision over"
          " the same range of fitted photons; lo95/hi95: exact 95 % intervals; movies_*_below:"
          " movies under the target (recall 0.9, precision 0.95), expected_*: how many would be"
          " by sampling alone at the pooled rates:")  # fmt: skip
    print(pd.DataFrame(rows).to_string(float_format="%.3f", index=False))


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a proportion k / n at `level`."""
    a = (1.0 - level) / 2.0
    lo = stats.beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(1.0 - a, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def decile_counts(
    found: pd.DataFrame, tp_photons: np.ndarray, fp_photons: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """[4, bins] counts per photon bin [edges[i], edges[i + 1]) (the end bins open): scored
    truths and those found (by their true photons), true and false positives (by their fitted
    photons; a false positive has no true photons)."""

    def per_bin(photons: np.ndarray) -> np.ndarray:
        return np.bincount(np.digitize(photons, edges[1:-1]), minlength=len(edges) - 1)

    true_photons = found["photons"].to_numpy()
    return np.stack([
        per_bin(true_photons), per_bin(true_photons[found["found"].to_numpy()]),
        per_bin(tp_photons), per_bin(fp_photons),
    ])  # fmt: skip


def detection_by_decile(
    found: pd.DataFrame, tp_photons: np.ndarray, fp_photons: np.ndarray
) -> None:
    """Print recall per decile of this movie's true photons and precision over the same photon
    ranges of the fitted photons."""
    edges = np.quantile(found["photons"], np.linspace(0, 1, 11))
    n, k, tp, fp = decile_counts(found, tp_photons, fp_photons, edges)
    bins = np.digitize(found["photons"].to_numpy(), edges[1:-1])
    out = pd.DataFrame({
        "true_photons": found["photons"].groupby(bins).median().to_numpy(),
        "n_true": n, "recall": k / n, "tp_fitted": tp, "fp_fitted": fp,
        "precision": tp / np.maximum(tp + fp, 1),
    })  # fmt: skip
    out["passed"] = (out["recall"] >= 0.9) & (out["precision"] >= 0.95)
    out.index.name = "decile"
    print("recall per decile of the true photons, precision over the same range of fitted photons:")
    print(out.to_string(float_format="%.3f"))


def psi_diagnostics(psi: pd.DataFrame, pixel: float) -> None:
    """psi's coverage per photon tercile; z: (truth - centre of the 68 % interval) / psi's std,
    z_fit: (truth - the MLE position) / psi's std."""
    tercile = pd.qcut(psi["true_photons"], 3, labels=False)
    rows = []
    for _, g in psi.groupby(tercile):
        row = {"photons": float(g["true_photons"].median()), "n": len(g)}
        z, z_fit, bias = [], [], []
        for axis in ("x", "y"):
            true_nm = g[f"true_{axis}"] * pixel
            for level in ("68", "95"):
                lo, hi = g[f"psi_lo{level}_{axis}_nm"], g[f"psi_hi{level}_{axis}_nm"]
                inside = ((true_nm >= lo) & (true_nm <= hi)).to_numpy()
                row[f"cov{level}"] = row.get(f"cov{level}", 0.0) + inside.mean() / 2
            centre = (g[f"psi_lo68_{axis}_nm"] + g[f"psi_hi68_{axis}_nm"]) / 2
            z.append(((true_nm - centre) / g[f"psi_std_{axis}_nm"]).to_numpy())
            z_fit.append(((true_nm - g[f"{axis}_nm"]) / g[f"psi_std_{axis}_nm"]).to_numpy())
            bias.append((centre - true_nm).to_numpy())
        z, z_fit, bias = np.concatenate(z), np.concatenate(z_fit), np.concatenate(bias)
        row["rms_centre_err_nm"] = float(np.sqrt(np.mean(bias**2)))
        row["z_fit_std"] = float(np.std(z_fit))
        row["z_std"] = float(np.std(z))
        row["z_mad_std"] = float(1.4826 * np.median(np.abs(z - np.median(z))))
        row["psi_std_nm"] = float(np.median(np.concatenate([g["psi_std_x_nm"], g["psi_std_y_nm"]])))
        if "psi_scale" in g:
            row["scale68"] = float(g["psi_scale"].median())
        row["se68"] = float(np.sqrt(0.68 * 0.32 / len(g)))
        row["passed"] = abs(row["cov68"] - 0.68) <= 0.07 and abs(row["cov95"] - 0.95) <= 0.07
        rows.append(row)
    print(
        "psi per photon tercile of the true photons (cov: the reported, scaled intervals; z:"
        " truth minus psi's 68 % midpoint over psi's own std; scale68: the card's 68 % scale;"
        " se68: the binomial standard error of a calibrated 68 % coverage over n localisations,"
        " both axes counted as one):"
    )
    print(pd.DataFrame(rows).to_string(float_format="%.3f"))


if __name__ == "__main__":
    main()

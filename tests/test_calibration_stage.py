"""The calibration stage: its tables on constructed inputs with known answers, and every job
(calibration_*, ablation; and the fig6, fig7 figures) on tiny data."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, SCHEMA_PATH, tiny
from diffloc.calibration import metrics as cal
from diffloc.calibration.ablation import Run, grid, recommend, subsample_rows, timing_rows
from diffloc.calibration.jobs import (
    ablation,
    calibration_ablation,
    calibration_coverage,
    calibration_localization,
    calibration_mcmc,
    calibration_targets,
    gather_seeds,
)
from diffloc.calibration.tables import (
    DenseSplit,
    IsolatedSplit,
    coverage_study,
    mcmc_per_image,
    mcmc_summary,
    target_checks,
)
from diffloc.config import load_config, shard_config
from diffloc.data.files import save_npz
from diffloc.data.mcmc import FORMAT
from diffloc.data.models import save_model
from diffloc.data.posterior import save_posterior
from diffloc.data.shards import read_shard
from diffloc.figures.jobs import fig6, fig7
from diffloc.psi.diffusion import build_psi
from diffloc.psi.posterior import summarise
from diffloc.simulate.jobs import simulate

QUANTILES = (0.025, 0.05, 0.1, 0.16, 0.25, 0.5, 0.75, 0.84, 0.9, 0.95, 0.975)
LEVELS = (0.5, 0.8, 0.9, 0.95)


# ----- tables on constructed inputs ----------------------------------------------------------
def test_mcmc_tables_align_images_and_recover_a_known_ratio():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.01, 0.05, (4, 12, 12))
    y0 = np.zeros((3, 12, 12))
    y0[:, 3:9, 3:9] = 0.5  # support
    maps = {"std": ref[[1, 3]], "mean": np.zeros((2, 12, 12)), "image": np.array([1, 3])}
    # psi sampled images 0..2; the MCMC images 1 and 3: only image 1 is in both
    std = np.zeros((3, 12, 12))
    std[1] = 0.5 * ref[1]
    splits = [
        IsolatedSplit("isolated_200", 200.0, y0, y0, std, {"default": (1.0, maps)}),
        IsolatedSplit(
            "isolated_500", 500.0, y0, y0, std, {"default": (1.0, maps), "paper": (0.2, maps)}
        ),
    ]
    per_image = mcmc_per_image(splits, floor=0.1)
    assert per_image["image"].tolist() == [1, 1, 1]
    np.testing.assert_allclose(per_image["ratio"], 0.5)
    np.testing.assert_allclose(per_image["pearson"], 1.0)
    assert per_image["n_support"].tolist() == [36] * 3
    summary = mcmc_summary(per_image, 100, np.random.default_rng(1))
    assert summary["set"].tolist() == ["isolated_200", "isolated_500", "all", "isolated_500", "all"]
    np.testing.assert_allclose(summary[["median_ratio", "ratio_lo", "ratio_hi"]], 0.5)
    assert np.isnan(summary.loc[summary["set"] == "all", "photons"]).all()


def dense_case(width, seed, n=12, k=199, side=16, method="weibull"):
    """A DenseSplit whose truth is a draw from N(mu, s^2) per pixel and whose K samples come from
    N(mu, (width s)^2); phi's yhat = mu."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.2, 0.8, (n, side, side))
    s = rng.uniform(0.02, 0.08, (n, side, side))
    y0 = mu + s * rng.standard_normal(mu.shape)
    samples = mu[:, None] + width * s[:, None] * rng.standard_normal((n, k, side, side))
    summary = summarise(samples.astype(np.float32), QUANTILES, k, method)
    return DenseSplit(
        y0,
        mu,
        summary["mean"],
        summary["std"],
        summary["quantiles"],
        summary["quantile_levels"],
        summary["quantile_cdf"],
        summary["samples"],
    )


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_coverage_study_recalibrates_on_validation_and_checks_on_test(width):
    val, test = dense_case(width, seed=1), dense_case(width, seed=2)
    edges = np.linspace(-5, 5, 21)
    result = coverage_study(test, val, LEVELS, 0.9, 0.05, 200, np.random.default_rng(3), edges)
    table = result.table.set_index("method")
    assert list(table.index) == ["psi", "psi_recalibrated", "phi_const_sigma"]
    if width == 1.0:  # the true posterior: exact coverage (order statistics, K + 1 = 200)
        for c in LEVELS:
            np.testing.assert_allclose(table[f"level_{100 * c:g}"], c, rtol=1e-6)
            assert abs(table.loc["psi", f"coverage_{100 * c:g}"] - c) < 0.02
        assert table.loc["psi_recalibrated", "fitted"] == pytest.approx(1.0, abs=0.08)
        assert table.loc["psi", "z_std"] == pytest.approx(1.0, abs=0.05)
    else:  # twice too narrow: coverage_90 ~ 0.59, fixed by a scale ~ 2 fitted on validation
        assert table.loc["psi", "coverage_90"] == pytest.approx(0.59, abs=0.03)
        assert table.loc["psi_recalibrated", "fitted"] == pytest.approx(2.0, rel=0.1)
        assert table.loc["psi", "z_std"] == pytest.approx(2.0, rel=0.06)
    assert table.loc["psi_recalibrated", "coverage_90"] == pytest.approx(0.9, abs=0.02)
    assert table.loc["psi_recalibrated", "z_std"] == pytest.approx(1.0, abs=0.08)
    # phi + constant sigma: sigma is the RMS of the per-pixel stds, too wide for some pixels
    # and too narrow for others; the diffusion posterior with the right spread has lower CRPS
    assert table.loc["phi_const_sigma", "fitted"] == pytest.approx(0.053, rel=0.1)
    if width == 1.0:
        assert table.loc["psi", "crps"] < table.loc["phi_const_sigma", "crps"]
    assert table.loc["psi", "n_pixels"] == test.y0.size
    rel = result.reliability
    np.testing.assert_allclose(sorted(rel["nominal"].unique()), [0.5, 0.68, 0.8, 0.9, 0.95])
    assert ((rel["lo"] <= rel["empirical"]) & (rel["empirical"] <= rel["hi"])).all()
    for _, h in result.z_hist.groupby("method"):
        assert (h["density"] * (h["right"] - h["left"])).sum() == pytest.approx(1.0)


def test_linear_quantiles_are_tested_at_their_own_level_and_the_baseline_alike():
    """numpy's linear quantiles of K = 41 samples span ranks 3..39 for the 90 % interval: their
    tested level is 36/42 for psi and for the Gaussian baseline, and psi covers it."""
    val, test = (dense_case(1.0, seed=s, k=41, method="linear") for s in (1, 2))
    result = coverage_study(
        test, val, [0.9], 0.9, 0.05, 50, np.random.default_rng(3), np.linspace(-5, 5, 21)
    )
    table = result.table.set_index("method")
    np.testing.assert_allclose(table["level_90"], 36 / 42, rtol=1e-6)
    assert table.loc["psi", "coverage_90"] == pytest.approx(36 / 42, abs=0.02)
    assert table.loc["psi", "coverage_error"] < 0.02


def test_targets_are_judged_per_seed_and_photon_count_never_pooled():
    """Two psi seeds: every check is one row per seed; seed 1 fails where seed 0 passes; pooled
    medians are reported, never judged; coverage is judged against the tested level."""
    one = {
        "setting": ["default", "default", "paper"],
        "beta": [1.0, 1.0, 0.2],
        "set": ["isolated_200", "all", "all"],
        "photons": [200.0, np.nan, np.nan],
        "median_ratio": [1.1, 0.5, 0.3],
        "ratio_lo": [1.0, 0.4, 0.2],
        "ratio_hi": [1.2, 0.6, 0.4],
        "median_pearson": [0.8, 0.8, 0.8],
        "pearson_lo": [0.7, 0.7, 0.7],
        "pearson_hi": [0.9, 0.9, 0.9],
    }
    mcmc = pd.concat(
        [
            pd.DataFrame(one).assign(seed=0),
            pd.DataFrame(one).assign(seed=1, median_ratio=[2.0, 0.5, 0.3], median_pearson=0.5),
        ]
    )
    coverage = pd.DataFrame(
        {
            "seed": [0, 0, 0, 1, 1, 1],
            "method": ["psi", "psi_recalibrated", "phi_const_sigma"] * 2,
            "fitted": [1.0, 2.0, 0.05] * 2,
            "level_90": [0.85] * 6,  # e.g. numpy linear quantiles of K = 39 samples
            "coverage_90": [0.6, 0.88, 0.93, 0.86, 0.88, 0.93],
            "coverage_90_lo": [0.55, 0.86, 0.88, 0.84, 0.86, 0.88],
            "coverage_90_hi": [0.65, 0.90, 0.92, 0.88, 0.90, 0.92],
            "crps": [0.01, 0.012, 0.02, 0.03, 0.03, 0.02],
        }
    )
    psi = pd.DataFrame({"seed": [0, 1], "set": ["test", "test"], "mse_ratio": [0.9, 1.3]})
    targets = {
        "std_ratio": [0.8, 1.25],
        "coverage_level": 0.9,
        "coverage_tolerance": 0.05,
        "min_pearson": 0.7,
    }
    out = target_checks(mcmc, coverage, psi, targets, 1.1)
    out = out.set_index(["target", "method", "seed", "set"])
    # the pooled median is reported, never judged: it can pass while photon counts fail
    pooled = out.loc[("std_ratio_mcmc", "psi", 0, "all")]
    assert pooled["measured"] == 0.5 and not pooled["judged"] and pd.isna(pooled["passed"])
    ratio = ("std_ratio_mcmc_by_photons", "psi")
    assert out.loc[(*ratio, 0, "isolated_200"), "passed"] == True  # noqa: E712
    assert out.loc[(*ratio, 1, "isolated_200"), "passed"] == False  # noqa: E712
    row = out.loc[("std_ratio_mcmc_by_photons", "psi_recalibrated", 0, "isolated_200")]
    assert row["measured"] == pytest.approx(2.2) and not row["passed"]
    assert out.loc[("pearson_mcmc_by_photons", "psi", 0, "isolated_200"), "passed"]
    assert not out.loc[("pearson_mcmc_by_photons", "psi", 1, "isolated_200"), "passed"]
    assert not out.loc[("coverage_90", "psi", 0, "test"), "passed"]
    assert out.loc[("coverage_90", "psi", 1, "test"), "passed"]
    assert out.loc[("coverage_90", "psi", 0, "test"), "low"] == pytest.approx(0.80)  # tested
    assert not out.loc[("coverage_90", "phi_const_sigma", 0, "test"), "passed"]  # 0.93 > 0.90
    assert out.loc[("crps_vs_phi_const_sigma", "psi", 0, "test"), "passed"]
    assert not out.loc[("crps_vs_phi_const_sigma", "psi", 1, "test"), "passed"]
    assert out.loc[("mse_ratio", "psi", 0, "test"), "passed"]
    assert not out.loc[("mse_ratio", "psi", 1, "test"), "passed"]
    assert "paper" not in " ".join(out["description"])  # only the beta = 1 reference counts


def test_ablation_grid_subsamples_timings_and_recommendation():
    cfg = {"samplers": ["ancestral", "ddim"], "steps": [10, 20], "spacing": "logsnr"}
    cfg["ddim_eta"] = 0.5
    runs = grid(cfg, {"kind": "dpmpp_2m", "steps": 20, "spacing": "logsnr"})
    assert [(r.kind, r.steps) for r in runs] == [
        ("ancestral", 10),
        ("ancestral", 20),
        ("ddim", 10),
        ("ddim", 20),
        ("dpmpp_2m", 20),
    ]
    assert runs[2].eta == 0.5 and runs[0].eta == 0.0 and runs[2].sampler().eta == 0.5
    # the reference is not repeated when the grid holds it
    assert len(grid(cfg, {"kind": "ddim", "steps": 20, "spacing": "logsnr", "eta": 0.5})) == 4
    # subsampling: K = k uses the first k samples of the one run
    rng = np.random.default_rng(4)
    mu = rng.uniform(0.3, 0.7, (2, 10, 10))
    y0 = mu + 0.05 * rng.standard_normal(mu.shape)
    samples = mu[:, None] + 0.05 * rng.standard_normal((2, 50, 10, 10))
    args = (None, None, None, LEVELS, "weibull", 0.05)
    rows = subsample_rows(runs[0], [5, 50], samples, y0, *args, 500.0)
    direct = subsample_rows(runs[0], [5], samples[:, :5], y0, *args, 50.0)
    pd.testing.assert_frame_equal(rows.iloc[:1], direct)
    assert rows["network_evaluations_per_image"].tolist() == [50.0, 500.0]  # linear in K
    # order statistics of K = 50: ranks 2.55 and 48.45, tested level 45.9 / 51 = 0.9
    assert rows.iloc[1]["level_90"] == pytest.approx(0.9)
    assert abs(rows.iloc[1]["coverage_90"] - 0.9) < 0.05
    # K = 5: ranks clamp to the extremes, 1 and 5: tested level 4/6
    assert rows.iloc[0]["level_90"] == pytest.approx(4 / 6)
    timing = timing_rows(runs[0], [10, 30, 100], 2.0)
    assert timing["seconds_per_image"].tolist() == [0.2, 0.6, 2.0]
    assert timing["seconds_source"].tolist()[-1] == "measured"
    table = pd.DataFrame(
        {
            "sampler": ["a", "b", "c"],
            "steps": [10, 20, 50],
            "k": [10, 10, 10],
            "coverage_error": [0.2, 0.04, 0.01],
            "coverage_90": [0.6, 0.88, 0.9],
            "std_ratio_mcmc": [1.0, 1.1, 1.0],
            "network_evaluations_per_image": [100.0, 200.0, 500.0],
        }
    )
    best = recommend(table, 0.05, (0.8, 1.25))
    assert best["sampler"] == "b" and best["qualified"] and "Recommended sampler: b" in best["text"]
    assert "200 network evaluations per image" in best["text"]
    # calibration first: a cheaper setting outside the tolerance is never preferred
    assert (
        recommend(table.assign(coverage_error=[0.2, 0.04, 0.04]), 0.05, (0.8, 1.25))["sampler"]
        == "b"
    )
    table.loc[1, "std_ratio_mcmc"] = 2.0  # b is miscalibrated against the MCMC
    assert recommend(table, 0.05, (0.8, 1.25))["sampler"] == "c"
    none = recommend(table.assign(coverage_error=[0.3, 0.2, 0.1]), 0.05, (0.8, 1.25))
    assert none["sampler"] == "c" and not none["qualified"] and "no setting met" in none["text"]


# ----- the jobs on tiny data -----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_stage(tmp_path_factory):
    """Tiny shards, phi-like yhat, psi-like posterior files, MCMC maps and diagnostics, and an
    untrained tiny psi: every input of the calibration rules, written by the real writers."""
    config = tiny(load_config(REPO / "config" / "config.yaml", SCHEMA_PATH))
    root = tmp_path_factory.mktemp("calibration_stage")
    rng = np.random.default_rng(0)
    files = {}
    summary_cfg = config["diffusion"]["summary"]
    for split in ("val", "test", "isolated_200"):
        npz, parquet = root / f"{split}.npz", root / f"{split}.parquet"
        simulate(shard=shard_config(config, split, 0), npz=str(npz), parquet=str(parquet))
        y = read_shard(npz).y
        yhat = np.clip(y + 0.03 * rng.standard_normal(y.shape), 0, 1).astype(np.float32)
        save_npz(root / f"yhat_{split}.npz", {"yhat": yhat}, {"n_images": len(y)})
        # posterior-like samples: the truth blurred by noise that scales with the signal
        noise = rng.standard_normal((len(y), 6, *y.shape[1:]))
        samples = np.clip(y[:, None] + (0.02 + 0.1 * y[:, None]) * noise, 0, 1)
        summary = summarise(samples.astype(np.float32), summary_cfg["quantiles"], 6)
        save_posterior(root / f"posterior_{split}.npz", summary, {"set": split, "k": 6})
        files[split] = {
            "npz": [str(npz)],
            "parquet": [str(parquet)],
            "yhat": [str(root / f"yhat_{split}.npz")],
            "posterior": [str(root / f"posterior_{split}.npz")],
        }
    y = read_shard(files["isolated_200"]["npz"][0]).y
    geometry = {"geometry": config["geometry"]}
    for setting, scale in (("default", 1.0), ("paper", 2.2)):
        std = (scale * 0.05 * y[:2]).astype(np.float32)
        maps = {"mean": y[:2], "var": std**2, "std": std, "image": np.arange(2, dtype=np.int32)}
        path = root / f"mcmc_{setting}.npz"
        save_npz(path, maps, {"format": FORMAT, "config": geometry})
        files["isolated_200"][f"maps_{setting}"] = [str(path)]
    pd.DataFrame(
        {
            "set": "isolated_200",
            "setting": "default",
            "beta": 1.0,
            "image": [0, 1],
            "acceptance": 0.35,
            "std_u_nm": [10.0, 11.0],
            "std_v_nm": [10.5, 9.5],
            "crlb_u_nm": [10.0, 10.0],
            "rhat_u": 1.0,
        }
    ).to_csv(root / "diagnostics.csv", index=False)
    torch.manual_seed(0)
    net, _ = build_psi(config)
    psi_cfg = {k: config[k] for k in ("geometry", "kde", "diffusion")}
    save_model(root / "psi.pt", net, psi_cfg, {"config": psi_cfg, "network": "psi"})
    return config, root, files


def test_calibration_mcmc_job(tiny_stage):
    config, root, files = tiny_stage
    iso = files["isolated_200"]
    out, per_image = root / "calibration_mcmc.csv", root / "mcmc_per_image.csv"
    kwargs = {
        "posterior": {"isolated_200": iso["posterior"]},
        "npz": {"isolated_200": iso["npz"]},
        "maps": {
            "default": {"isolated_200": iso["maps_default"]},
            "paper": {"isolated_200": iso["maps_paper"]},
        },
        "csv": str(out),
        "per_image": str(per_image),
        "photons": {"isolated_200": 200.0},
        "betas": {"default": 1.0, "paper": 0.2},
        "n_images": 4,
        "floor": 0.05,
        "bootstrap": 50,
        "seed": config["seed"],
    }
    calibration_mcmc(**kwargs)
    summary, rows = pd.read_csv(out), pd.read_csv(per_image)
    assert len(rows) == 4 and rows["image"].tolist() == [0, 1, 0, 1]  # 2 MCMC images x 2 settings
    assert summary["set"].tolist() == ["isolated_200", "all"] * 2
    paper, default = (rows[rows["setting"] == s]["ratio"].to_numpy() for s in ("paper", "default"))
    np.testing.assert_allclose(default / paper, 2.2, rtol=1e-5)  # maps differ by 2.2x only
    first = out.read_bytes()
    calibration_mcmc(**kwargs)
    assert out.read_bytes() == first  # seeded bootstrap: reproducible


def test_calibration_coverage_and_targets_jobs(tiny_stage):
    config, root, files = tiny_stage
    cal_cfg = config["calibration"]
    outs = {
        k: str(root / f)
        for k, f in (
            ("csv", "coverage.csv"),
            ("reliability", "reliability.csv"),
            ("z_hist", "z.csv"),
        )
    }
    kwargs = {
        **{k: {s: files[s][k] for s in ("test", "val")} for k in ("posterior", "npz", "yhat")},
        **outs,
        "n_test": 6,
        "n_val": 2,
        "levels": LEVELS,
        "recalibration_level": 0.9,
        "floor": 0.05,
        "bootstrap": 50,
        "z_histogram": cal_cfg["z_histogram"],
        "seed": config["seed"],
    }
    calibration_coverage(**kwargs)
    table = pd.read_csv(outs["csv"])
    assert table["method"].tolist() == ["psi", "psi_recalibrated", "phi_const_sigma"]
    assert table[[f"coverage_{100 * c:g}" for c in LEVELS]].apply(np.isfinite).all().all()
    assert (table["crps"] > 0).all() and (table["n_pixels"] > 0).all()
    assert len(pd.read_csv(outs["z_hist"])) == 3 * cal_cfg["z_histogram"]["bins"]
    first = [open(p, "rb").read() for p in outs.values()]
    calibration_coverage(**kwargs)
    assert [open(p, "rb").read() for p in outs.values()] == first
    # the targets from this table (as two psi seeds, gathered) and a fresh MCMC and psi table
    gathered = root / "coverage_gathered.csv"
    gather_seeds(tables=[outs["csv"], outs["csv"]], seeds=[0, 1], csv=[str(gathered)])
    both = pd.read_csv(gathered)
    assert both.columns[0] == "seed" and both["seed"].tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="already has a 'seed' column"):
        gather_seeds(tables=[str(gathered)], seeds=[0], csv=[str(root / "twice.csv")])
    with pytest.raises(ValueError, match="3 tables for 2 seeds x 1 outputs"):
        gather_seeds(tables=[outs["csv"]] * 3, seeds=[0, 1], csv=[str(root / "odd.csv")])
    assert not (root / "odd.csv").exists()
    mcmc, psi = root / "calibration_mcmc_for_targets.csv", root / "psi_for_targets.csv"
    pd.DataFrame(
        {
            "seed": [0, 1],
            "setting": ["default"] * 2,
            "beta": [1.0] * 2,
            "set": ["all"] * 2,
            "photons": [np.nan] * 2,
            "median_ratio": [0.9] * 2,
            "ratio_lo": [0.8] * 2,
            "ratio_hi": [1.0] * 2,
            "median_pearson": [0.9] * 2,
            "pearson_lo": [0.8] * 2,
            "pearson_hi": [1.0] * 2,
        }
    ).to_csv(mcmc, index=False)
    pd.DataFrame({"seed": [0, 1], "set": ["test"] * 2, "mse_ratio": [0.9, 1.0]}).to_csv(
        psi, index=False
    )
    targets = root / "targets.csv"
    calibration_targets(
        mcmc=str(mcmc),
        coverage=str(gathered),
        psi=str(psi),
        csv=str(targets),
        targets=cal_cfg["targets"],
        max_mse_ratio=1.1,
    )
    checks = pd.read_csv(targets)
    assert set(checks["target"]) == {
        "std_ratio_mcmc",
        "coverage_90",
        "crps_vs_phi_const_sigma",
        "mse_ratio",
    }
    assert sorted(checks["seed"].unique()) == [0, 1]
    judged = checks[checks["judged"]]
    assert (
        "std_ratio_mcmc" not in set(judged["target"])
        and checks.loc[~checks["judged"], "passed"].isna().all()
    )
    assert set(judged["passed"]) <= {True, False}


def test_calibration_localization_job(tiny_stage):
    config, root, files = tiny_stage
    splits = ("test", "isolated_200")
    out, tracks = root / "localization.csv", root / "tracks.parquet"
    calibration_localization(
        **{k: {s: files[s][k] for s in splits} for k in ("posterior", "npz", "parquet")},
        diagnostics={"isolated_200": [str(root / "diagnostics.csv")]},
        csv=str(out),
        tracks=str(tracks),
        photons={"test": 200.0, "isolated_200": 200.0},
        n_images={"test": 4, "isolated_200": 4},
        config={k: config[k] for k in ("localize", "kde", "geometry", "psf", "mcmc")},
        levels=[0.68, 0.95],
        samples=6,
    )
    table = pd.read_csv(out).set_index("set")
    assert table.loc["test", "n_truth"] == 40 and table.loc["isolated_200", "n_truth"] == 4
    assert (table["detector"] == config["localize"]["detector"]).all()
    # samples are the truth plus noise, so emitters are found and tracked across samples
    assert table.loc["isolated_200", "track_recall"] == 1.0
    assert table.loc["test", "n_matched"] > 10
    assert 0 <= table.loc["test", "coverage_95"] <= 1
    iso = table.loc["isolated_200"]
    assert np.isfinite([iso["spread_over_crlb"], iso["rms_crlb_axis_nm"]]).all()
    assert np.isfinite(iso["spread_over_mcmc_std"])  # images 0 and 1 have MCMC diagnostics
    t = pd.read_parquet(tracks)
    assert {"set", "image", "track", "emitter", "true_u", "crlb_u_nm"} <= set(t.columns)


def test_ablation_jobs_are_reproducible_and_write_figure_7(tiny_stage):
    config, root, files = tiny_stage
    iso = files["isolated_200"]
    kwargs = {
        "model": str(root / "psi.pt"),
        "npz": files["test"]["npz"],
        "yhat": files["test"]["yhat"],
        "iso_npz": iso["npz"],
        "iso_yhat": iso["yhat"],
        "maps": iso["maps_default"],
        "condition": config["diffusion"]["condition"],
        "ablation": {**config["calibration"]["ablation"], "test_images": 2, "isolated_images": 2},
        "reference": config["diffusion"]["sampler"],
        "levels": LEVELS,
        "quantile_method": "weibull",
        "floor": 0.05,
        "device": "cpu",
        "seed": config["seed"],
    }
    metrics, timings = [], []
    for kind in ("ddim", "dpmpp_2m"):
        m, t = root / f"ablation_{kind}.csv", root / f"ablation_{kind}.timing.csv"
        ablation(sampler=kind, csv=str(m), timing=str(t), **kwargs)
        metrics.append(str(m))
        timings.append(str(t))
    table = pd.read_csv(metrics[0])
    assert table[["steps", "k"]].values.tolist() == [[2, 2], [2, 4], [3, 2], [3, 4]]
    assert np.isfinite(table["std_ratio_mcmc"]).all() and np.isfinite(table["crps"]).all()
    assert pd.read_csv(metrics[1])["sampler"].unique().tolist() == ["dpmpp_2m"]  # the reference
    time_table = pd.read_csv(timings[0])
    assert (time_table["seconds_per_image"] > 0).all()
    assert not any("seconds" in c for c in table.columns)
    # DDIM and DPM-Solver++(2M) evaluate the network once per step: K x S per image
    for path in metrics:
        rows = pd.read_csv(path)
        expected = (rows["k"] * rows["steps"]).astype(float).tolist()
        assert rows["network_evaluations_per_image"].tolist() == expected
    first = open(metrics[0], "rb").read()
    ablation(sampler="ddim", csv=metrics[0], timing=timings[0], **kwargs)
    assert open(metrics[0], "rb").read() == first  # bit-identical on CPU (timings aside)
    joined, best = root / "ablation.csv", root / "recommendation.csv"
    seconds = root / "ablation_seconds.csv"
    calibration_ablation(
        metrics=metrics,
        timings=timings,
        csv=str(joined),
        recommendation=str(best),
        timing=str(seconds),
        max_coverage_error=0.05,
        ratio_bounds=[0.8, 1.25],
    )
    assert len(pd.read_csv(joined)) == 6 and len(pd.read_csv(seconds)) == 6
    assert not any("seconds" in c for c in pd.read_csv(best).columns)
    assert pd.read_csv(best)["text"].iloc[0].startswith("Recommended sampler:")
    png, pdf = root / "fig7.png", root / "fig7.pdf"
    fig7(
        ablation=joined,
        recommendation=best,
        timing=seconds,
        png=png,
        pdf=pdf,
        max_coverage_error=0.05,
    )
    assert png.stat().st_size > 10_000 and pdf.stat().st_size > 5_000


def test_fig6_job(tiny_stage, tmp_path):
    rng = np.random.default_rng(2)
    per_image = pd.DataFrame(
        {
            "set": np.repeat(["isolated_200", "isolated_1000"], 4),
            "photons": np.repeat([200.0, 1000.0], 4),
            "setting": np.tile(["default", "default", "paper", "paper"], 2),
            "beta": np.tile([1.0, 1.0, 0.2, 0.2], 2),
            "image": np.tile([0, 1, 0, 1], 2),
            "rms_std_diffusion": rng.uniform(0.01, 0.05, 8),
            "rms_std_mcmc": rng.uniform(0.01, 0.05, 8),
        }
    )
    per_image["ratio"] = per_image["rms_std_diffusion"] / per_image["rms_std_mcmc"]
    results = []
    for seed, width in ((0, 0.7), (1, 1.0)):  # two psi seeds, the second calibrated
        val, test = dense_case(width, 5, n=4, k=39), dense_case(width, 6, n=4, k=39)
        edges = np.linspace(-5, 5, 41)
        out = coverage_study(test, val, LEVELS, 0.9, 0.05, 50, np.random.default_rng(0), edges)
        results.append([f.assign(seed=seed) for f in (out.table, out.reliability, out.z_hist)])
    per_image = pd.concat([per_image.assign(seed=0), per_image.assign(seed=1, ratio=1.0)])
    paths = {}
    for name, frame in (
        ("per_image", per_image),
        ("coverage", pd.concat([r[0] for r in results])),
        ("reliability", pd.concat([r[1] for r in results])),
        ("z", pd.concat([r[2] for r in results])),
    ):
        paths[name] = str(tmp_path / f"{name}.csv")
        frame.to_csv(paths[name], index=False)
    png, pdf = tmp_path / "fig6.png", tmp_path / "fig6.pdf"
    fig6(
        per_image=paths["per_image"],
        coverage=paths["coverage"],
        reliability=paths["reliability"],
        z_hist=paths["z"],
        png=png,
        pdf=pdf,
    )
    assert png.stat().st_size > 10_000 and pdf.stat().st_size > 5_000


def test_run_dataclass_builds_each_sampler():
    assert Run("ddim", 5, "uniform", 1.0).sampler().eta == 1.0
    assert Run("ancestral", 5, "uniform", 0.0).sampler().kind == "ancestral"
    assert cal.central_levels(0.9) == pytest.approx((0.05, 0.95))

"""psi's position intervals recalibrated by split conformal scales (analyze.recalibration).

Independent truths: the split-conformal guarantee (a new exchangeable point is covered with
probability in [c, c + 1/(n + 1))), Gaussian quantile ratios for intervals of a known wrong
width, and the calibration movie's scales applied by an analysis with the card.
"""

import copy
import math
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_analyze import analysed, models, movie, run_cli  # noqa: F401 (fixtures)

from diffloc.analyze.calibration_movie import calibration_levels, measure_interval_scales
from diffloc.analyze.card import build_card, read_card
from diffloc.analyze.jobs import analysis_card
from diffloc.analyze.names import DETECTION_KEYS
from diffloc.analyze.recalibration import (
    CalibrationSizeError,
    apply_interval_scales,
    background_mismatch,
    conformal_scale,
    density_mismatch,
    fit_floor,
    fit_interval_scales,
)
from diffloc.analyze.settings import DEFAULTS, analyze_settings


def test_conformal_scale_covers_a_new_point_at_its_exact_level():
    """Over many calibration sets of n = 49 ratios, the scale covers a 50th exchangeable ratio
    with probability in [c, c + 1/50), within binomial error."""
    rng = np.random.default_rng(11)
    n, trials = 49, 4000
    for level in (0.68, 0.9):
        draws = np.abs(rng.standard_normal((trials, n + 1)))
        covered = [draws[t, -1] <= conformal_scale(draws[t, :-1], level) for t in range(trials)]
        rate = float(np.mean(covered))
        exact = math.ceil((n + 1) * level) / (n + 1)  # rank / (n + 1): the exact coverage
        band = 3 * math.sqrt(exact * (1 - exact) / trials)
        assert abs(rate - exact) < band, (level, rate, exact)
        assert level <= exact < level + 1 / (n + 1)


def test_conformal_scale_needs_enough_ratios():
    assert conformal_scale(np.arange(19.0), 0.95) == 18.0  # rank ceil(20 * 0.95) = 19
    with pytest.raises(CalibrationSizeError, match="at least 19"):
        conformal_scale(np.arange(18.0), 0.95)


def _intervals(rng, n: int, sigma: float, half: float, photons: float) -> pd.DataFrame:
    """n localisations whose psi intervals are centred on truth + N(0, sigma) with half-width
    `half` (nm) at both levels' Gaussian z (so `half` / sigma is the miscalibration)."""
    centre = rng.normal(0.0, sigma, (n, 2))
    out = {"photons": np.full(n, photons), "true_x_nm": np.zeros(n), "true_y_nm": np.zeros(n)}
    for c in (0.68, 0.95):
        z = stats.norm.ppf((1 + c) / 2)
        for k, a in enumerate("xy"):
            out[f"psi_lo{100 * c:g}_{a}_nm"] = centre[:, k] - half * z
            out[f"psi_hi{100 * c:g}_{a}_nm"] = centre[:, k] + half * z
    return pd.DataFrame(out)


def test_scales_undo_a_known_miscalibration_per_photon_bin():
    """Intervals half as wide as calibrated below 500 photons and 1.5x as wide above: the
    fitted scales are 2 and 1/1.5 at both levels (within sampling error), bin by bin."""
    rng = np.random.default_rng(5)
    table = pd.concat(
        [_intervals(rng, 3000, 10.0, 5.0, 200.0), _intervals(rng, 3000, 4.0, 6.0, 1500.0)]
    )
    fitted = fit_interval_scales(table, [0.68, 0.95], [500.0])
    assert fitted["n"] == [3000, 3000]
    np.testing.assert_allclose(fitted["scales"], [[2.0, 2.0], [1 / 1.5, 1 / 1.5]], rtol=0.06)


def _floored(rng, n: int, floor: float, factor: float, photons: float) -> pd.DataFrame:
    """n localisations whose own spread sigma is log-uniform on 1-30 nm but whose midpoints
    miss the truth by N(0, (factor sigma)^2 + floor^2) (nm) on each axis: the centre errs by
    `floor` even where the spread is tiny, as psi's track centre."""
    sigma = np.exp(rng.uniform(np.log(1.0), np.log(30.0), (n, 1)))
    centre = rng.normal(0.0, 1.0, (n, 2)) * np.sqrt((factor * sigma) ** 2 + floor**2)
    out = {"photons": np.full(n, photons), "true_x_nm": np.zeros(n), "true_y_nm": np.zeros(n)}
    for c in (0.68, 0.95):
        z = stats.norm.ppf((1 + c) / 2)
        for k, a in enumerate("xy"):
            out[f"psi_lo{100 * c:g}_{a}_nm"] = centre[:, k] - z * sigma[:, 0]
            out[f"psi_hi{100 * c:g}_{a}_nm"] = centre[:, k] + z * sigma[:, 0]
    return pd.DataFrame(out)


def test_the_floor_fit_recovers_a_known_floor_and_spread_factors():
    """Midpoint errors N(0, a^2 sigma^2 + b^2) with b = 10 nm, a = 1.5 below 500 photons and
    0.5 above: the maximum-likelihood fit returns them within sampling error."""
    rng = np.random.default_rng(7)
    table = pd.concat(
        [_floored(rng, 2000, 10.0, 1.5, 200.0), _floored(rng, 2000, 10.0, 0.5, 1500.0)]
    )
    floor, factors = fit_floor(table, [500.0])
    assert floor == pytest.approx(10.0, rel=0.08)
    np.testing.assert_allclose(factors, [1.5, 0.5], rtol=0.08)
    assert fit_floor(table, [100.0, 500.0])[1][0] is None  # no localisation below 100 photons


def test_a_fitted_floor_covers_narrow_and_wide_spreads_alike():
    """On new localisations from the same process, intervals from a fitted floor cover at
    their level both where psi's spread is narrow (sigma < 3 nm, below the 10 nm floor) and
    where it is wide (sigma > 10 nm); a scale alone (floor 0) covers on average but too rarely
    at the narrow ones: the conditional coverage only the floor restores."""
    rng = np.random.default_rng(3)
    calibration, new = _floored(rng, 3000, 10.0, 1.0, 500.0), _floored(rng, 20000, 10.0, 1.0, 500.0)
    sigma = (new["psi_hi68_x_nm"] - new["psi_lo68_x_nm"]).to_numpy() / 2 / stats.norm.ppf(0.84)
    narrow, wide = sigma < 3.0, sigma > 10.0
    for floor, ok in (("fit", True), (0.0, False)):
        fitted = fit_interval_scales(calibration, [0.68, 0.95], [], floor)
        out = apply_interval_scales(
            new.assign(psi_sampled=True, crlb_x_nm=1.0, crlb_y_nm=1.0), fitted
        )
        for level in (0.68, 0.95):
            t = f"{100 * level:g}"
            inside = (out[f"psi_lo{t}_x_nm"] <= 0) & (out[f"psi_hi{t}_x_nm"] >= 0)
            assert inside.mean() == pytest.approx(level, abs=0.02)  # the marginal guarantee
            rates = inside[narrow].mean(), inside[wide].mean()
            if ok:
                assert all(abs(r - level) < 0.03 for r in rates), (level, rates)
            else:
                assert rates[0] < level - 0.08, (level, rates)


def test_a_bin_with_too_few_localisations_fails_with_its_range():
    rng = np.random.default_rng(1)
    table = pd.concat([_intervals(rng, 50, 10, 10, 200.0), _intervals(rng, 5, 4, 4, 1500.0)])
    with pytest.raises(CalibrationSizeError, match=r"photons \[500, inf\)"):
        fit_interval_scales(table, [0.68, 0.95], [500.0])


def test_applied_scales_widen_about_the_midpoint_and_set_the_uncertainty():
    rng = np.random.default_rng(2)
    table = pd.concat([_intervals(rng, 3, 10, 5, 200.0), _intervals(rng, 2, 4, 6, 1500.0)])
    table = table.assign(
        psi_sampled=[True, True, True, True, False], crlb_x_nm=7.0, crlb_y_nm=8.0
    ).reset_index(drop=True)
    table.loc[4, [c for c in table if c.startswith("psi_lo") or c.startswith("psi_hi")]] = np.nan
    calibration = {
        "photon_edges": [500.0], "levels": [0.68, 0.95], "scales": [[2, 3], [0.5, 1]],
        "floor_nm": 4.0,
    }  # fmt: skip
    out = apply_interval_scales(table, calibration)
    for level, k in (("68", 0), ("95", 1)):
        pad = 4.0 * stats.norm.ppf((1 + int(level) / 100) / 2)  # the floor at this level's z
        for a in "xy":
            lo, hi = table[f"psi_lo{level}_{a}_nm"], table[f"psi_hi{level}_{a}_nm"]
            scale = np.where(table["photons"] < 500, *np.array(calibration["scales"])[:, k])
            half = scale * np.sqrt(((hi - lo) / 2) ** 2 + pad**2)
            np.testing.assert_allclose(out[f"psi_lo{level}_{a}_nm"], (lo + hi) / 2 - half)
            np.testing.assert_allclose(out[f"psi_hi{level}_{a}_nm"], (lo + hi) / 2 + half)
    half = (out["psi_hi68_x_nm"] - out["psi_lo68_x_nm"]) / 2
    np.testing.assert_allclose(out["uncertainty_x_nm"][:4], half[:4])
    assert out.loc[4, "uncertainty_x_nm"] == 7.0 and out.loc[4, "uncertainty_y_nm"] == 8.0
    np.testing.assert_array_equal(out["psi_scale"].to_numpy()[:4], [2, 2, 2, 0.5])
    assert np.isnan(out.loc[4, "psi_scale"])
    own = apply_interval_scales(table, None)
    np.testing.assert_array_equal(own["psi_lo95_x_nm"], table["psi_lo95_x_nm"])


def test_a_movie_of_another_density_is_warned_about():
    calibration = {"density_per_um2": 1.0}
    assert density_mismatch(100, 10, 10.0, calibration) is None  # 1 per um^2
    assert density_mismatch(100, 10, 19.0, calibration) is None  # 0.53
    assert "0.25 localisations per um^2" in density_mismatch(25, 10, 10.0, calibration)
    assert density_mismatch(25, 10, 10.0, None) is None


def test_background_warning_outside_the_calibrated_range():
    calibration = {"background": {"low": 10.0, "high": 30.0}}
    assert background_mismatch(np.array([5.0, 20.0, 25.0]), calibration) is None  # median 20
    assert background_mismatch(np.array([10.0]), calibration) is None  # the range is closed
    assert "median fitted background 35" in background_mismatch(
        np.array([35.0, 40.0, 1.0]), calibration
    )
    assert "8 photons" in background_mismatch(np.array([8.0]), calibration)
    assert background_mismatch(np.array([]), calibration) is None
    assert background_mismatch(np.array([80.0]), None) is None


def test_analysis_levels_must_hold_068_and_be_calibrated(models):  # noqa: F811
    card = read_card(models[0])
    with pytest.raises(ValueError, match=r"must include 0\.68"):
        analyze_settings({"levels": [0.9]}, card, 1)
    old = {"levels": [0.68, 0.95], "scales": [[1, 1]]}  # a card from before the floor
    with pytest.raises(ValueError, match=r"without a floor \(floor_nm\).*rebuild"):
        analyze_settings({}, {**card, "position_calibration": old}, 1)
    floored = {**old, "floor_nm": 0.0}  # a card from before the detection record
    with pytest.raises(ValueError, match=r"does not record the detection settings.*rebuild"):
        analyze_settings({}, {**card, "position_calibration": floored}, 1)
    detection = {k: DEFAULTS[k] for k in DETECTION_KEYS}
    calibrated = {**card, "position_calibration": {**floored, "detection": detection}}
    with pytest.raises(ValueError, match=r"calibrated at \[0.68, 0.95\] only"):
        analyze_settings({"levels": [0.68, 0.9]}, calibrated, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyze_settings({}, calibrated, 1)  # the card's detection settings: no warning
    other = DEFAULTS["min_snr"] + 1.0
    with pytest.warns(UserWarning, match=rf"analyze\.min_snr {other!r}, {DEFAULTS['min_snr']!r}"):
        analyze_settings({"min_snr": other}, calibrated, 1)
    assert calibration_levels([0.95, 0.9]) == [0.68, 0.9, 0.95]


def test_card_calibration_is_measured_and_applied(models, movie, analysed, tmp_path):  # noqa: F811
    """A card built with calibration frames holds one scale per bin and level, measured on that
    many localisations; analysing a movie with it scales psi's own intervals (the analysis with
    the uncalibrated card: the same samples) about their midpoints by those scales."""
    root, cfg = models
    cfg = copy.deepcopy(cfg)
    cfg["analyze"]["position_calibration"].update(
        frames=24, size=14, density_per_um2=2.0, photons={"dist": "uniform", "low": 800, "high": 3000},
        background={"low": 5.0, "high": 15.0}, photon_edges=[], floor_nm="fit",
    )  # fmt: skip
    folder = tmp_path / "models"
    shutil.copytree(root, folder)
    analysis_card(phi=folder / "sigma_y_3" / "phi.pt", psi=folder / "psi.pt",
                  card=folder / "analysis.json", config=cfg)  # fmt: skip
    card = read_card(folder)
    pc = card["position_calibration"]
    assert pc["levels"] == [0.68, 0.95] and len(pc["scales"]) == 1 and len(pc["scales"][0]) == 2
    assert pc["n"][0] * 2 >= 19 and pc["frames"] == 24 and pc["size_px"] == 20 - 2 * 3
    assert all(np.isfinite(pc["scales"][0])) and pc["scales"][0][1] > 0
    assert pc["floor_nm"] >= 0 and len(pc["spread_factors"]) == 1
    assert pc["detection"] == {k: cfg["analyze"][k] for k in DETECTION_KEYS}
    again = measure_interval_scales(cfg, {**card, "position_calibration": None}, folder, False)
    assert again["scales"] == pc["scales"] and again["floor_nm"] == pc["floor_nm"]  # deterministic
    out = tmp_path / "out"
    assert run_cli(movie[0] / "movie.tif", folder, out, ["--psi-frames", "2"]) == 0
    scaled = pd.read_parquet(out / "localisations.parquet")
    own = pd.read_parquet(analysed / "localisations.parquet")
    sampled = own["psi_sampled"].to_numpy() & np.isfinite(own["psi_lo68_x_nm"]).to_numpy()
    assert sampled.sum() > 3
    for level, scale in zip(("68", "95"), pc["scales"][0], strict=True):
        lo, hi = own[f"psi_lo{level}_x_nm"][sampled], own[f"psi_hi{level}_x_nm"][sampled]
        pad = pc["floor_nm"] * stats.norm.ppf((1 + int(level) / 100) / 2)
        np.testing.assert_allclose(
            scaled[f"psi_hi{level}_x_nm"][sampled],
            (lo + hi) / 2 + scale * np.sqrt(((hi - lo) / 2) ** 2 + pad**2),
        )
    np.testing.assert_allclose(scaled["psi_scale"][sampled], pc["scales"][0][0])


def test_an_analysis_off_the_calibrated_background_is_warned_about(models, movie, caplog):  # noqa: F811
    """A chunk whose fitted background (the movie: 10 photons/px) lies outside the card's
    calibrated range is warned about when psi runs on it, and not when psi does not."""
    import logging

    import torch

    from diffloc.analyze.pipeline import analyze_chunk
    from diffloc.data.condition import Condition
    from diffloc.data.models import load_model
    from diffloc.phi.network import load_phi_model
    from diffloc.psi.diffusion import load_psi

    root, cfg = models
    card = read_card(root)
    device = torch.device("cpu")
    phi, _ = load_model(root / card["phi_file"], load_phi_model)
    net, diffusion, meta = load_psi(root / card["psi_file"], device)
    psi = (net.eval(), diffusion, Condition.from_config(meta["config"]))
    made = movie[1]
    calibrated = {
        "levels": [0.68, 0.95], "photon_edges": [], "scales": [[1.0, 1.0]], "floor_nm": 0.0,
        "density_per_um2": 0.25, "background": {"low": 30.0, "high": 40.0},
        "detection": {k: cfg["analyze"][k] for k in DETECTION_KEYS},
    }  # fmt: skip
    warned = {}
    for psi_frames in (1, 0):
        settings = analyze_settings(
            {**cfg["analyze"], "psi_frames": psi_frames},
            {**card, "position_calibration": calibrated},
            cfg["seed"],
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="diffloc.analyze.pipeline"):
            analyze_chunk(made.frames[:2], 0, made.camera, phi, psi, settings, device)
        warned[psi_frames] = "median fitted background" in caplog.text
        if psi_frames:
            assert "calibrated on backgrounds 30-40" in caplog.text
    assert warned == {1: True, 0: False}


def test_a_killed_calibration_resumes_from_its_finished_parts(models, tmp_path, monkeypatch):  # noqa: F811
    """The card's calibration movie in parts of 4 frames: killed in its second part, the rerun
    reads the first part from the checkpoint and analyses only the rest; the scales equal those
    of an uninterrupted run, and of the whole movie as one chunk; a part of another calibration
    or written by other diffloc code is replaced, not reused, and an unreadable one analysed
    again; writing the card removes the checkpoint."""
    import diffloc.analyze.calibration_movie as calibration

    root, cfg = models
    cfg = copy.deepcopy(cfg)
    cfg["analyze"]["position_calibration"].update(
        frames=8, size=14, density_per_um2=2.0, photons={"dist": "uniform", "low": 800, "high": 3000},
        background={"low": 5.0, "high": 15.0}, photon_edges=[], floor_nm=0.0,
    )  # fmt: skip
    folder = tmp_path / "models"
    shutil.copytree(root, folder)
    phi, psi, card_path = (
        folder / "sigma_y_3" / "phi.pt",
        folder / "psi.pt",
        folder / "analysis.json",
    )
    card = build_card(cfg, phi, psi, card_path)
    parts = calibration.checkpoint_folder(folder)
    analyse, starts = calibration.analyze_chunk, []

    def counted(frames, first, *args, **kwargs):
        starts.append(first)
        if first == 4 and len(starts) == 2 and crash:
            raise KeyboardInterrupt("killed")
        return analyse(frames, first, *args, **kwargs)

    monkeypatch.setattr(calibration, "analyze_chunk", counted)
    crash = True
    with pytest.raises(KeyboardInterrupt):
        measure_interval_scales(cfg, card, folder, False)
    assert sorted(p.name for p in parts.iterdir()) == ["frames_0000.parquet"]
    crash, starts[:] = False, []
    resumed = measure_interval_scales(cfg, card, folder, False)
    assert starts == [4] and sum(resumed["n"]) >= 10
    (parts / "frames_0004.parquet").write_bytes(b"cut short")  # a part the kill truncated
    starts[:] = []
    assert measure_interval_scales(cfg, card, folder, False) == resumed and starts == [4]
    calibration.remove_checkpoint(folder)
    starts[:] = []
    fresh = measure_interval_scales(cfg, card, folder, False)
    assert starts == [0, 4] and fresh == resumed
    other = copy.deepcopy(cfg)
    other["analyze"]["position_calibration"]["floor_nm"] = 1.0  # another calibration: other key
    starts[:] = []
    measure_interval_scales(other, card, folder, False)
    assert starts == [0, 4]
    measure_interval_scales(cfg, card, folder, False)  # the parts of cfg again
    starts[:] = []
    code = calibration.source_fingerprint
    monkeypatch.setattr(calibration, "source_fingerprint", lambda: "other code")
    assert measure_interval_scales(cfg, card, folder, False) == resumed and starts == [0, 4]
    monkeypatch.setattr(calibration, "source_fingerprint", code)
    monkeypatch.setattr(calibration, "CHECKPOINT_FRAMES", 8)
    calibration.remove_checkpoint(folder)
    whole = measure_interval_scales(cfg, card, folder, False)
    assert whole["scales"] == resumed["scales"] and whole["n"] == resumed["n"]
    analysis_card(phi=phi, psi=psi, card=card_path, config=cfg)
    assert (
        not parts.exists()
        and read_card(folder)["position_calibration"]["scales"] == whole["scales"]
    )

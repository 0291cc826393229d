"""`diffloc analyze`: a synthetic TIFF movie in, localisations with uncertainty and exports out.

Tiny models (phi with fixed weights that make it a smoothing filter, psi with random output
weights) test the plumbing: conventions of both exports against the truth, a tile-border
emitter reported once, bad input failing with one message and no partial output, the
workflow's `analyze` target with frame chunks (dry run), and the console script.
"""

import copy
import json
import re
import subprocess

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import yaml

from conftest import REPO, tiny
from diffloc.analyze.card import ModelCardError, check_compatible, read_card
from diffloc.analyze.cli import main
from diffloc.analyze.frames import Tiling
from diffloc.analyze.jobs import analysis_card
from diffloc.analyze.localise import fit_localisations
from diffloc.analyze.nulls import with_nulls
from diffloc.analyze.outputs import OUTPUT_FILES
from diffloc.analyze.settings import em_gain_value, psi_frame_count
from diffloc.analyze.synthetic import analytic_phi, synthetic_movie
from diffloc.analyze.workers import auto_workers
from diffloc.data.exports import PICASSO_DTYPE
from diffloc.data.files import read_table
from diffloc.data.models import save_model
from diffloc.localize.matching import match_detections
from diffloc.physics.camera import Camera
from diffloc.physics.crlb import crlb
from diffloc.physics.psf import expected_counts
from diffloc.psi.diffusion import build_psi

SIZE, PIXEL, SIGMA = 48, 108.3, 0.92


@pytest.fixture(scope="module")
def models(tmp_path_factory, _default_config):
    """A models folder: an analytic phi (a fixed smoothing filter, exact enough to localise
    bright emitters), psi with random output weights, and their card."""
    root = tmp_path_factory.mktemp("analyze_models")
    cfg = tiny(_default_config)
    cfg["kde"]["sigma_y"] = 3.0
    phi_cfg = {**cfg["phi"]["model"], "upsample": 4, "ceiling": 1.0}
    (root / "sigma_y_3").mkdir()
    phi = root / "sigma_y_3" / "phi.pt"
    save_model(
        phi,
        analytic_phi(cfg["phi"]["model"], scale=1 / 400, background=10.0),
        phi_cfg,
        {"network": "phi", "fingerprint": "tiny-phi"},
    )
    psi_cfg = {
        "geometry": cfg["geometry"],
        "kde": cfg["kde"],
        "diffusion": {k: v for k, v in cfg["diffusion"].items() if k not in ("sampler", "summary")},
    }
    torch.manual_seed(0)
    net, _ = build_psi(psi_cfg)
    torch.nn.init.normal_(net.conv_out.weight, std=0.05)  # samples that differ
    meta = {"network": "psi", "config": psi_cfg, "fingerprint": "tiny-psi"}
    save_model(root / "psi.pt", net, psi_cfg, meta)
    analysis_card(phi=phi, psi=root / "psi.pt", card=root / "analysis.json", config=cfg)
    return root, cfg


def camera_maps(seed: int = 3) -> Camera:
    """sCMOS maps for SIZE x SIZE frames."""
    rng = np.random.default_rng(seed)
    return Camera.scmos((SIZE, SIZE), 2.0, 100.0, 4.0, 0.05, 2.0, 0.5, rng)


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """A 4-frame sCMOS movie with background 10 photons/px, its maps (.npy / .tif), its truth."""
    root = tmp_path_factory.mktemp("analyze_movie")
    camera = camera_maps()
    made = synthetic_movie(
        n_frames=4,
        size=SIZE,
        density_per_um2=0.25,
        photons={"dist": "loguniform", "low": 800, "high": 3000},
        background=10.0,
        camera=camera,
        pixel_size_nm=PIXEL,
        sigma_x=SIGMA,
        seed=5,
    )
    tifffile.imwrite(root / "movie.tif", made.frames, photometric="minisblack")
    np.save(root / "gain.npy", camera.gain)
    tifffile.imwrite(root / "offset.tif", camera.offset)
    np.save(root / "readout.npy", camera.readout_var)
    return root, made


def camera_args(root) -> list[str]:
    return [
        "--gain", str(root / "gain.npy"),
        "--offset", str(root / "offset.tif"),
        "--readout-var", str(root / "readout.npy"),
    ]  # fmt: skip


def run_cli(movie_path, models_dir, out, extra=(), camera_root=None) -> int:
    """The CLI on 2 chunks (3 + 1 frames), in this process unless `extra` names --workers."""
    args = ["analyze", str(movie_path), "--models", str(models_dir), "--out", str(out)]
    args += ["--pixel-size", str(PIXEL), "--no-progress", "--chunk-frames", "3"]
    workers = [] if "--workers" in extra else ["--workers", "1"]
    return main(args + camera_args(camera_root or movie_path.parent) + workers + list(extra))


@pytest.fixture(scope="module")
def analysed(models, movie, tmp_path_factory):
    """The movie analysed by the CLI's main function, psi on the first 2 frames."""
    out = tmp_path_factory.mktemp("analysed") / "out"
    assert run_cli(movie[0] / "movie.tif", models[0], out, ["--psi-frames", "2"]) == 0
    return out


def test_every_output_is_written(analysed):
    assert sorted(p.name for p in analysed.iterdir()) == sorted(OUTPUT_FILES.values())
    table = pd.read_parquet(analysed / "localisations.parquet")
    for column in ("frame", "x_nm", "y_nm", "x_px", "y_px", "photons", "crlb_x_nm", "psi_std_x_nm"):
        assert column in table.columns
    assert table["psi_sampled"].to_numpy().sum() > 0
    assert (table.loc[table["psi_sampled"], "frame"] < 2).all()
    assert table.loc[~table["psi_sampled"], "psi_std_x_nm"].isna().all()
    render = tifffile.imread(analysed / "render.tif")
    assert render.shape == (4 * SIZE, 4 * SIZE) and render.dtype == np.float32
    assert np.isfinite(tifffile.imread(analysed / "render_psi_std.tif")).all()


def test_worker_processes_give_the_outputs_of_one_process(analysed, models, movie, tmp_path):
    """--workers 2: the first chunk (with psi's frames) is analysed here, the second at the same
    time by a spawned helper process; every output equals the one-process run's."""
    out = tmp_path / "out"
    assert (
        run_cli(movie[0] / "movie.tif", models[0], out, ["--psi-frames", "2", "--workers", "2"])
        == 0
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "localisations.parquet"),
        pd.read_parquet(analysed / "localisations.parquet"),
    )
    for name in ("render.tif", "render_psi_mean.tif", "render_psi_std.tif"):
        np.testing.assert_array_equal(tifffile.imread(out / name), tifffile.imread(analysed / name))
    a, b = (read_table(d / "localisations.parquet")[1] for d in (out, analysed))
    assert a == b
    for name in ("localisations_thunderstorm.csv", "localisations_picasso.yaml", "render.png"):
        assert (out / name).read_bytes() == (analysed / name).read_bytes()
    with (
        h5py.File(out / "localisations_picasso.hdf5") as f,
        h5py.File(analysed / "localisations_picasso.hdf5") as g,
    ):
        np.testing.assert_array_equal(f["locs"][()], g["locs"][()])


def test_a_worker_error_fails_with_one_message_and_no_output(models, movie, tmp_path, capsys):
    """A NaN pixel in the second chunk, met by the helper process: one message, no output."""
    frames = movie[1].frames.copy()
    frames[3, 5, 7] = np.nan
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, frames, photometric="minisblack")
    out = tmp_path / "out"
    extra = ["--psi-frames", "0", "--workers", "2"]
    assert run_cli(path, models[0], out, extra, movie[0]) == 2
    err = capsys.readouterr().err
    assert "NaN or infinite pixel" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
    assert run_cli(movie[0] / "movie.tif", models[0], out, ["--workers", "0"]) == 2
    assert "--workers must be >= 1, got 0" in capsys.readouterr().err
    assert run_cli(movie[0] / "movie.tif", models[0], out, ["--threads", "0"]) == 2
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert run_cli(movie[0] / "movie.tif", models[0], out, ["--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "--device cuda: config asks for device 'cuda'" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_without_psi_maps_psi_gives_the_same_localisations_intervals_and_no_renders(
    analysed, models, movie, tmp_path
):
    """--no-psi-maps: the same localisations get psi's intervals (other draws: only their tiles
    are sampled), the psi renders stay zero, and the table's metadata says so."""
    out = tmp_path / "out"
    assert (
        run_cli(movie[0] / "movie.tif", models[0], out, ["--psi-frames", "2", "--no-psi-maps"]) == 0
    )
    table = pd.read_parquet(out / "localisations.parquet")
    full = pd.read_parquet(analysed / "localisations.parquet")
    np.testing.assert_array_equal(table["psi_sampled"], full["psi_sampled"])
    np.testing.assert_allclose(table[["x_px", "y_px"]], full[["x_px", "y_px"]])
    sampled = table["psi_sampled"].to_numpy()
    assert np.isfinite(table.loc[sampled, "psi_std_x_nm"]).mean() == pytest.approx(
        np.isfinite(full.loc[sampled, "psi_std_x_nm"]).mean(), abs=0.2
    )
    assert not table.loc[sampled, "psi_std_x_nm"].equals(full.loc[sampled, "psi_std_x_nm"])
    for name in ("render_psi_mean.tif", "render_psi_std.tif"):
        assert not tifffile.imread(out / name).any()
    assert tifffile.imread(analysed / "render_psi_std.tif").any()
    assert read_table(out / "localisations.parquet")[1]["psi_maps"] is False


def test_localisations_match_the_truth_in_both_exports(analysed, movie):
    """Positions of well-placed truths are found within 1 px in both exports' conventions."""
    truth = movie[1].truth
    inner = truth[
        (truth[["x_px", "y_px"]] > 2).all(axis=1) & (truth[["x_px", "y_px"]] < SIZE - 2).all(axis=1)
    ]
    ts = pd.read_csv(analysed / "localisations_thunderstorm.csv")
    assert list(ts.columns[:4]) == ["id", "frame", "x [nm]", "y [nm]"]
    assert ts["frame"].min() >= 1 and ts["id"].tolist() == list(range(1, len(ts) + 1))
    with h5py.File(analysed / "localisations_picasso.hdf5") as handle:
        locs = handle["locs"][...]
    assert locs.dtype == PICASSO_DTYPE
    info = yaml.safe_load((analysed / "localisations_picasso.yaml").read_text())
    assert (info["Width"], info["Height"], info["Frames"]) == (SIZE, SIZE, 4)
    assert info["Pixelsize"] == pytest.approx(PIXEL)
    assert len(locs) == len(ts)
    found, errors = 0, []
    for f in range(4):
        want = inner[inner["frame"] == f][["x_px", "y_px"]].to_numpy()
        ts_f = ts[ts["frame"] == f + 1][["x [nm]", "y [nm]"]].to_numpy() / PIXEL
        pic_f = locs[locs["frame"] == f]
        pic = np.column_stack([pic_f["x"], pic_f["y"]]) + 0.5  # Picasso: pixel centres at integers
        np.testing.assert_allclose(np.sort(pic, axis=0), np.sort(ts_f, axis=0), atol=1e-3)
        hit = match_detections(want, ts_f, 1.0, "one_to_one")
        found += (hit >= 0).sum()
        errors.append(np.linalg.norm(want[hit >= 0] - ts_f[hit[hit >= 0]], axis=1))
    assert found >= 0.6 * len(inner), f"found {found} of {len(inner)} bright inner emitters"
    assert np.sqrt(np.mean(np.concatenate(errors) ** 2)) < 0.5  # LR px
    assert (
        (locs["photons"] > 0).all()
        and (locs["lpx"] >= 0).all()
        and (locs["sx"] == pytest.approx(SIGMA))
    )


def test_a_chunk_without_emitters_gives_no_localisations_not_an_error(models, movie, tmp_path):
    """Three background-only frames first (one whole chunk: a dark start, a bleached end), psi
    on them too: the analysis runs, the dark frames hold no localisation, both exports and the
    renders are written; the lit frames keep their localisations."""
    camera = camera_maps()
    dark = camera.sample(np.full((3, SIZE, SIZE), 10.0), np.random.default_rng(11))
    frames = np.concatenate([dark, tifffile.imread(movie[0] / "movie.tif")])
    path = tmp_path / "dark_first.tif"
    tifffile.imwrite(path, frames.astype(np.float32), photometric="minisblack")
    out = tmp_path / "out"
    extra = ["--psi-frames", "4"]
    assert run_cli(path, models[0], out, extra, camera_root=movie[0]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES.values())
    table = pd.read_parquet(out / "localisations.parquet")
    assert len(table) > 0 and table["frame"].min() >= 3
    ts = pd.read_csv(out / "localisations_thunderstorm.csv")
    with h5py.File(out / "localisations_picasso.hdf5") as handle:
        assert len(handle["locs"]) == len(ts) == len(table)


def test_console_script_and_workflow_agree_on_files(models, movie, tmp_path):
    out = tmp_path / "out"
    cmd = [
        "diffloc",
        "analyze",
        str(movie[0] / "movie.tif"),
        "--models",
        str(models[0]),
        "--out",
        str(out),
    ]
    cmd += ["--pixel-size", str(PIXEL), "--psi-frames", "0", "--no-progress"]
    result = subprocess.run(
        cmd + camera_args(movie[0]), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES.values())
    bad = subprocess.run(
        [
            *["diffloc", "analyze", str(tmp_path / "missing.tif"), "--models", str(models[0])],
            *["--out", str(tmp_path / "bad"), "--pixel-size", "108.3", "--gain", "1"],
            *["--offset", "0", "--readout-var", "1"],
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "missing.tif: file is missing" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_tile_border_emitter_is_reported_once(models, tmp_path):
    """An emitter on the border of two psi tiles' cores (and of the phi chunk) is one row."""
    root = tmp_path
    camera = camera_maps()
    core = 20 - 2 * 3  # tile 20, margin 3
    emitters = np.array([[0, core + 0.02, 20.5, 3000.0], [1, 30.5, core - 0.01, 3000.0]])
    made = synthetic_movie(
        n_frames=2, size=SIZE, density_per_um2=0, photons={"dist": "fixed", "value": 1},
        background=5.0, camera=camera, pixel_size_nm=PIXEL, sigma_x=SIGMA, seed=9, emitters=emitters,
    )  # fmt: skip
    tifffile.imwrite(root / "movie.tif", made.frames, photometric="minisblack")
    np.save(root / "gain.npy", camera.gain)
    tifffile.imwrite(root / "offset.tif", camera.offset)
    np.save(root / "readout.npy", camera.readout_var)
    assert run_cli(root / "movie.tif", models[0], root / "out", ["--psi-frames", "all"]) == 0
    table = pd.read_parquet(root / "out" / "localisations.parquet")
    for f, (x, y) in enumerate(emitters[:, 1:3]):
        near = table[(table["frame"] == f) & (np.hypot(table["x_px"] - x, table["y_px"] - y) < 2)]
        assert len(near) == 1, table
        assert bool(near["psi_sampled"].iloc[0]) and np.isfinite(near["psi_std_x_nm"].iloc[0])


def test_tiling_cuts_and_stitches_without_seams():
    tiling = Tiling((23, 37), 20, 3)
    kde = np.random.default_rng(0).random((4 * 23, 4 * 37)).astype(np.float32)
    tiles = tiling.cut(kde, 4)
    assert tiles.shape == (2 * 3, 80, 80)
    np.testing.assert_array_equal(tiling.stitch(tiles, 4), kde)
    owner = tiling.owner(np.array([0.0, 13.99, 14.0, 22.9]), np.array([0.0, 0.0, 36.9, 28.0]))
    np.testing.assert_array_equal(owner, [0, 0, 5, 5])


def test_window_crlb_matches_the_full_image_bound():
    """sqrt(CRLB) on a 7 x 7 window equals physics.crlb's on the whole 20 x 20 image (< 1 %)."""
    camera = Camera.scalar((20, 20), 2.0, 100.0, 4.0)
    u, v, i0, b = np.array([10.3, 9.7]), np.array([9.6, 10.45]), np.array([500.0, 2000.0]), 10.0
    want = np.sqrt(crlb(u, v, i0, camera, SIGMA, b, fit_photons=True)[:, :2])
    g = camera.gain[0, 0]
    counts = np.zeros((2, 20, 20))  # photometry fits on counts; check the bound at known values
    from diffloc.analyze.fit import crlb_windows, psf_windows, windows

    _, inside, top, left = windows(counts, np.array([0, 1]), u, v, 3)
    readout = np.full((2, 7, 7), camera.readout_var[0, 0] / g**2)
    eu, ev, gu, gv = psf_windows(u, v, top, left, 3, SIGMA)
    got = crlb_windows(i0, np.full(2, b), readout, inside, eu, ev, gu, gv)[:, :2]
    np.testing.assert_allclose(got, want, rtol=0.01)


def test_photon_bound_is_poisson_without_background():
    """With no background or readout noise and the whole PSF in the window, sqrt(CRLB of i0) is
    the Poisson std sqrt(i0) (position and photons decouple at a pixel centre)."""
    from diffloc.analyze.fit import crlb_windows, psf_windows, windows

    u, v, i0 = np.array([10.5, 20.5]), np.array([10.5, 30.5]), np.array([400.0, 2500.0])
    _, inside, top, left = windows(np.zeros((1, 48, 48)), np.array([0, 0]), u, v, 4)
    eu, ev, gu, gv = psf_windows(u, v, top, left, 4, SIGMA)
    tiny_noise = np.full((2, 9, 9), 1e-9)
    got = crlb_windows(i0, np.full(2, 1e-9), tiny_noise, inside, eu, ev, gu, gv)[:, 2]
    np.testing.assert_allclose(got, np.sqrt(i0), rtol=1e-3)


def test_detections_below_the_significance_threshold_are_dropped(models, movie, tmp_path):
    """The Wald test: every kept localisation has photons >= min_snr sqrt(CRLB of photons); with
    positions at the detections (kde: no joint fits, whose neighbours would change) a stricter
    threshold keeps exactly the significant rows of the unfiltered (min_snr 0) table, and fewer
    of them."""
    tables = {}
    for snr in ("0", "5", "40"):
        out = tmp_path / snr
        extra = ["--psi-frames", "0", "--min-snr", snr, "--significance", "wald"]
        assert run_cli(movie[0] / "movie.tif", models[0], out, [*extra, "--position", "kde"]) == 0
        tables[snr] = pd.read_parquet(out / "localisations.parquet")
    assert tables["5"].eval("photons >= 5 * crlb_photons").all()
    every, strict = tables["0"], tables["40"]
    kept = every[every["photons"] >= 40.0 * every["crlb_photons"]]
    assert 0 < len(strict) < len(every)
    np.testing.assert_allclose(
        kept[["x_px", "y_px"]].to_numpy(), strict[["x_px", "y_px"]].to_numpy()
    )


def test_photon_and_background_fit_is_unbiased():
    """The Poisson fit recovers photons and background of isolated emitters within 5 %."""
    camera = Camera.scalar((SIZE, SIZE), 2.0, 100.0, 4.0)
    xy = (
        np.stack(np.meshgrid(np.arange(6, 44, 8.0), np.arange(6, 44, 8.0)), -1).reshape(-1, 2) + 0.3
    )
    emitters = np.column_stack(
        [np.repeat(np.arange(20), len(xy)), np.tile(xy, (20, 1)), np.full(20 * len(xy), 1000.0)]
    )
    made = synthetic_movie(
        n_frames=20, size=SIZE, density_per_um2=0, photons={"dist": "fixed", "value": 1},
        background=20.0, camera=camera, pixel_size_nm=PIXEL, sigma_x=SIGMA, seed=2, emitters=emitters,
    )  # fmt: skip
    t = made.truth
    out = fit_localisations(
        camera.poisson_counts(made.frames, clip=False), camera, t["frame"].to_numpy(),
        t["y_px"].to_numpy(), t["x_px"].to_numpy(), 3, SIGMA,
    )  # fmt: skip
    assert np.mean(out["photons"]) == pytest.approx(1000.0, rel=0.05)
    assert np.mean(out["background"]) == pytest.approx(20.0, rel=0.05)


def test_position_fit_recovers_the_truth_from_noise_free_counts():
    """On expected counts (no noise) the likelihood peaks at the truth: started 0.4 px away, the
    fit returns the true position, photons and background."""
    from diffloc.analyze.fit import fit_position, windows

    camera = Camera.scalar((20, 20), 2.0, 100.0, 4.0)
    u, v, i0, b = np.array([10.3, 9.2]), np.array([9.6, 10.9]), np.array([300.0, 1500.0]), 15.0
    omega = expected_counts(u[:, None], v[:, None], i0[:, None], 20, SIGMA, b)
    readout_term = camera.readout_var / camera.gain**2
    start_u, start_v = u + 0.4, v - 0.3
    counts, inside, top, left = windows(omega + readout_term, np.array([0, 1]), start_u, start_v, 3)
    readout, _, _, _ = windows(readout_term, None, start_u, start_v, 3)
    theta = np.column_stack([start_u, start_v, 0.7 * i0, np.full(2, 2 * b)])
    got = fit_position(counts, readout, inside, top, left, theta, 3, SIGMA)
    np.testing.assert_allclose(got[:, :2], np.column_stack([u, v]), atol=1e-4)
    np.testing.assert_allclose(got[:, 2], i0, rtol=1e-3)
    np.testing.assert_allclose(got[:, 3], b, rtol=1e-3)


@pytest.mark.parametrize("i0", [200.0, 2000.0])
def test_position_fit_attains_the_crlb(i0):
    """The MLE's lateral RMSE over 1500 isolated emitters (sCMOS maps, background 20/px) is
    sqrt of the mean CRLB at the truth (photons a nuisance, physics.crlb) within 10 %; phi's
    detection (here the truth plus 0.3 px noise per axis) only starts it."""
    size, n = 12, 1500
    camera = Camera.scmos((size, size), 1.0, 100.0, 5.0, 0.05, 2.0, 0.6, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    xy = rng.uniform(5.0, 7.0, (n, 2))
    emitters = np.column_stack([np.arange(n), xy, np.full(n, i0)])
    made = synthetic_movie(
        n_frames=n, size=size, density_per_um2=0, photons={"dist": "fixed", "value": 1},
        background=20.0, camera=camera, pixel_size_nm=PIXEL, sigma_x=SIGMA, seed=4, emitters=emitters,
    )  # fmt: skip
    t = made.truth
    tu, tv = t["y_px"].to_numpy(), t["x_px"].to_numpy()
    out = fit_localisations(
        camera.poisson_counts(made.frames, clip=False), camera, t["frame"].to_numpy(),
        tu + rng.normal(0, 0.3, n), tv + rng.normal(0, 0.3, n), 3, SIGMA, "mle",
    )  # fmt: skip
    rmse = np.sqrt(np.mean((out["u"] - tu) ** 2 + (out["v"] - tv) ** 2))
    bound = crlb(tu, tv, np.full(n, i0), camera, SIGMA, 20.0)[:, :2].sum(axis=1)
    assert rmse == pytest.approx(np.sqrt(bound.mean()), rel=0.1)
    assert np.mean(out["photons"]) == pytest.approx(i0, rel=0.05)


@pytest.mark.parametrize("significance", ["wald", "score"])
def test_a_frames_localisations_do_not_depend_on_the_other_frames_of_its_chunk(significance):
    """A crowded sCMOS movie (1 emitter per um^2: pairs, residual rounds, duplicates merged),
    detections jittered by 0.5 px, every third left for the residual search, every seventh given
    twice, none in frame 4: fitted as one chunk and frame by frame, every output is identical
    (chunking and checkpoints cannot change results). Once the neighbours' light in the bounds
    came from pairs found before the last fits, whose number of passes depended on the chunk,
    and a frame whose detections all failed the test was searched only in a chunk with others."""
    camera = camera_maps(12)
    made = synthetic_movie(
        n_frames=12, size=SIZE, density_per_um2=1.0,
        photons={"dist": "loguniform", "low": 150, "high": 3000}, background=20.0,
        camera=camera, pixel_size_nm=PIXEL, sigma_x=SIGMA, seed=13,
    )  # fmt: skip
    t = made.truth.iloc[np.arange(len(made.truth)) % 3 != 0]
    t = pd.concat([t, t.iloc[::7]]).sort_values("frame", kind="stable")
    t = t[t["frame"] != 4]  # phi found nothing there: the residual search alone
    rng = np.random.default_rng(14)
    counts = camera.poisson_counts(made.frames, clip=False)
    frame = t["frame"].to_numpy()
    u, v = (t[k].to_numpy() + rng.normal(0, 0.5, len(t)) for k in ("y_px", "x_px"))  # rows, columns
    args = (3, SIGMA, "mle", 4.0, 1.0, 2, significance)
    whole = fit_localisations(counts, camera, frame, u, v, *args)
    parts = []
    for f in range(len(counts)):
        mine = frame == f
        one = fit_localisations(counts[f : f + 1], camera, frame[mine] - f, u[mine], v[mine], *args)
        one["image"] = one["image"] + f
        one["detection"] = np.append(np.flatnonzero(mine), -1)[one["detection"]]  # -1 stays
        parts.append(one)
    assert (whole["detection"] == -1).sum() > 0  # the residual search found some
    assert (whole["image"] == 4).sum() > 10
    assert (whole["detection"] >= 0).sum() < len(t)  # duplicates merged
    for f, part in enumerate(parts):
        mine = whole["image"] == f
        for key, value in whole.items():
            np.testing.assert_array_equal(value[mine], part[key], err_msg=f"frame {f}: {key}")


def _noise_free(emitters: np.ndarray, camera: Camera, background: float) -> np.ndarray:
    """Expected Poisson-approximation counts [N, 20, 20] of emitters [E, 4] (frame, u, v, i0)."""
    frames = int(emitters[:, 0].max()) + 1
    counts = np.zeros((frames, 20, 20))
    for f in range(frames):
        e = emitters[emitters[:, 0] == f]
        counts[f] = expected_counts(e[:, 1], e[:, 2], e[:, 3], 20, SIGMA, background)
    return counts + camera.readout_var / camera.gain**2


def test_overlapping_emitters_are_fitted_jointly_and_a_missed_one_is_found_in_the_residual():
    """Noise-free counts, so the joint MLE is the truth. Frame 0: two emitters 1.7 px apart (PSF
    sigma 0.92 px), both detected 0.3 px off: fitted alone each is pulled towards the other;
    fitted with the neighbour's light known, both land on the truth. Frame 1: a pair 1.6 px
    apart of which phi found one, fitted alone at their centroid: the residual search adds the
    other, and the pair moves towards the truth (block coordinate ascent converges slowly when
    one fit starts at the centroid: within 0.6 px after the passes)."""
    camera = Camera.scalar((20, 20), 2.0, 100.0, 4.0)
    truth = np.array([[0, 9.2, 9.0, 800.0], [0, 10.8, 9.5, 600.0], [1, 9.6, 8.8, 900.0],
                      [1, 9.9, 10.4, 700.0]])  # fmt: skip
    counts = _noise_free(truth, camera, 10.0)
    image = np.array([0, 0, 1])
    u, v = np.array([9.5, 10.5, 9.6]), np.array([9.2, 9.3, 8.9])
    from diffloc.analyze.fit import fit_photons_background, fit_position, psf_windows, windows

    n, inside, top, left = windows(counts, image, u, v, 3)
    readout, _, _, _ = windows(camera.readout_var / camera.gain**2, None, u, v, 3)
    eu, ev, _, _ = psf_windows(u, v, top, left, 3, SIGMA)
    i0, b = fit_photons_background(n, readout, eu[:, :, None] * ev[:, None, :], inside)
    theta = np.column_stack([u, v, i0, b])
    alone = fit_position(n, readout, inside, top, left, theta, 3, SIGMA)  # each by itself
    assert np.hypot(*(alone[:2, :2] - truth[:2, 1:3]).T).min() > 0.1
    single = np.hypot(*(alone[2, :2] - truth[2:, 1:3]).T)
    joint = fit_localisations(counts, camera, image, u, v, 3, SIGMA, "mle", 5.0, 1.0, 1)
    assert joint["image"].tolist() == [0, 0, 1, 1]
    assert joint["detection"].tolist() == [0, 1, 2, -1]  # -1: found in the residual
    got = np.column_stack([joint["u"], joint["v"]])
    np.testing.assert_allclose(got[:2], truth[:2, 1:3], atol=0.01)
    np.testing.assert_allclose(joint["photons"][:2], truth[:2, 3], rtol=0.01)
    error = np.hypot(*(got[2:] - truth[2:, 1:3]).T)
    assert error.max() < 0.6 and error.max() < single.max()


@pytest.mark.parametrize("significance", ["wald", "score"])
def test_a_dim_emitter_on_a_bright_ones_flank_is_found_in_the_second_residual_round(significance):
    """Noise-free counts. phi found only a far emitter; a bright one (1000 photons) and a dim one
    (150 photons, 3 px away on its flank) are missed. The dim one is no maximum of the matched
    filter while the bright one's light is there, so one residual round adds only the bright
    one; the second round, on the residual of the fitted bright one, adds the dim one, and the
    passes put both on the truth."""
    camera = Camera.scalar((20, 20), 2.0, 100.0, 4.0)
    truth = np.array([[0, 4.3, 4.6, 500.0], [0, 12.2, 9.6, 1000.0], [0, 12.5, 12.6, 150.0]])
    counts = _noise_free(truth, camera, 10.0)
    found = {}
    for rounds in (0, 1, 2, 3):
        out = fit_localisations(
            counts, camera, np.array([0]), np.array([4.5]), np.array([4.4]), 3, SIGMA, "mle",
            5.0, 1.0, rounds, significance,
        )  # fmt: skip
        found[rounds] = np.column_stack([out["u"], out["v"], out["photons"]])
    assert [len(found[k]) for k in (0, 1, 2, 3)] == [1, 2, 3, 3]
    got = found[2][np.lexsort(found[2][:, ::-1].T)]
    np.testing.assert_allclose(got[:, :2], truth[:, 1:3], atol=0.05)
    np.testing.assert_allclose(got[:, 2], truth[:, 3], rtol=0.05)
    np.testing.assert_allclose(found[3], found[2])  # nothing left to add


def test_neighbour_pairs_and_colour_classes_against_brute_force():
    """Pairs within reach per axis in the same frame, both orders, equal the brute-force set; no
    pair shares a colour class."""
    from diffloc.analyze.crowd import colour_classes, neighbour_pairs

    rng = np.random.default_rng(4)
    index, u, v = rng.integers(0, 5, 300), rng.uniform(0, 30, 300), rng.uniform(0, 30, 300)
    a, b = neighbour_pairs(index, u, v, 3.0)
    close = (
        (index[:, None] == index[None])
        & (np.abs(u[:, None] - u[None]) <= 3.0)
        & (np.abs(v[:, None] - v[None]) <= 3.0)
    )
    np.fill_diagonal(close, False)
    rows, cols = np.nonzero(close)
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == set(
        zip(rows.tolist(), cols.tolist(), strict=True)
    )
    colour = colour_classes(len(u), a, b, index)
    assert (colour >= 0).all() and (colour[a] != colour[b]).all() and len(a) > 100
    degree = np.bincount(a, minlength=len(u))
    assert colour.max() <= degree.max()  # greedy: at most (largest degree + 1) colours


def test_colour_classes_of_a_chain_are_few_and_each_frame_its_own():
    """A chain of 40 neighbours ordered by index (detections along a row) needs 2 colours; the
    greedy colouring gives at most 3 (degree 2 + 1), not one per node. A frame's colours are the
    same alone as among other frames (analysis chunks cannot change a frame's refit order)."""
    from diffloc.analyze.crowd import colour_classes

    n = 40
    a, b = np.arange(n - 1), np.arange(1, n)
    chain = colour_classes(n, np.concatenate([a, b]), np.concatenate([b, a]), np.zeros(n, int))
    assert (chain[a] != chain[b]).all() and chain.max() <= 2
    frames = np.repeat([3, 7], n)  # the chain twice: frame 3, then frame 7
    a2, b2 = np.concatenate([a, a + n]), np.concatenate([b, b + n])
    both = colour_classes(2 * n, np.concatenate([a2, b2]), np.concatenate([b2, a2]), frames)
    np.testing.assert_array_equal(both[:n], chain)
    np.testing.assert_array_equal(both[n:], chain)


def test_two_fits_that_converge_on_one_emitter_leave_one_with_all_its_light():
    """Two detections 1.2 px apart on either side of one emitter (kept apart by merge_px 1.0,
    both significant) are refitted onto it; once within merge_px, the dimmer is dropped and the
    kept one refitted without the other's light: one localisation at the truth with all 1000
    photons (before, the kept twin kept only its share of them)."""
    camera = Camera.scalar((20, 20), 2.0, 100.0, 4.0)
    counts = _noise_free(np.array([[0, 10.3, 9.7, 1000.0]]), camera, 10.0)
    u, v = np.array([9.7, 10.9]), np.array([9.7, 9.7])
    out = fit_localisations(
        counts, camera, np.array([0, 0]), u, v, 3, SIGMA, "mle", 5.0, 1.0, 0, "score"
    )
    assert len(out["u"]) == 1
    np.testing.assert_allclose([out["u"][0], out["v"][0]], [10.3, 9.7], atol=1e-3)
    assert out["photons"][0] == pytest.approx(1000.0, rel=0.01)
    assert out["background"][0] == pytest.approx(10.0, rel=0.01)


@pytest.mark.parametrize("significance", ["wald", "score"])
def test_an_emitter_detected_twice_is_reported_once(significance):
    """Two detections 0.4 px apart on one emitter (a split KDE blob) give one localisation at
    the truth with all its photons, whichever the significance test (the twins are merged
    before it: with the score test each twin's light would hide the other), with either
    position (kde: at the brighter detection)."""
    camera = Camera.scalar((20, 20), 2.0, 100.0, 4.0)
    counts = _noise_free(np.array([[0, 10.3, 9.7, 1000.0]]), camera, 10.0)
    u, v = np.array([10.1, 10.5]), np.array([9.7, 9.7])
    out = fit_localisations(
        counts, camera, np.array([0, 0]), u, v, 3, SIGMA, "mle", 5.0, 1.0, 1, significance
    )
    assert len(out["u"]) == 1
    np.testing.assert_allclose([out["u"][0], out["v"][0]], [10.3, 9.7], atol=1e-3)
    assert out["photons"][0] == pytest.approx(1000.0, rel=0.01)
    kde = fit_localisations(
        counts, camera, np.array([0, 0]), u, v, 3, SIGMA, "kde", 5.0, 1.0, 0, significance
    )
    assert len(kde["u"]) == 1 and kde["photons"][0] == pytest.approx(1000.0, rel=0.05)


@pytest.mark.parametrize(
    "case, message",
    [
        ("not_tiff", "not a TIFF file"),
        ("single_image", "single 2-D image"),
        ("nan", "NaN or infinite pixel"),
        ("map_shape", "map has shape [10, 10], expected [48, 48]"),
        ("pixel_size", "trained for 108.3 nm camera pixels, but the movie has 65 nm"),
        ("psf", "trained for a PSF sigma of"),
        ("em_gain", "EM gain 300.0 > 1"),
    ],
)
def test_bad_input_fails_with_one_message_and_no_output(
    case, message, models, movie, tmp_path, capsys
):
    src = movie[0]
    path, extra, cam_root = src / "movie.tif", [], src
    if case == "not_tiff":
        path = tmp_path / "movie.tif"
        path.write_text("not an image")
    elif case == "single_image":
        path = tmp_path / "frame.tif"
        tifffile.imwrite(path, movie[1].frames[0])
    elif case == "nan":
        frames = movie[1].frames.copy()
        frames[3, 5, 7] = np.nan  # in the last chunk: found after the first chunk was analysed
        path = tmp_path / "nan.tif"
        tifffile.imwrite(path, frames, photometric="minisblack")
    elif case == "map_shape":
        cam_root = tmp_path
        for name in ("gain.npy", "readout.npy"):
            (tmp_path / name).write_bytes((src / name).read_bytes())
        tifffile.imwrite(tmp_path / "offset.tif", np.full((10, 10), 100.0, np.float32))
    elif case == "pixel_size":
        extra = ["--pixel-size", "65"]
    elif case == "psf":
        extra = ["--psf-sigma-nm", "150"]
    elif case == "em_gain":
        extra = ["--em-gain", "300"]
    out = tmp_path / "out"
    assert run_cli(path, models[0], out, [*extra, "--psi-frames", "0"], cam_root) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_card_binds_weights_and_names_mismatches(models, tmp_path):
    root, cfg = models
    card = read_card(root)
    with pytest.raises(ModelCardError, match=r"kde\.sigma_y = 3\.0"):
        other = copy.deepcopy(cfg)
        other["kde"]["sigma_y"] = 1.5
        check_compatible(card, pixel_size_nm=PIXEL, config=other)
    copied = tmp_path / "models"
    copied.mkdir()
    (copied / "sigma_y_3").mkdir()
    for name in ("sigma_y_3/phi.pt", "psi.pt"):
        (copied / name).write_bytes((root / name).read_bytes())
    changed = json.loads((root / "analysis.json").read_text())
    changed["psi_fingerprint"] = "other"
    (copied / "analysis.json").write_text(json.dumps(changed))
    with pytest.raises(ModelCardError, match="other psi weights"):
        read_card(copied)


def test_workflow_analyze_target_dry_runs_in_frame_chunks(movie, tmp_path):
    config = {"movie": str(movie[0] / "movie.tif"), "chunk_frames": 3, "out": str(tmp_path / "o")}
    flow = json.dumps(config)
    result = subprocess.run(
        ["snakemake", "analyze", "-n", "--cores", "2", "--config", f"analyze={flow}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    stats = result.stdout
    jobs = dict(
        line.split()[:2]
        for line in stats[stats.index("Job stats") :].splitlines()[3:]
        if len(line.split()) == 2
    )
    assert jobs["analyze_chunk"] == "2" and jobs["analyze_merge"] == "1"
    assert jobs["analysis_card"] == "1"
    # threads: the card's calibration analyze.threads (2), each chunk job analyze.job_threads
    blocks = [b.split("\n\n")[0] for b in stats.split("\nrule ")[1:]]
    threads = {b.split(":")[0]: re.findall(r"threads: (\d+)", b) for b in blocks}
    assert threads["analysis_card"] == ["2"]
    assert threads["analyze_chunk"] == []  # Snakemake prints no threads line for one thread


def test_workflow_reads_null_from_the_command_line(movie):
    """`--config analyze='{models: null, out: null, ...}'` passes the strings 'null': read as a
    config file's null (the run's own models and output folder), not as paths named 'null'."""
    nulls = {"models": None, "out": None, "psf_sigma_nm": None, "camera": {"em_gain": None}}
    flow = json.dumps({"movie": str(movie[0] / "movie.tif"), **nulls})
    result = subprocess.run(
        ["snakemake", "analyze", "-n", "--cores", "2", "--config", f"analyze={flow}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "null/" not in result.stdout and "results/default/analyze/movie/chunks" in result.stdout
    assert with_nulls({"models": "null", "out": "None", "movie": " ", "min_snr": "null"}) == {
        "models": None, "out": None, "movie": None, "min_snr": "null",
    }  # fmt: skip


def test_workers_fill_the_cores_the_process_may_use(monkeypatch):
    """One worker per `threads` of the affinity mask's cores, at least one; one on a GPU."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    cpu = torch.device("cpu")
    assert [auto_workers(t, cpu) for t in (1, 2, 3, 8)] == [5, 2, 1, 1]
    assert auto_workers(1, torch.device("cuda")) == 1


def test_em_gain_reads_yaml_null_from_the_command_line():
    """`snakemake --config analyze='{camera: {em_gain: null}}'` passes the string 'null'."""
    assert [em_gain_value(v) for v in (None, "null", "None", " ")] == [None] * 4
    assert em_gain_value("1") == 1.0 and em_gain_value(1) == 1.0
    for bad in ("abc", True):
        with pytest.raises(ValueError, match="camera em_gain must be a number or null"):
            em_gain_value(bad)


def test_psi_frame_count_reads_counts_and_all_and_names_the_key_otherwise():
    """A count (also as the command line's string), 'all' as -1; anything else names the key."""
    assert [psi_frame_count(v) for v in (0, 7, "7", "all", " All ")] == [0, 7, 7, -1, -1]
    for bad in ("some", "2.5", True, -2, 1.5):
        with pytest.raises(ValueError, match="psi_frames must be a count >= 0 or 'all'"):
            psi_frame_count(bad)

"""Localisation: detection on KDEs (LoG, local maxima), sub-pixel refinement, matching, metrics."""

import dataclasses
import logging
import math

import numpy as np
import pandas as pd
import pytest

from conftest import tiny
from diffloc.config import ConfigError, shard_config, validate_config
from diffloc.data.files import read_table
from diffloc.localize.detection import (
    DETECTION_COLUMNS,
    DETECTORS,
    DetectorSettings,
    detect,
    detector_settings,
    local_maxima,
    refine_offsets,
)
from diffloc.localize.jobs import localize
from diffloc.localize.matching import (
    efficiency,
    localization_metrics,
    localization_table,
    match_detections,
)
from diffloc.physics.kde import kde_images
from diffloc.simulate.jobs import simulate

S, L = 4, 20  # upsampling factor, LR image size


def _detections(rows: list[tuple[int, float, float]]) -> pd.DataFrame:
    """Detections (image, u_hr, v_hr) with dummy LoG sigma and intensity."""
    frame = pd.DataFrame(rows, columns=["image", "u_hr", "v_hr"])
    return frame.assign(sigma_hr=4.0, intensity=1.0).astype(DETECTION_COLUMNS)


def _emitters(rows: list[tuple[int, int, float, float]]) -> pd.DataFrame:
    """Ground truth (image, emitter, u_px, v_px) in LR px."""
    frame = pd.DataFrame(rows, columns=["image", "emitter", "u_px", "v_px"])
    return frame.astype({"image": "int32", "emitter": "int32"})


def _settings(config: dict, sigma_y: float, refine: str, detector: str = "log") -> DetectorSettings:
    config["kde"]["sigma_y"] = sigma_y
    return dataclasses.replace(detector_settings(config), refine=refine, detector=detector)


def _kdes(u: np.ndarray, v: np.ndarray, sigma_y: float) -> np.ndarray:
    return kde_images(u, v, np.ones_like(u), L, S, sigma_y, "max")


def test_detector_settings_are_the_authors_at_sigma_y_1_5_and_scale_with_sigma_y(default_config):
    default_config["kde"]["sigma_y"] = 1.5
    s = detector_settings(default_config)
    assert (s.min_sigma, s.max_sigma, s.num_sigma, s.exclude_border) == (2.0, 3.0, 5, 5)
    assert s.threshold == default_config["localize"]["threshold"] == 0.1  # authors: 0.2
    assert (s.detector, s.peaks_threshold, s.min_distance) == ("log", 0.2, 1)
    default_config["kde"]["sigma_y"] = 3.0
    s = detector_settings(default_config)
    assert (s.min_sigma, s.max_sigma) == (4.0, 6.0)
    assert (s.peaks_threshold, s.min_distance) == (0.2, 1)  # not scaled
    default_config["localize"].update(detector="peaks", peaks_threshold=0.3, min_distance=2)
    s = detector_settings(default_config)
    assert (s.detector, s.peaks_threshold, s.min_distance) == ("peaks", 0.3, 2)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda c: c["localize"].update(min_sigma=4.0), r"localize\.min_sigma.*max_sigma"),
        (lambda c: c["localize"].update(refine="spline"), r"localize\.refine.*'gaussian'"),
        (lambda c: c["localize"].pop("match_radius"), r"missing.*match_radius.*'localize'"),
        (lambda c: c.pop("localize"), r"missing.*'localize'"),
    ],
)
def test_bad_localize_config_names_the_key(default_config, schema, edit, pattern):
    edit(default_config)
    with pytest.raises(ConfigError, match=pattern):
        validate_config(default_config, schema)


def test_metrics_of_a_hand_computed_case():
    # 100 nm LR pixels, upsample 4 -> 25 nm per HR px. Image 0: three truths, three detections
    # off by (1, 0), (0, 2), (0, -3) HR px = (25, 0), (0, 50), (0, -75) nm, one far detection.
    # Image 1: one truth, no detection.
    emitters = _emitters(
        [(0, 0, 5.0, 5.0), (0, 1, 10.0, 10.0), (0, 2, 15.0, 15.0), (1, 0, 7.5, 7.5)]
    )
    dets = _detections([(0, 21.0, 20.0), (0, 40.0, 42.0), (0, 60.0, 57.0), (0, 70.0, 75.0)])
    table = localization_table(dets, emitters, upsample=4, pixel_size_nm=100.0, radius_hr=5.0)
    assert table["truth"].tolist() == [0, 1, 2, -1]
    assert table["u_px"].tolist() == [5.25, 10.0, 15.0, 17.5]
    assert table["v_nm"].tolist() == [500.0, 1050.0, 1425.0, 1875.0]
    assert table["du_nm"].iloc[:3].tolist() == [25.0, 0.0, 0.0]
    assert table["dv_nm"].iloc[:3].tolist() == [0.0, 50.0, -75.0]
    assert table["error_nm"].iloc[:3].tolist() == [25.0, 50.0, 75.0]
    assert np.isnan(table[["du_nm", "dv_nm", "error_nm"]].iloc[3]).all()

    m = localization_metrics(table, n_truth=len(emitters))
    assert (m["tp"], m["fp"], m["fn"], m["n_detections"], m["n_truth"]) == (3, 1, 1, 4, 4)
    assert m["precision"] == 0.75 and m["recall"] == 0.75 and m["f1"] == 0.75
    assert m["jaccard"] == pytest.approx(0.6)
    assert m["rmse_u_nm"] == pytest.approx(math.sqrt(625 / 3))  # 14.434
    assert m["rmse_v_nm"] == pytest.approx(math.sqrt((2500 + 5625) / 3))  # 52.042
    assert m["rmse_nm"] == pytest.approx(54.00617, abs=1e-5)  # sqrt(8750 / 3)
    # E = 1 - sqrt(0.4^2 + 0.5400617^2) = 1 - sqrt(0.4516667) = 1 - 0.6720615
    assert m["efficiency"] == pytest.approx(0.3279385, abs=1e-6)


def test_efficiency_is_the_smlm_challenge_formula_on_the_percent_scale():
    # challenge: E% = 100 - sqrt((100 - JI%)^2 + (1/nm * RMSE)^2); JI = 60 %, RMSE = 30 nm -> 50 %
    assert efficiency(0.6, 30.0) == pytest.approx(0.5)
    assert efficiency(1.0, 0.0) == 1.0
    assert efficiency(0.0, 0.0) == 0.0
    assert efficiency(1.0, 150.0) == pytest.approx(
        -0.5
    )  # negative past 100 nm, as in the challenge


def test_one_to_one_and_nearest_truth_conventions_differ_on_two_detections_near_one_truth():
    # truth A at HR (40, 40) with detections 1 and 2 HR px away; truth B far from both
    emitters = _emitters([(0, 0, 10.0, 10.0), (0, 1, 15.0, 15.0)])
    dets = _detections([(0, 40.0, 41.0), (0, 40.0, 42.0)])
    one = localization_table(dets, emitters, 4, 100.0, 5.0, "one_to_one")
    near = localization_table(dets, emitters, 4, 100.0, 5.0, "nearest")
    assert one["truth"].tolist() == [0, -1] and near["truth"].tolist() == [0, 0]
    m1, mn = localization_metrics(one, 2), localization_metrics(near, 2)
    assert (m1["tp"], m1["fp"], m1["fn"]) == (1, 1, 1)
    assert (m1["precision"], m1["recall"], m1["jaccard"]) == (0.5, 0.5, 1 / 3)
    assert (mn["tp"], mn["fp"], mn["fn"]) == (2, 0, 1)  # both paired, B still missed
    assert (mn["precision"], mn["recall"], mn["jaccard"]) == (1.0, 2 / 3, 2 / 3)
    assert m1["rmse_nm"] == pytest.approx(25.0)  # 1 HR px
    assert mn["rmse_nm"] == pytest.approx(math.sqrt((25.0**2 + 50.0**2) / 2))


def test_one_to_one_matching_maximises_pairs_where_greedy_nearest_would_not():
    # d0 is 0.5 px from A and 4.9 px from B; d1 is 4.9 px from A and 10.3 px from B (out of
    # radius). Greedy (closest pair first) gives d0-A and leaves d1 unmatched; the most pairs are
    # d0-B, d1-A, although their total distance (9.8) exceeds d0-A's 0.5 plus any penalty < 9.3.
    truths = np.array([[40.0, 40.0], [40.0, 45.4]])
    dets = np.array([[40.0, 40.5], [40.0, 35.1]])
    assert match_detections(dets, truths, 5.0, "one_to_one").tolist() == [1, 0]
    assert match_detections(dets, truths, 5.0, "nearest").tolist() == [0, 0]


def test_match_radius_is_inclusive():
    truth = np.array([[40.0, 40.0]])
    for convention in ("one_to_one", "nearest"):
        assert match_detections(np.array([[43.0, 44.0]]), truth, 5.0, convention).tolist() == [0]
        assert match_detections(np.array([[43.0, 44.001]]), truth, 5.0, convention).tolist() == [-1]
    with pytest.raises(ValueError, match="convention"):
        match_detections(truth, truth, 5.0, "greedy")


@pytest.mark.filterwarnings("error")
def test_empty_inputs_give_defined_metrics():
    no_dets, no_truths = _detections([]), _emitters([])
    some_dets = _detections([(0, 40.0, 40.0)])
    some_truths = _emitters([(0, 0, 10.0, 10.0), (1, 0, 10.0, 10.0)])

    m = localization_metrics(localization_table(no_dets, no_truths, 4, 108.3, 5.0), 0)
    assert (m["tp"], m["fp"], m["fn"]) == (0, 0, 0)
    assert (m["precision"], m["recall"], m["f1"], m["jaccard"], m["efficiency"]) == (1, 1, 1, 1, 1)
    assert math.isnan(m["rmse_nm"]) and math.isnan(m["rmse_u_nm"])

    m = localization_metrics(localization_table(some_dets, no_truths, 4, 108.3, 5.0), 0)
    assert (m["fp"], m["precision"], m["recall"], m["jaccard"], m["efficiency"]) == (1, 0, 1, 0, 0)

    m = localization_metrics(localization_table(no_dets, some_truths, 4, 108.3, 5.0), 2)
    assert (m["fn"], m["precision"], m["recall"], m["f1"], m["efficiency"]) == (2, 1, 0, 0, 0)

    for detector in DETECTORS:
        blank = detect(
            np.zeros((3, 80, 80), np.float32),
            DetectorSettings(4, 6, 5, 0.2, 0.5, 5, "gaussian", 1, detector=detector),
        )
        assert len(blank) == 0 and dict(blank.dtypes.astype(str)) == DETECTION_COLUMNS


def test_bad_images_and_tables_fail_fast():
    bad = np.zeros((2, 80, 80), np.float32)
    bad[1, 3, 4] = np.nan
    for detector in DETECTORS:
        settings = DetectorSettings(4, 6, 5, 0.2, 0.5, 5, "gaussian", 1, detector=detector)
        with pytest.raises(ValueError, match="NaN"):
            detect(bad, settings)
        with pytest.raises(ValueError, match=r"\[N, H, W\].*\(80, 80\)"):
            detect(np.zeros((80, 80)), settings)
    with pytest.raises(ValueError, match="detector must be one of"):
        DetectorSettings(4, 6, 5, 0.2, 0.5, 5, "gaussian", 1, detector="dog")
    with pytest.raises(ValueError, match="min_distance >= 1"):
        DetectorSettings(4, 6, 5, 0.2, 0.5, 5, "gaussian", 1, detector="peaks", min_distance=0)
    with pytest.raises(ValueError, match="refine"):
        DetectorSettings(4, 6, 5, 0.2, 0.5, 5, "spline", 1)
    with pytest.raises(ValueError, match="min_sigma <= max_sigma"):
        DetectorSettings(6, 4, 5, 0.2, 0.5, 5, "none", 1)
    with pytest.raises(ValueError, match="u_px"):
        localization_table(_detections([]), pd.DataFrame({"image": [], "emitter": []}), 4, 1.0, 5.0)
    with pytest.raises(ValueError, match="n_truth"):
        localization_metrics(
            localization_table(
                _detections([(0, 40, 40)]), _emitters([(0, 0, 10, 10)]), 4, 1.0, 5.0
            ),
            0,
        )


@pytest.mark.parametrize("detector", DETECTORS)
def test_detection_sits_on_the_hr_pixel_centre_for_an_emitter_there(default_config, detector):
    # LR (10.125, 9.875) -> HR (40.5, 39.5): the centre of HR pixel (40, 39)
    y = _kdes(np.array([[10.125]]), np.array([[9.875]]), 3.0)
    for refine in ("none", "gaussian", "centroid"):
        found = detect(y, _settings(default_config, 3.0, refine, detector))
        assert found[["u_hr", "v_hr"]].to_numpy() == pytest.approx(np.array([[40.5, 39.5]]))
        assert found["intensity"].iloc[0] == pytest.approx(1.0)


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("sigma_y", [1.5, 3.0])
def test_refinement_beats_hr_grid_quantisation_on_true_kdes(default_config, sigma_y, detector):
    rng = np.random.default_rng(3)
    n = 200
    u, v = rng.uniform(8.0, 12.0, size=(2, n, 1))
    y = _kdes(u, v, sigma_y)
    truth = S * np.concatenate([u, v], axis=1)  # HR px
    found = detect(y, _settings(default_config, sigma_y, "none", detector))
    assert found["image"].tolist() == list(range(n))  # one detection per image
    quantised = found[["u_hr", "v_hr"]].to_numpy()
    pixels = np.floor(quantised).astype(int)
    rmse = {"none": np.sqrt(np.mean((quantised - truth) ** 2, axis=0))}  # per axis, HR px
    for refine in ("gaussian", "centroid"):
        du, dv = refine_offsets(y, found["image"].to_numpy(), *pixels.T, refine, 1)
        err = quantised + np.stack([du, dv], axis=1) - truth
        rmse[refine] = np.sqrt(np.mean(err**2, axis=0))
    # quantisation alone: uniform error on [-0.5, 0.5) -> 1/sqrt(12) = 0.289 HR px per axis
    assert np.all((rmse["none"] > 0.25) & (rmse["none"] < 0.33))
    assert np.all(rmse["gaussian"] < 1e-3)  # log of a pixel-integrated Gaussian is ~quadratic
    assert np.all(rmse["centroid"] < 0.15)


def test_well_separated_emitters_are_all_found(default_config):
    # 3 x 3 grid of emitters 5 LR px = 20 HR px = 6.7 sigma_y apart, jittered by <= 0.25 LR px
    rng = np.random.default_rng(5)
    n = 20
    grid = np.array([(a, b) for a in (5.0, 10.0, 15.0) for b in (5.0, 10.0, 15.0)])
    pos = grid + rng.uniform(-0.25, 0.25, size=(n, 9, 2))
    y = _kdes(pos[..., 0], pos[..., 1], 3.0)
    emitters = _emitters([(i, k, pos[i, k, 0], pos[i, k, 1]) for i in range(n) for k in range(9)])
    found = detect(y, detector_settings(default_config))
    for convention in ("one_to_one", "nearest"):
        table = localization_table(found, emitters, S, 108.3, 5.0, convention)
        m = localization_metrics(table, len(emitters))
        assert (m["tp"], m["fp"], m["fn"]) == (9 * n, 0, 0)
        assert m["precision"] == 1.0 and m["recall"] == 1.0
        assert m["rmse_nm"] < 0.1


@pytest.mark.parametrize(("separation", "expected"), [(1.0, 1), (2.0, 1), (5.0, 2)])
def test_emitters_closer_than_two_sigma_y_merge_into_one_detection(
    default_config, separation, expected
):
    # Below 2 sigma_y two equal Gaussians have a single maximum and the coarser LoG scales only
    # blur them more: one detection at the midpoint. Well apart, two detections.
    sigma_y = 3.0
    d = separation * sigma_y / S  # LR px
    u = np.array([[10.1 - d / 2, 10.1 + d / 2]])
    v = np.array([[9.8, 9.8]])
    found = detect(_kdes(u, v, sigma_y), detector_settings(default_config))
    assert len(found) == expected
    if expected == 1:
        assert found[["u_hr", "v_hr"]].to_numpy()[0] == pytest.approx([40.4, 39.2], abs=0.25)
        table = localization_table(
            found, _emitters([(0, 0, u[0, 0], 9.8), (0, 1, u[0, 1], 9.8)]), S, 108.3, 5.0
        )
        assert localization_metrics(table, 2)["fn"] == 1
    else:
        assert np.sort(found["u_hr"].to_numpy()) == pytest.approx(S * u[0], abs=0.01)


def test_refinement_of_flat_and_empty_windows_is_zero():
    images = np.stack([np.zeros((10, 10)), np.full((10, 10), 0.3)])
    for method in ("gaussian", "centroid"):
        du, dv = refine_offsets(
            images, np.array([0, 1]), np.array([5, 0]), np.array([5, 9]), method, 1
        )
        assert du.tolist() == [0.0, 0.0] and dv.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("sigma_y", [1.5, 3.0])
def test_every_detector_finds_every_well_separated_emitter_to_0_05_hr_px(
    default_config, sigma_y, detector
):
    # 3 x 3 grid, 4.5 sigma_y apart, each emitter jittered by <= 0.2 sigma_y per axis: the
    # nearest neighbours stay > 4 sigma_y apart. True KDEs, the configured refinement (gaussian).
    rng = np.random.default_rng(11)
    n = 50
    step = 4.5 * sigma_y / S  # LR px
    grid = 10.0 + step * np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)])
    pos = grid + rng.uniform(-0.2, 0.2, size=(n, 9, 2)) * sigma_y / S
    near = np.linalg.norm(pos[:, :, None] - pos[:, None], axis=-1) + np.eye(9) * 1e9
    assert near.min() * S > 4 * sigma_y
    settings = _settings(default_config, sigma_y, "gaussian", detector)
    found = detect(_kdes(pos[..., 0], pos[..., 1], sigma_y), settings)
    emitters = _emitters([(i, k, *pos[i, k]) for i in range(n) for k in range(9)])
    table = localization_table(found, emitters, S, 108.3, 5.0)
    m = localization_metrics(table, len(emitters))
    assert (m["tp"], m["fp"], m["fn"]) == (9 * n, 0, 0)
    error_hr = table["error_nm"].to_numpy() * S / 108.3
    assert error_hr.max() < 0.05


MERGE_STEP = 0.05  # HR px between the separations scanned


@pytest.mark.parametrize("centre", [40.5, 40.0], ids=["pixel_centre", "pixel_boundary"])
@pytest.mark.parametrize("sigma_y", [1.5, 3.0])
def test_merge_distance_of_two_equal_emitters_per_detector(default_config, sigma_y, centre):
    # Two equal emitters along u, symmetric about `centre` (HR px: a pixel centre or a pixel
    # boundary), at separations d from 6 sigma_y down to 0.5 sigma_y. The sum of two Gaussians
    # of std s at distance d has one maximum when d <= 2s, so no detector may resolve them there;
    # `peaks` resolves them as soon as the HR grid shows two maxima (within 0.5 HR px of 2s),
    # the LoG (authors' scales) only from ~3.4-3.6 sigma_y. The merge distance is the largest d
    # with one detection.
    s = sigma_y
    d = np.round(np.arange(6 * s, 0.5 * s - 1e-9, -MERGE_STEP), 6)  # HR px, large to small
    u = np.stack([centre - d / 2, centre + d / 2], axis=1) / S
    y = _kdes(u, np.full_like(u, 39.5 / S), s)
    merge, peaks = {}, None
    for detector in DETECTORS:
        found = detect(y, _settings(default_config, s, "gaussian", detector))
        counts = np.bincount(found["image"], minlength=len(d))
        peaks = counts if detector == "peaks" else peaks
        assert set(counts) <= {1, 2}, f"{detector}: counts {sorted(set(counts))}"
        merge[detector] = d[counts == 1].max()
        assert (counts[d <= 2 * s] == 1).all(), f"{detector} resolves a single maximum"
        assert (counts[d >= 5 * s] == 2).all(), f"{detector} merges emitters 5 sigma_y apart"
        assert merge[detector] >= 2 * s  # nothing resolves below the analytic limit
    print(
        f"sigma_y {s}, centre {centre} HR px: merge distance (HR px) "
        + ", ".join(f"{k} {v:.2f} ({v / s:.2f} sigma_y)" for k, v in merge.items())
        + f"; analytic 2 sigma_y = {2 * s}"
    )
    # peaks: two detections at every separation above its merge distance, one below (the LoG
    # is ragged there: near a pixel boundary it splits, merges and splits again)
    assert (peaks[d > merge["peaks"]] == 2).all() and (peaks[d <= merge["peaks"]] == 1).all()
    assert abs(merge["peaks"] - 2 * s) <= 0.5
    assert 3.3 * s <= merge["log"] <= 3.7 * s  # the module docstring's ~3.4-3.6 sigma_y


def test_local_maxima_threshold_spacing_border_and_images():
    images = np.zeros((3, 40, 40), np.float32)
    images[0, 10, 10], images[0, 10, 13] = 1.0, 0.9  # 3 HR px apart
    images[0, 20, 20], images[0, 30, 30] = 0.25, 0.26  # at and just above the threshold
    images[0, 4, 20], images[0, 35, 20] = 1.0, 1.0  # 4 HR px from the edges
    images[1, 10, 10] = 0.5  # a lower maximum at the same pixel in another image
    found = {m: local_maxima(images, 0.25, m, 5) for m in (1, 2, 3)}
    rows = {m: list(zip(*(a.tolist() for a in f), strict=True)) for m, f in found.items()}
    assert rows[1] == rows[2] == [(0, 10, 10), (0, 10, 13), (0, 30, 30), (1, 10, 10)]
    assert rows[3] == [(0, 10, 10), (0, 30, 30), (1, 10, 10)]  # 0.9 is within 3 px of 1.0
    edge = list(zip(*(a.tolist() for a in local_maxima(images, 0.25, 1, 4)), strict=True))
    assert (0, 4, 20) in edge and (0, 35, 20) in edge  # exclude_border 4 keeps row 4 and 35


@pytest.mark.parametrize("min_distance", [1, 2])
def test_local_maxima_match_their_definition_pixel_by_pixel(min_distance):
    """Quantised noise (many equal neighbours, plateaus) against the docstring's definition,
    evaluated pixel by pixel: above threshold, equal to the neighbourhood maximum (edges
    repeated), no earlier such maximum in the neighbourhood, outside the border."""
    rng = np.random.default_rng(3)
    images = np.round(rng.uniform(0, 1, (4, 17, 19)) * 6) / 6
    d, border, thr = min_distance, 2, 0.3
    _, h, w = images.shape
    maxima = np.zeros(images.shape, bool)
    for i, r, c in np.ndindex(images.shape):
        rows = np.clip(np.arange(r - d, r + d + 1), 0, h - 1)
        cols = np.clip(np.arange(c - d, c + d + 1), 0, w - 1)
        maxima[i, r, c] = (
            images[i, r, c] > thr
            and images[i, r, c] == images[i][np.ix_(rows, cols)].max()
            and border <= r < h - border
            and border <= c < w - border
        )
    expected = []
    for i, r, c in zip(*np.nonzero(maxima), strict=True):
        earlier = [
            (rr, cc)
            for rr in range(max(r - d, 0), min(r + d + 1, h))
            for cc in range(max(c - d, 0), min(c + d + 1, w))
            if (rr, cc) < (r, c) and maxima[i, rr, cc]
        ]
        if not earlier:
            expected.append((i, r, c))
    found = local_maxima(images, thr, d, border, chunk=3)
    assert list(zip(*(a.tolist() for a in found), strict=True)) == expected
    assert len(expected) > 10


def test_a_saturated_plateau_is_one_peak_and_detections_do_not_leak_between_images(
    default_config,
):
    # phi's HardTanh clips the brightest pixels to 1: a plateau of equal maxima, one detection
    # per image, near the emitter; the stack gives the same detections as each image alone
    u, v = np.array([[10.1], [10.3], [7.0]]), np.array([[9.9], [10.0], [12.2]])
    y = np.minimum(1.0, 1.05 * _kdes(u, v, 3.0))
    assert ((y == 1.0).sum(axis=(1, 2)) > 1).all()
    settings = _settings(default_config, 3.0, "gaussian", "peaks")
    found = detect(y, settings)
    assert found["image"].tolist() == [0, 1, 2]
    uv = found[["u_hr", "v_hr"]].to_numpy()
    assert np.abs(uv - S * np.concatenate([u, v], axis=1)).max() < 0.6
    alone = pd.concat([detect(y[i : i + 1], settings).assign(image=i) for i in range(3)])
    assert alone.reset_index(drop=True).astype(DETECTION_COLUMNS).equals(found)
    chunked = local_maxima(y, settings.peaks_threshold, 1, 5, chunk=2)
    whole = local_maxima(y, settings.peaks_threshold, 1, 5)
    assert all(np.array_equal(a, b) for a, b in zip(chunked, whole, strict=True))
    assert found["sigma_hr"].isna().all() and (found["intensity"] == 1.0).all()


@pytest.mark.parametrize("detector", DETECTORS)
def test_localize_job_names_the_detector_and_width_in_log_metadata_and_metrics(
    default_config, tmp_path, caplog, detector
):
    config = tiny(default_config)
    config["localize"]["detector"] = detector
    npz, parquet = tmp_path / "test.npz", tmp_path / "test.parquet"
    simulate(shard=shard_config(config, "test", 0), npz=str(npz), parquet=str(parquet))
    caplog.set_level(logging.INFO, logger="diffloc.localize.jobs")
    localize(
        kde={"test": [str(npz)]},
        npz={"test": [str(npz)]},
        parquet={"test": [str(parquet)]},
        tables=[str(tmp_path / "oracle.parquet")],
        metrics=[str(tmp_path / "oracle.csv")],
        splits=["test"],
        config={k: config[k] for k in ("localize", "kde", "geometry")},
        source="oracle",
        photons={"test": 1000.0},
        sigma_y=config["kde"]["sigma_y"],
    )
    table, meta = read_table(tmp_path / "oracle.parquet")
    assert meta["detector"] == detector and meta["settings"]["detector"] == detector
    assert meta["localize"] == config["localize"] and (meta["source"], meta["split"]) == (
        "oracle",
        "test",
    )
    assert len(table) and {"u_hr", "truth", "shard"} <= set(table.columns)
    lines = [r.getMessage() for r in caplog.records if r.name == "diffloc.localize.jobs"]
    assert lines[0].startswith(f"detector {detector}: ")
    assert sum(f"oracle on test (sigma_y 3, detector {detector}, " in line for line in lines) == 2
    metrics = pd.read_csv(tmp_path / "oracle.csv")
    assert (metrics["detector"] == detector).all() and (metrics["sigma_y_hr"] == 3.0).all()
    assert meta["sigma_y_hr"] == 3.0 and (metrics["tp"] > 0).all()

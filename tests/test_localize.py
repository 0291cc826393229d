"""Localisation: LoG detection on KDEs, sub-pixel refinement, matching and metrics."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from diffloc.config import ConfigError, validate_config
from diffloc.localize.detection import (
    DETECTION_COLUMNS,
    DetectorSettings,
    detect,
    detector_settings,
    refine_offsets,
)
from diffloc.localize.matching import (
    efficiency,
    localization_metrics,
    localization_table,
    match_detections,
)
from diffloc.physics.kde import kde_images

S, L = 4, 20  # upsampling factor, LR image size


def _detections(rows: list[tuple[int, float, float]]) -> pd.DataFrame:
    """Detections (image, u_hr, v_hr) with dummy LoG sigma and intensity."""
    frame = pd.DataFrame(rows, columns=["image", "u_hr", "v_hr"])
    return frame.assign(sigma_hr=4.0, intensity=1.0).astype(DETECTION_COLUMNS)


def _emitters(rows: list[tuple[int, int, float, float]]) -> pd.DataFrame:
    """Ground truth (image, emitter, u_px, v_px) in LR px."""
    frame = pd.DataFrame(rows, columns=["image", "emitter", "u_px", "v_px"])
    return frame.astype({"image": "int32", "emitter": "int32"})


def _settings(config: dict, sigma_y: float, refine: str) -> DetectorSettings:
    config["kde"]["sigma_y"] = sigma_y
    return dataclasses.replace(detector_settings(config), refine=refine)


def _kdes(u: np.ndarray, v: np.ndarray, sigma_y: float) -> np.ndarray:
    return kde_images(u, v, np.ones_like(u), L, S, sigma_y, "max")


def test_detector_settings_are_the_authors_at_sigma_y_1_5_and_scale_with_sigma_y(default_config):
    default_config["kde"]["sigma_y"] = 1.5
    s = detector_settings(default_config)
    assert (s.min_sigma, s.max_sigma, s.num_sigma, s.threshold, s.exclude_border) == (
        2.0,
        3.0,
        5,
        0.2,
        5,
    )
    default_config["kde"]["sigma_y"] = 3.0
    s = detector_settings(default_config)
    assert (s.min_sigma, s.max_sigma) == (4.0, 6.0)


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

    blank = detect(
        np.zeros((3, 80, 80), np.float32), DetectorSettings(4, 6, 5, 0.2, 0.5, 5, "gaussian", 1)
    )
    assert len(blank) == 0 and dict(blank.dtypes.astype(str)) == DETECTION_COLUMNS


def test_bad_images_and_tables_fail_fast():
    settings = DetectorSettings(4, 6, 5, 0.2, 0.5, 5, "gaussian", 1)
    bad = np.zeros((2, 80, 80), np.float32)
    bad[1, 3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        detect(bad, settings)
    with pytest.raises(ValueError, match=r"\[N, H, W\].*\(80, 80\)"):
        detect(np.zeros((80, 80)), settings)
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


def test_detection_sits_on_the_hr_pixel_centre_for_an_emitter_there(default_config):
    # LR (10.125, 9.875) -> HR (40.5, 39.5): the centre of HR pixel (40, 39)
    y = _kdes(np.array([[10.125]]), np.array([[9.875]]), 3.0)
    for refine in ("none", "gaussian", "centroid"):
        found = detect(y, _settings(default_config, 3.0, refine))
        assert found[["u_hr", "v_hr"]].to_numpy() == pytest.approx(np.array([[40.5, 39.5]]))
        assert found["intensity"].iloc[0] == pytest.approx(1.0)


@pytest.mark.parametrize("sigma_y", [1.5, 3.0])
def test_refinement_beats_hr_grid_quantisation_on_true_kdes(default_config, sigma_y):
    rng = np.random.default_rng(3)
    n = 200
    u, v = rng.uniform(8.0, 12.0, size=(2, n, 1))
    y = _kdes(u, v, sigma_y)
    truth = S * np.concatenate([u, v], axis=1)  # HR px
    found = detect(y, _settings(default_config, sigma_y, "none"))
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

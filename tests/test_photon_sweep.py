"""Photon-sweep aggregation and phi's target checks on hand-made cases."""

import math

import numpy as np
import pandas as pd
import pytest

from diffloc.localize.photon_sweep import sweep_row
from diffloc.localize.targets import phi_targets
from diffloc.physics.camera import Camera
from diffloc.physics.crlb import crlb


def test_sweep_row_aggregates_errors_and_bounds():
    camera = Camera.scalar((20, 20), 1.0, 100.0, 5.0)
    emitters = pd.DataFrame(
        {
            "image": [0, 1],
            "emitter": [0, 0],
            "u_px": [9.3, 10.6],
            "v_px": [10.1, 8.8],
            "photons": [500.0, 500.0],
        }
    )
    table = pd.DataFrame(
        {
            "image": [0, 1, 1],
            "truth": [0, 0, -1],
            "du_nm": [3.0, -4.0, np.nan],
            "dv_nm": [0.0, 0.0, np.nan],
        }
    )
    row = sweep_row(500, table, emitters, camera, 0.92, 0.0, 108.3)
    assert row["recall"] == 1.0 and row["n_emitters"] == 2
    assert row["precision"] == pytest.approx(2 / 3)  # one of three detections is unmatched
    assert row["rmse_u_nm"] == pytest.approx(math.sqrt(12.5))
    assert row["rmse_v_nm"] == 0.0 and row["rmse_nm"] == pytest.approx(math.sqrt(12.5))
    var = crlb(
        emitters["u_px"].to_numpy(), emitters["v_px"].to_numpy(), np.full(2, 500.0), camera, 0.92
    )
    assert row["crlb_u_nm"] == pytest.approx(math.sqrt(var[:, 0].mean()) * 108.3)
    assert row["crlb_nm"] == pytest.approx(math.sqrt(var[:, :2].sum(1).mean()) * 108.3)
    assert row["rmse_over_crlb"] == pytest.approx(row["rmse_nm"] / row["crlb_nm"])
    # about sigma/sqrt(N) = 100 nm / sqrt(500) per axis, a bit more for pixels and readout noise
    assert 4.5 < row["crlb_u_nm"] < 7.0


def _localization(phi_precision, phi_recall, oracle_recall, sigma_y=1.5):
    rows = []
    for source, p, r in (("phi", phi_precision, phi_recall), ("oracle", 1.0, oracle_recall)):
        for convention in ("one_to_one", "nearest"):
            rows.append(
                {
                    "source": source,
                    "split": "test",
                    "sigma_y_hr": sigma_y,
                    "detector": "log",
                    "convention": convention,
                    "precision": p,
                    "recall": r,
                }
            )
    return pd.DataFrame(rows)


TARGETS = {
    "min_precision": 0.98,
    "max_recall_gap": 0.03,
    "min_recall": 0.85,
    "recall_sigma_y": 1.5,
    "max_rmse_over_crlb": 1.5,
    "photons": [200],
    "min_isolated_recall": 0.95,
    "recall_photons": [100],
}


def _sweep(rmse_over_crlb, recall_100, sigma_y=1.5):
    return pd.DataFrame(
        {
            "sigma_y_hr": sigma_y,
            "photons": [100, 200],
            "recall": [recall_100, 1.0],
            "rmse_over_crlb": rmse_over_crlb,
        }
    )


def test_targets_pass_and_fail_where_they_should():
    names = ["precision", "recall_gap", "recall", "rmse_over_crlb", "isolated_recall"]
    ok = phi_targets(_localization(0.99, 0.86, 0.88), _sweep([5.0, 1.4], 0.96), TARGETS, "test")
    assert list(ok["target"]) == names and ok["passed"].all()
    assert ok.loc[1, "measured"] == pytest.approx(0.02)
    bad = phi_targets(_localization(0.97, 0.80, 0.88), _sweep([1.0, 1.6], 0.9), TARGETS, "test")
    assert not bad["passed"].any()
    nan = phi_targets(_localization(0.99, 0.86, 0.88), _sweep([1.0, np.nan], 0.96), TARGETS, "test")
    assert list(nan["passed"]) == [True, True, True, False, True]


def test_targets_are_checked_per_width_and_never_pooled():
    """Each KDE width gets its own rows; the dense recall target only at recall_sigma_y."""
    localization = pd.concat(
        [_localization(0.99, 0.86, 0.88, 1.5), _localization(0.99, 0.55, 0.57, 3.0)]
    )
    sweep = pd.concat([_sweep([5.0, 1.4], 0.96, 1.5), _sweep([5.0, 1.7], 0.96, 3.0)])
    checks = phi_targets(localization, sweep, TARGETS, "test")
    assert list(checks["sigma_y_hr"]) == [1.5] * 5 + [3.0] * 4
    assert "recall" not in set(checks.loc[checks["sigma_y_hr"] == 3.0, "target"])
    failed = checks[~checks["passed"]]
    assert list(zip(failed["sigma_y_hr"], failed["target"], strict=True)) == [
        (3.0, "rmse_over_crlb")
    ]

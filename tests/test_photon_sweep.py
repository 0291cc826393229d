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


def _localization(phi_precision, phi_recall, oracle_recall):
    rows = []
    for source, p, r in (("phi", phi_precision, phi_recall), ("oracle", 1.0, oracle_recall)):
        for convention in ("one_to_one", "nearest"):
            rows.append(
                {
                    "source": source,
                    "split": "test",
                    "convention": convention,
                    "precision": p,
                    "recall": r,
                }
            )
    return pd.DataFrame(rows)


TARGETS = {
    "min_precision": 0.98,
    "max_recall_gap": 0.05,
    "max_rmse_over_crlb": 2.0,
    "photons": [200],
}


def test_targets_pass_and_fail_where_they_should():
    sweep = pd.DataFrame({"photons": [100, 200], "rmse_over_crlb": [5.0, 1.9]})
    ok = phi_targets(_localization(0.99, 0.55, 0.58), sweep, TARGETS, "test")
    assert list(ok["target"]) == ["precision", "recall_gap", "rmse_over_crlb"]
    assert ok["passed"].all()
    assert ok.loc[1, "measured"] == pytest.approx(0.03)
    bad = phi_targets(
        _localization(0.97, 0.50, 0.58), sweep.assign(rmse_over_crlb=[1.0, 2.1]), TARGETS, "test"
    )
    assert not bad["passed"].any()
    nan = phi_targets(
        _localization(0.99, 0.55, 0.58), sweep.assign(rmse_over_crlb=[1.0, np.nan]), TARGETS, "test"
    )
    assert list(nan["passed"]) == [True, True, False]

"""phi's localisation error per photon count beside the Cramer-Rao bound."""

import math

import numpy as np
import pandas as pd

from diffloc.physics.camera import Camera
from diffloc.physics.crlb import crlb

SWEEP_COLUMNS = (
    "sigma_y_hr",
    "detector",
    "photons",
    "n_emitters",
    "precision",
    "recall",
    "rmse_u_nm",
    "rmse_v_nm",
    "rmse_nm",
    "crlb_u_nm",
    "crlb_v_nm",
    "crlb_nm",
    "rmse_over_crlb",
)


def sweep_row(
    photons: float,
    table: pd.DataFrame,
    emitters: pd.DataFrame,
    camera: Camera,
    sigma_x: float,
    background: float,
    pixel_size_nm: float,
) -> dict[str, float]:
    """One photon count: precision, recall and RMSE of matched detections (nm) and sqrt of the
    mean CRLB (nm).

    The CRLB treats the photon count as a nuisance parameter (phi does not know it) and is
    averaged as a variance over the set's emitters, so `rmse_over_crlb` compares like with like:
    lateral RMSE / sqrt(mean(CRLB_u + CRLB_v)).
    """
    var = crlb(
        emitters["u_px"].to_numpy(),
        emitters["v_px"].to_numpy(),
        emitters["photons"].to_numpy(),
        camera,
        sigma_x,
        background,
        fit_photons=True,
    )
    var_u, var_v = (var[:, i].mean() * pixel_size_nm**2 for i in (0, 1))
    matched = table[table["truth"] >= 0]
    found = len(matched[["image", "truth"]].drop_duplicates())
    precision = len(matched) / len(table) if len(table) else math.nan
    rmse_u = math.sqrt(np.mean(matched["du_nm"] ** 2)) if len(matched) else math.nan
    rmse_v = math.sqrt(np.mean(matched["dv_nm"] ** 2)) if len(matched) else math.nan
    rmse, bound = math.hypot(rmse_u, rmse_v), math.sqrt(var_u + var_v)
    return {
        "photons": photons,
        "n_emitters": len(emitters),
        "precision": precision,
        "recall": found / len(emitters),
        "rmse_u_nm": rmse_u,
        "rmse_v_nm": rmse_v,
        "rmse_nm": rmse,
        "crlb_u_nm": math.sqrt(var_u),
        "crlb_v_nm": math.sqrt(var_v),
        "crlb_nm": bound,
        "rmse_over_crlb": rmse / bound,
    }

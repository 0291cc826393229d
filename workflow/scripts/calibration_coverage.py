"""Rule `calibration_coverage`: coverage, interval widths, z-scores and CRPS of psi on dense test
images, of psi recalibrated on validation images, and of phi with a constant sigma."""

import logging

import numpy as np

from diffloc import seeding
from diffloc.calibration.inputs import dense_set
from diffloc.calibration.tables import coverage_study
from diffloc.data.files import save_csv

log = logging.getLogger("diffloc.calibration")


def run(
    test: dict[str, list[str]],
    val: dict[str, list[str]],
    n_test: int,
    n_val: int,
    levels: list[float],
    recalibration_level: float,
    floor: float,
    n_boot: int,
    z_histogram: dict,
    seed: int,
    out_csv: str,
    out_reliability: str,
    out_z: str,
) -> None:
    """`test`, `val`: {posterior, npz, yhat} file lists of each split (first n images used)."""
    test_set = dense_set(test["posterior"], test["npz"], test["yhat"], n_test)
    val_set = dense_set(val["posterior"], val["npz"], val["yhat"], n_val)
    limit = float(z_histogram["limit"])
    result = coverage_study(
        test_set,
        val_set,
        levels,
        recalibration_level,
        floor,
        n_boot,
        seeding.rng(seed, "calibration", "coverage"),
        np.linspace(-limit, limit, int(z_histogram["bins"]) + 1),
    )
    for row in result.table.to_dict("records"):
        log.info("%s", row)
    for path, frame in (
        (out_csv, result.table),
        (out_reliability, result.reliability),
        (out_z, result.z_hist),
    ):
        save_csv(frame, path, float_format="%.9g")


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    p = smk.params
    run(
        p.test,
        p.val,
        p.n_test,
        p.n_val,
        p.levels,
        p.recalibration_level,
        p.floor,
        p.bootstrap,
        p.z_histogram,
        p.seed,
        smk.output.csv,
        smk.output.reliability,
        smk.output.z_hist,
    )

"""Rule `calibration_targets`: check the calibration targets (std ratio to MCMC beta = 1 and the
coverage of the central interval) for psi, recalibrated psi and phi + constant sigma."""

import logging

import pandas as pd

from diffloc.calibration.tables import calibration_targets
from diffloc.data.files import save_csv

log = logging.getLogger("diffloc.calibration")


def run(mcmc_csv: str, coverage_csv: str, targets: dict, out_csv: str) -> None:
    """Write metrics/calibration_targets.csv from the two calibration tables."""
    checks = calibration_targets(pd.read_csv(mcmc_csv), pd.read_csv(coverage_csv), targets)
    for row in checks.itertuples():
        log.info(
            "%s %s: %.4g in [%.4g, %.4g]",
            "PASS" if row.passed else "FAIL",
            row.description,
            row.measured,
            row.low,
            row.high,
        )
    save_csv(checks, out_csv, float_format="%.9g")


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(smk.input.mcmc, smk.input.coverage, smk.params.targets, smk.output[0])

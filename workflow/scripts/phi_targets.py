"""Rule `phi_targets`: gather localisation metrics into one table and check phi's targets."""

import logging

import pandas as pd

from diffloc.data.files import save_csv
from diffloc.localize.targets import phi_targets

log = logging.getLogger("diffloc.phi_targets")


def run(
    metrics_csv: list[str],
    sweep_csv: str,
    targets: dict,
    split: str,
    out_localization: str,
    out_targets: str,
) -> None:
    """Write metrics/localization.csv (all sources, splits, conventions) and the target checks."""
    localization = pd.concat([pd.read_csv(p) for p in metrics_csv], ignore_index=True)
    checks = phi_targets(localization, pd.read_csv(sweep_csv), targets, split)
    for row in checks.itertuples():
        log.info(
            "%s %s: %.4g %s %.4g",
            "PASS" if row.passed else "FAIL",
            row.description,
            row.measured,
            row.relation,
            row.threshold,
        )
    save_csv(localization, out_localization)
    save_csv(checks, out_targets)


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        list(smk.input.metrics),
        smk.input.sweep,
        smk.params.targets,
        "test",
        smk.output.localization,
        smk.output.targets,
    )

"""Rule `mcmc_summary`: one row per (setting, set) from every chunk's diagnostics."""

import logging

from diffloc.data.files import save_csv
from diffloc.data.mcmc import read_diagnostics
from diffloc.mcmc.chunks import summarise

log = logging.getLogger("diffloc.mcmc")


def run(diagnostics_paths: list[str], out_csv: str) -> None:
    """Summarise the per-image diagnostics CSVs into `out_csv`."""
    table = summarise([read_diagnostics(path) for path in diagnostics_paths])
    save_csv(table, out_csv, float_format="%.6g")
    log.info("MCMC summary of %d chunk files -> %s\n%s", len(diagnostics_paths), out_csv, table)


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    run(list(snakemake.input.diagnostics), snakemake.output.csv)  # noqa: F821

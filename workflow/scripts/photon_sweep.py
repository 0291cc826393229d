"""Rule `photon_sweep`: phi's localisation RMSE per photon count beside sqrt(CRLB)."""

import logging

import pandas as pd

from diffloc.data.files import save_csv
from diffloc.data.shards import read_shard
from diffloc.localize.photon_sweep import SWEEP_COLUMNS, sweep_row

log = logging.getLogger("diffloc.photon_sweep")


def run(
    photons: list[int],
    tables: list[str],
    data: list[list[tuple[str, str]]],
    sigma_x: float,
    background: float,
    pixel_size_nm: float,
    out_csv: str,
) -> None:
    """One row per photon count from its localisation table and its shards [(npz, parquet)]."""
    rows = []
    for i0, table_path, shards in zip(photons, tables, data, strict=True):
        table = pd.read_parquet(table_path)
        loaded = [read_shard(npz, parquet) for npz, parquet in shards]
        emitters = pd.concat([s.emitters for s in loaded], ignore_index=True)
        rows.append(
            sweep_row(i0, table, emitters, loaded[0].camera, sigma_x, background, pixel_size_nm)
        )
        log.info("i0 = %s: %s", i0, rows[-1])
    save_csv(pd.DataFrame(rows, columns=list(SWEEP_COLUMNS)), out_csv)


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        smk.params.photons,
        list(smk.input.tables),
        smk.params.shards,
        smk.params.sigma_x,
        smk.params.background,
        smk.params.pixel_size_nm,
        smk.output[0],
    )

"""Rule `run_info`: write the run's configuration, software versions and dataset summary."""

import logging

import pandas as pd
import yaml

from diffloc.data.files import atomic_path, save_csv
from diffloc.provenance import package_versions
from diffloc.report.datasets import dataset_table

log = logging.getLogger("diffloc.run_info")


def run(
    config: dict,
    npz: list[str],
    parquet: list[str],
    config_path: str,
    versions_path: str,
    datasets_path: str,
) -> None:
    """Write `config` as YAML, package versions and the per-split dataset table as TSV."""
    with atomic_path(config_path) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    versions = pd.DataFrame(package_versions().items(), columns=["package", "version"])
    save_csv(versions, versions_path, sep="\t")
    datasets = dataset_table(list(zip(npz, parquet, strict=True)))
    save_csv(datasets, datasets_path, sep="\t", float_format="%.4g")
    log.info("run %s: %d packages, %d splits", config["run"], len(versions), len(datasets))


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        dict(smk.params.config),
        list(smk.input.npz),
        list(smk.input.parquet),
        smk.output.config,
        smk.output.versions,
        smk.output.datasets,
    )

"""Job functions of the report stage: one per rule of workflow/rules/report.smk."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from diffloc.data.files import atomic_path, save_csv
from diffloc.data.models import read_model_metadata
from diffloc.provenance import machine as machine_info
from diffloc.provenance import package_versions, source_fingerprint
from diffloc.report.datasets import dataset_table

log = logging.getLogger(__name__)


def run_info(
    *,
    npz: list[str],
    parquet: list[str],
    models: list[str],
    config_yaml: str | Path,
    versions: str | Path,
    datasets: str | Path,
    machine: str | Path,
    config: dict,
) -> None:
    """Write the run's `config` as YAML, package versions (with the fingerprint of diffloc's
    source files) and per-split dataset counts as TSV, and the machine: the processor and torch
    build each model was trained on (from its file), the training threads of the config, and
    this job's own processor and torch settings."""
    with atomic_path(config_yaml) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    packages = {**package_versions(), "diffloc source fingerprint": source_fingerprint()}
    packages = pd.DataFrame(packages.items(), columns=["package", "version"])
    save_csv(packages, versions, sep="\t")
    splits = dataset_table(list(zip(npz, parquet, strict=True)))
    save_csv(splits, datasets, sep="\t", float_format="%.4g")
    rows = []
    for path in models:
        meta = read_model_metadata(path)
        network = meta.get("network", Path(path).stem)
        if "sigma_y" in meta:
            network = f"{network} (sigma_y {meta['sigma_y']:g} HR px)"
        for key, value in meta.get("machine", {}).items():
            rows.append((f"{network}: trained on", key, value))
    threads = {
        "phi": config["phi"]["train"]["threads"],
        "psi": config["diffusion"]["train"]["threads"],
    }
    rows += [(f"{n}: training threads (config)", "threads", str(v)) for n, v in threads.items()]
    rows += [("this job (run_info)", key, value) for key, value in machine_info().items()]
    save_csv(pd.DataFrame(rows, columns=["where", "what", "value"]), machine, sep="\t")
    log.info("run %s: %d packages, %d splits", config["run"], len(packages), len(splits))


def report_command(
    snakefile: str | Path, configfile: str | Path, targets: list[str], html: str | Path
) -> list[str]:
    """The `snakemake --report` call for `targets` in the current working directory."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--directory",
        os.getcwd(),
        "--configfile",
        str(configfile),
        "--report",
        str(html),
        *dict.fromkeys(targets),
    ]


def report(
    *, targets: list[str], config_yaml: str | Path, html: str | Path, snakefile: str | Path
) -> None:
    """Write the self-contained HTML report of `targets` with `snakemake --report` (a subprocess)."""
    # Snakemake writes its report in a separate invocation: this job runs it on the same
    # Snakefile, working directory and (dumped) configuration, for every input of the rule.
    command = report_command(snakefile, config_yaml, [*targets, str(config_yaml)], html)
    log.info("%s", " ".join(command))
    proc = subprocess.run(command, capture_output=True, text=True)
    log.info("%s", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake --report failed (exit {proc.returncode}):\n{proc.stderr}")

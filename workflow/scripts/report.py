"""Rule `report`: build the run's self-contained HTML report with `snakemake --report`.

Snakemake writes its report in a separate invocation; this rule makes that invocation the last
step of `rule all`, on the same Snakefile, working directory and (dumped) configuration, for
the files the report rule depends on (every study target).
"""

import logging
import os
import subprocess
import sys

log = logging.getLogger("diffloc.report")


def report_command(snakefile: str, configfile: str, targets: list[str], html: str) -> list[str]:
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
        configfile,
        "--report",
        html,
        *dict.fromkeys(targets),
    ]


def run(snakefile: str, configfile: str, targets: list[str], html: str) -> None:
    """Run `snakemake --report html` for `targets`; raise with its output if it fails."""
    command = report_command(snakefile, configfile, targets, html)
    log.info("%s", " ".join(command))
    proc = subprocess.run(command, capture_output=True, text=True)
    log.info("%s", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake --report failed (exit {proc.returncode}):\n{proc.stderr}")


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(smk.params.snakefile, smk.input.config, list(smk.input), smk.output[0])

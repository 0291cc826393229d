# diffloc: uncertainty-aware SMLM study. `snakemake --cores all` runs the whole study on the
# default config; `--configfile config/paper.yaml` gives the paper's scale.
from pathlib import Path

import yaml
from snakemake.utils import min_version

from diffloc.config import ConfigError, command_line_values, validate_config

min_version("9.0")


configfile: "config/config.yaml"


try:
    SCHEMA = yaml.safe_load(Path(workflow.basedir, "workflow/schemas/config.schema.yaml").read_text())
    command_line_values(config, SCHEMA)  # --config section='{key: 8}' passes '8': read back as 8
    validate_config(config, SCHEMA)
except ConfigError as error:
    raise WorkflowError(f"invalid configuration: {error}") from None

RUN = f"results/{config['run']}"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/phi.smk"
include: "workflow/rules/localize.smk"
include: "workflow/rules/psi.smk"
include: "workflow/rules/mcmc.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/figures.smk"


# The study's outputs, stage by stage; the report (last) shows them all.
STUDY_TARGETS = [
    *SIMULATE_TARGETS,
    *PHI_TARGETS,
    *LOCALIZE_TARGETS,
    *PSI_TARGETS,
    *MCMC_TARGETS,
    *CALIBRATION_TARGETS,
    *FIGURE_TARGETS,
]


include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        STUDY_TARGETS,
        REPORT_HTML,


# Every model and metrics table, without the figures and the report.
rule metrics_and_models:
    input:
        *[phi_model(sy) for sy in SIGMA_Y_AXIS],
        *[psi_model(d) for d in PSI_SEEDS],
        [f for f in STUDY_TARGETS if f.startswith(f"{METRICS}/")],

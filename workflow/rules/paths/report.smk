# Paths, config slices and targets of the report stage, for its rules in ../report.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.

RUN_INFO = f"{RUN}/report"


def report_inputs(wildcards):
    """Everything `rule all` builds except the report itself, and every registered report file."""
    return sorted({*STUDY_TARGETS, *REPORT_TARGETS} - {REPORT_HTML})

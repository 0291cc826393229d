# Report: the run's configuration, software versions and datasets, then one self-contained HTML
# report (`snakemake --report`) of every figure and table the stages registered with
# `report_item` (common.smk). Both rules are cheap and run where Snakemake runs (localrules).


include: "paths/report.smk"


localrules:
    run_info,
    report,


rule run_info:
    input:
        npz=[f for split in SPLITS for f in shard_files(split, "npz")],
        parquet=[f for split in SPLITS for f in shard_files(split, "parquet")],
        models=[*(phi_model(sy) for sy in SIGMA_Y_AXIS), *(psi_model(d) for d in PSI_SEEDS)],
    output:
        config_yaml=report_item(f"{RUN_INFO}/config.yaml", "config", "Run"),
        versions=report_item(f"{RUN_INFO}/versions.tsv", "versions", "Run"),
        datasets=report_item(f"{RUN_INFO}/datasets.tsv", "datasets", "Run"),
        machine=report_item(f"{RUN_INFO}/machine.tsv", "machine", "Run"),
    params:
        config=config,
    log:
        f"{RUN}/logs/run_info.log",
    benchmark:
        f"{RUN}/benchmarks/run_info.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/run_info.py"


rule report:
    input:
        targets=report_inputs,
        config_yaml=f"{RUN_INFO}/config.yaml",
    output:
        html=REPORT_HTML,
    params:
        snakefile=workflow.main_snakefile,
    log:
        f"{RUN}/logs/report.log",
    benchmark:
        f"{RUN}/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/report.py"


# MCMC reference posterior of isolated emitters (random-walk Metropolis-Hastings on the camera
# likelihood, the reference for psi's uncertainty): one job per (setting, split, chunk) and a
# summary table (Figure 2 is drawn in figures.smk from FIG2_CHUNKS). Each script is an adapter
# for the job of the same name in diffloc.mcmc.jobs.


include: "paths/mcmc.smk"


# table jobs of a few seconds (pandas on small files): run where Snakemake runs, not via SLURM
localrules:
    mcmc_summary,


rule mcmc:
    wildcard_constraints:
        setting="|".join(MCMC_SETTINGS),
        split="|".join(MCMC_SPLITS),
        chunk=r"\d{4}",
    input:
        npz=lambda w: [f"{RUN}/data/{w.split}/{s}.npz" for s in chunk_shards(config, int(w.chunk))],
        parquet=lambda w: [
            f"{RUN}/data/{w.split}/{s}.parquet" for s in chunk_shards(config, int(w.chunk))
        ],
    output:
        chains=f"{MCMC}.parquet",
        maps=f"{MCMC}.npz",
        diagnostics=f"{MCMC}.diagnostics.csv",
    params:
        chunk=lambda w: chunk_config(config, w.setting, w.split, int(w.chunk)),
    log:
        f"{RUN}/logs/mcmc/{{setting}}/{{split}}/{{chunk}}.log",
    benchmark:
        f"{RUN}/benchmarks/mcmc/{{setting}}/{{split}}/{{chunk}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda w: chunk_mem_mb(config, w.setting),
        runtime=lambda w: chunk_runtime(config, w.setting),
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/mcmc_chunk.py"


rule mcmc_summary:
    input:
        diagnostics=MCMC_DIAGNOSTICS,
    output:
        csv=report_item(f"{RUN}/metrics/mcmc.csv", "mcmc", "Metrics"),
    log:
        f"{RUN}/logs/mcmc_summary.log",
    benchmark:
        f"{RUN}/benchmarks/mcmc_summary.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/mcmc_summary.py"

# MCMC reference posterior of isolated emitters (SPEC 6): one job per (setting, split, chunk),
# a summary table (Figure 2 is drawn in figures.smk from FIG2_CHUNKS).
from diffloc.mcmc.plan import chunk_config, chunk_ids, chunk_mem_mb, chunk_runtime, chunk_shards, figure_spec, mcmc_sets

MCMC_SETTINGS = list(config["mcmc"]["settings"])
MCMC_SETS = mcmc_sets(config)
MCMC = f"{RUN}/mcmc/{{setting}}/{{split}}/{{chunk}}"  # + .parquet | .npz | .diagnostics.csv
MCMC_CHUNKS = [
    MCMC.format(setting=setting, split=set_name, chunk=chunk)
    for setting in MCMC_SETTINGS
    for set_name in MCMC_SETS
    for chunk in chunk_ids(config)
]
MCMC_DIAGNOSTICS = [f"{chunk}.diagnostics.csv" for chunk in MCMC_CHUNKS]
FIG2 = figure_spec(config)
FIG2_CHUNKS = [
    MCMC.format(setting=s, split=FIG2["set"], chunk=FIG2["chunk"]) for s in MCMC_SETTINGS
]



def mcmc_split_maps(setting, split):
    """MCMC push-forward map files (every chunk, in order) of `split` under `setting`."""
    return [f"{RUN}/mcmc/{setting}/{split}/{chunk}.npz" for chunk in chunk_ids(config)]


def mcmc_reference_setting():
    """Name of the first MCMC setting with beta = 1 (the true posterior)."""
    return next(n for n, s in config["mcmc"]["settings"].items() if s["beta"] == 1)


MCMC_TARGETS = [
    *(f"{chunk}{ext}" for ext in (".parquet", ".npz", ".diagnostics.csv") for chunk in MCMC_CHUNKS),
    f"{RUN}/metrics/mcmc.csv",
]


rule mcmc:
    wildcard_constraints:
        setting="|".join(MCMC_SETTINGS),
        split="|".join(MCMC_SETS),
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

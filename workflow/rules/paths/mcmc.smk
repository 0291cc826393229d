# Paths, config slices and targets of the mcmc stage, for its rules in ../mcmc.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.
from diffloc.mcmc.plan import (
    chunk_config,
    chunk_ids,
    chunk_mem_mb,
    chunk_runtime,
    chunk_shards,
    figure_spec,
    mcmc_splits,
)

MCMC_SETTINGS = list(config["mcmc"]["settings"])
MCMC_SPLITS = mcmc_splits(config)
MCMC = f"{RUN}/mcmc/{{setting}}/{{split}}/{{chunk}}"  # + .parquet | .npz | .diagnostics.csv
MCMC_CHUNKS = [
    MCMC.format(setting=setting, split=split, chunk=chunk)
    for setting in MCMC_SETTINGS
    for split in MCMC_SPLITS
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

# Paths, config slices and targets of the localize stage, for its rules in ../localize.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.

LOCALIZE_SPLITS = ["test", *ISOLATED_SPLITS]


def kde_inputs(wildcards):
    """The KDEs a localisation job reads: phi's yhat or the true y0 in the data shards."""
    if wildcards.source == "phi":
        return yhat_files(wildcards.split)
    return shard_files(wildcards.split, "npz")


LOCALIZE_TARGETS = [
    f"{METRICS}/localization.csv",
    f"{METRICS}/phi_targets.csv",
    f"{METRICS}/photon_sweep.csv",
]

# Paths, config slices and targets of the localize stage, for its rules in ../localize.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.
# Every localisation output is per KDE width ({sigma_y}, as in the phi stage).

LOCALIZE_SPLITS = AXIS_SPLITS


def kde_inputs(source, split, sigma_y):
    """The KDEs a localisation of `split` reads: phi's yhat at width tag `sigma_y`, or (oracle)
    the data shards (their true KDEs, re-rendered from the emitter tables at another width)."""
    if source == "phi":
        return yhat_files(split, sigma_y)
    return shard_files(split, "npz")


def localization_metrics_files():
    """Every per-width, per-source, per-split localisation metrics file."""
    return [
        f"{METRICS}/localization/{sy}/{source}/{split}.csv"
        for sy in SIGMA_Y_AXIS
        for source in ("phi", "oracle")
        for split in LOCALIZE_SPLITS
    ]


LOCALIZE_TARGETS = [
    f"{METRICS}/localization.csv",
    f"{METRICS}/phi_targets.csv",
    f"{METRICS}/photon_sweep.csv",
]

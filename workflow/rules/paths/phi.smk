# Paths, config slices and targets of the phi stage, for its rules in ../phi.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.

YHAT_SPLITS = [s for s in SPLITS if s != "phi_train"]


def yhat_files(split):
    """phi's yhat file of every shard of `split`."""
    return [f"{RUN}/yhat/{split}/{shard}.npz" for shard in SPLITS[split].shard_ids()]


def split_head_yhat(split, n):
    """phi's yhat files of `split` holding its first n images, in order."""
    return yhat_files(split)[: -(-n // SPLITS[split].shard_size)]


PHI_TARGETS = [f for split in YHAT_SPLITS for f in yhat_files(split)]

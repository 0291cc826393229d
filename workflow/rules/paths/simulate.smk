# Paths, config slices and targets of the simulate stage, for its rules in ../simulate.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.

from diffloc.config import shard_config


def simulated_shards():
    """Both files of every shard of every split."""
    return [f for split in SPLITS for ext in ("npz", "parquet") for f in shard_files(split, ext)]


def shard_params(wildcards):
    """The config slice one shard depends on (its change reruns exactly that shard)."""
    return shard_config(config, wildcards.split, int(wildcards.shard))


def shard_mem_mb(wildcards):
    """Memory for one simulation job: ~0.2 MB per image plus the interpreter, in MB."""
    return 600 + SPLITS[wildcards.split].shard_size // 4


SIMULATE_TARGETS = simulated_shards()

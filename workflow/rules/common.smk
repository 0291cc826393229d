# Helpers shared by the rules: split and shard enumeration from the validated config.
from diffloc.config import shard_config, splits

SPLITS = splits(config)
# Final outputs of the study; each rules file appends its own, `rule all` builds them all.
STUDY_TARGETS = []


wildcard_constraints:
    split="|".join(SPLITS),
    shard=r"\d{4}",


def shard_files(split, ext):
    """Every shard file of `split` with extension `ext` (npz | parquet)."""
    return [f"{RUN}/data/{split}/{shard}.{ext}" for shard in SPLITS[split].shard_ids()]


def simulated_shards():
    """Both files of every shard of every split."""
    return [f for split in SPLITS for ext in ("npz", "parquet") for f in shard_files(split, ext)]


def shard_params(wildcards):
    """The config slice one shard depends on (its change reruns exactly that shard)."""
    return shard_config(config, wildcards.split, int(wildcards.shard))


def shard_mem_mb(wildcards):
    """Memory for one simulation job: ~0.2 MB per image plus the interpreter, in MB."""
    return 600 + SPLITS[wildcards.split].shard_size // 4

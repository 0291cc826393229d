# Simulation: one job per shard of every split (dense scenes and isolated emitters).

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


rule simulate:
    output:
        npz=f"{RUN}/data/{{split}}/{{shard}}.npz",
        parquet=f"{RUN}/data/{{split}}/{{shard}}.parquet",
    params:
        shard=shard_params,
    log:
        f"{RUN}/logs/simulate/{{split}}/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/simulate/{{split}}/{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=shard_mem_mb,
        runtime=10,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/simulate_shard.py"

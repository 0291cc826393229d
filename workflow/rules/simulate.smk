# Simulation: one job per shard of every split (dense scenes and isolated emitters).


include: "paths/simulate.smk"


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

# phi: train the KDE network on phi_train, then predict yhat for every split later stages use.


include: "paths/phi.smk"


rule train_phi:
    input:
        train=shard_files("phi_train", "npz"),
        val=shard_files("val", "npz"),
    output:
        model=f"{RUN}/models/phi.pt",
        log_csv=report_item(f"{RUN}/logs/phi_train.csv", "phi_train", "Training"),
    params:
        phi=config["phi"],
        seed=config["seed"],
        upsample=config["geometry"]["upsample"],
        checkpoint=f"{RUN}/models/phi.ckpt",
    log:
        f"{RUN}/logs/train_phi.log",
    benchmark:
        f"{RUN}/benchmarks/train_phi.tsv"
    threads: config["phi"]["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/train_phi.py"


rule infer_phi:
    input:
        model=f"{RUN}/models/phi.pt",
        npz=f"{RUN}/data/{{split}}/{{shard}}.npz",
    output:
        yhat=f"{RUN}/yhat/{{split}}/{{shard}}.npz",
    params:
        batch_size=config["phi"]["infer_batch_size"],
        device=config["phi"]["train"]["device"],
        threads=config["phi"]["infer_threads"],
    wildcard_constraints:
        split="|".join(YHAT_SPLITS),
    log:
        f"{RUN}/logs/infer_phi/{{split}}/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/infer_phi/{{split}}/{{shard}}.tsv"
    threads: config["phi"]["infer_threads"]
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/infer_phi.py"

# phi: train the KDE network on phi_train at each KDE width of localize.sigma_y_axis, then
# predict yhat for every split later stages use.


include: "paths/phi.smk"


rule train_phi:
    input:
        train=shard_files("phi_train", "npz"),
        train_emitters=shard_files("phi_train", "parquet"),
        val=shard_files("val", "npz"),
        val_emitters=shard_files("val", "parquet"),
    output:
        model=f"{RUN}/models/{{sigma_y}}/phi.pt",
        log_csv=report_item(
            f"{RUN}/logs/{{sigma_y}}/phi_train.csv",
            "phi_train",
            "Training",
            targets=[f"{RUN}/logs/{sy}/phi_train.csv" for sy in SIGMA_Y_AXIS],
        ),
    params:
        phi=config["phi"],
        seed=config["seed"],
        upsample=config["geometry"]["upsample"],
        sigma_y=lambda wc: SIGMA_Y_AXIS[wc.sigma_y],
        ceiling=kde_ceiling(config["kde"]),
        checkpoint=f"{RUN}/models/{{sigma_y}}/phi.ckpt",
    wildcard_constraints:
        sigma_y=SIGMA_Y_PATTERN,
    log:
        f"{RUN}/logs/{{sigma_y}}/train_phi.log",
    benchmark:
        f"{RUN}/benchmarks/{{sigma_y}}/train_phi.tsv"
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
        model=f"{RUN}/models/{{sigma_y}}/phi.pt",
        npz=[f for s in YHAT_SPLITS for f in shard_files(s, "npz")],
    output:
        yhat=[f for s in YHAT_SPLITS for f in yhat_files(s, "{sigma_y}")],
    params:
        batch_size=config["phi"]["infer_batch_size"],
        device=config["phi"]["train"]["device"],
        threads=config["phi"]["infer_threads"],
    wildcard_constraints:
        sigma_y=SIGMA_Y_PATTERN,
    log:
        f"{RUN}/logs/{{sigma_y}}/infer_phi.log",
    benchmark:
        f"{RUN}/benchmarks/{{sigma_y}}/infer_phi.tsv"
    threads: config["phi"]["infer_threads"]
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/infer_phi.py"

# phi: train the KDE network on phi_train, then predict yhat for every split later stages use.

YHAT_SPLITS = [s for s in SPLITS if s != "phi_train"]


def yhat_files(split):
    """phi's yhat file of every shard of `split`."""
    return [f"{RUN}/yhat/{split}/{shard}.npz" for shard in SPLITS[split].shard_ids()]


def split_head_yhat(split, n):
    """phi's yhat files of `split` holding its first n images, in order."""
    return yhat_files(split)[: -(-n // SPLITS[split].shard_size)]


PHI_TARGETS = [f for split in YHAT_SPLITS for f in yhat_files(split)]


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
    threads: 4
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
        f"{RUN}/yhat/{{split}}/{{shard}}.npz",
    params:
        batch_size=config["phi"]["infer_batch_size"],
        device=config["phi"]["train"]["device"],
    wildcard_constraints:
        split="|".join(YHAT_SPLITS),
    log:
        f"{RUN}/logs/infer_phi/{{split}}/{{shard}}.log",
    benchmark:
        f"{RUN}/benchmarks/infer_phi/{{split}}/{{shard}}.tsv"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/infer_phi.py"

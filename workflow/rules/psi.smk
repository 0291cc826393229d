# psi: train the conditional diffusion model on phi's output for psi_train, then sample
# posteriors for chunks of test images, of the isolated-emitter splits and of validation images.


include: "paths/psi.smk"


# table jobs of a few seconds (pandas on small files): run where Snakemake runs, not via SLURM
localrules:
    psi_metrics,


rule train_psi:
    input:
        train_yhat=yhat_files("psi_train"),
        train_npz=shard_files("psi_train", "npz"),
        val_yhat=yhat_files("val"),
        val_npz=shard_files("val", "npz"),
    output:
        model=f"{RUN}/models/seed_{{psi_seed}}/psi.pt",
        log_csv=report_item(
            f"{RUN}/logs/seed_{{psi_seed}}/psi_train.csv",
            "psi_train",
            "Training",
            targets=[f"{RUN}/logs/seed_{d}/psi_train.csv" for d in PSI_SEEDS],
        ),
    params:
        psi=psi_training_config(),
        seed=lambda wc: psi_seed_value(wc.psi_seed),
        checkpoint=f"{RUN}/models/seed_{{psi_seed}}/psi.ckpt",
    wildcard_constraints:
        psi_seed=r"\d+",
    log:
        f"{RUN}/logs/seed_{{psi_seed}}/train_psi.log",
    benchmark:
        f"{RUN}/benchmarks/seed_{{psi_seed}}/train_psi.tsv"
    threads: config["diffusion"]["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=240,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/train_psi.py"


rule posterior:
    input:
        model=lambda wc: psi_model(wc.psi_seed),
        yhat=lambda wc: yhat_files(wc.split),
        npz=lambda wc: condition_shards(wc.split),
    output:
        posterior=f"{RUN}/posterior/seed_{{psi_seed}}/{{split}}/{{chunk}}.npz",
    params:
        condition=CONDITION,
        images=chunk_images,
        sampler=config["diffusion"]["sampler"],
        summary=config["diffusion"]["summary"],
        device=config["diffusion"]["train"]["device"],
        seed=lambda wc: psi_seed_value(wc.psi_seed),
    wildcard_constraints:
        psi_seed=r"\d+",
        split="|".join(POSTERIOR_SPLITS),
        chunk=r"\d{4}",
    log:
        f"{RUN}/logs/seed_{{psi_seed}}/posterior/{{split}}/{{chunk}}.log",
    benchmark:
        f"{RUN}/benchmarks/seed_{{psi_seed}}/posterior/{{split}}/{{chunk}}.tsv"
    threads: config["diffusion"]["sampler"]["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/posterior_chunk.py"


rule psi_metrics:
    input:
        posterior=lambda wc: posterior_files("test", wc.psi_seed),
        npz=shard_files("test", "npz"),
        yhat=yhat_files("test"),
    output:
        metrics=f"{METRICS}/seed_{{psi_seed}}/psi.csv",
    params:
        floor=config["calibration"]["support_floor"],
        max_mse_ratio=POSTERIOR["max_mse_ratio"],
    wildcard_constraints:
        psi_seed=r"\d+",
    log:
        f"{RUN}/logs/seed_{{psi_seed}}/psi_metrics.log",
    benchmark:
        f"{RUN}/benchmarks/seed_{{psi_seed}}/psi_metrics.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/psi_metrics.py"

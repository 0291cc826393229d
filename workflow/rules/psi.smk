# psi: train the conditional diffusion model on phi's output for psi_train, then sample
# posteriors for chunks of test images, of the isolated-emitter splits and of validation images.


include: "paths/psi.smk"


rule train_psi:
    input:
        train_yhat=yhat_files("psi_train"),
        train_npz=shard_files("psi_train", "npz"),
        val_yhat=yhat_files("val"),
        val_npz=shard_files("val", "npz"),
    output:
        model=f"{RUN}/models/psi.pt",
        log_csv=report_item(f"{RUN}/logs/psi_train.csv", "psi_train", "Training"),
    params:
        psi=psi_training_config(),
        seed=config["seed"],
        checkpoint=f"{RUN}/models/psi.ckpt",
    log:
        f"{RUN}/logs/train_psi.log",
    benchmark:
        f"{RUN}/benchmarks/train_psi.tsv"
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
        model=f"{RUN}/models/psi.pt",
        yhat=lambda wc: yhat_files(wc.split),
    output:
        posterior=f"{RUN}/posterior/{{split}}/{{chunk}}.npz",
    params:
        images=chunk_images,
        sampler=config["diffusion"]["sampler"],
        summary=config["diffusion"]["summary"],
        device=config["diffusion"]["train"]["device"],
        seed=config["seed"],
    wildcard_constraints:
        split="|".join(POSTERIOR_SPLITS),
        chunk=r"\d{4}",
    log:
        f"{RUN}/logs/posterior/{{split}}/{{chunk}}.log",
    benchmark:
        f"{RUN}/benchmarks/posterior/{{split}}/{{chunk}}.tsv"
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
        posterior=posterior_files("test"),
        npz=shard_files("test", "npz"),
        yhat=yhat_files("test"),
    output:
        metrics=report_item(f"{METRICS}/psi.csv", "psi_metrics", "Metrics"),
    params:
        floor=config["calibration"]["support_floor"],
        max_mse_ratio=POSTERIOR["max_mse_ratio"],
    log:
        f"{RUN}/logs/psi_metrics.log",
    benchmark:
        f"{RUN}/benchmarks/psi_metrics.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/psi_metrics.py"

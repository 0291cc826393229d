# psi: train the conditional diffusion model on phi's output for psi_train, then sample
# posteriors for chunks of test images and of the isolated-emitter sets.

STUDY_TARGETS += [f for s in POSTERIOR_SETS for f in posterior_files(s)]


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
    threads: 4
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
        yhat=lambda wc: yhat_files(wc.set),
    output:
        f"{RUN}/posterior/{{set}}/{{chunk}}.npz",
    params:
        images=chunk_images,
        sampler=config["diffusion"]["sampler"],
        summary=config["diffusion"]["summary"],
        device=config["diffusion"]["train"]["device"],
        seed=config["seed"],
    wildcard_constraints:
        set="|".join(POSTERIOR_SETS),
        chunk=r"\d{4}",
    log:
        f"{RUN}/logs/posterior/{{set}}/{{chunk}}.log",
    benchmark:
        f"{RUN}/benchmarks/posterior/{{set}}/{{chunk}}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/posterior_chunk.py"


rule fig3:
    input:
        model=f"{RUN}/models/psi.pt",
        npz=f"{RUN}/data/test/0000.npz",
        yhat=f"{RUN}/yhat/test/0000.npz",
    output:
        png=report_item(
            f"{RUN}/figures/fig3.png",
            "fig3",
            "Figures",
            labels={"figure": "3", "shows": "conditional diffusion pipeline"},
        ),
        pdf=f"{RUN}/figures/fig3.pdf",
    params:
        image=0,
        sampler=config["diffusion"]["sampler"],
        seed=config["seed"],
    log:
        f"{RUN}/logs/fig3.log",
    benchmark:
        f"{RUN}/benchmarks/fig3.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/fig3.py"


rule fig4:
    input:
        posterior=posterior_files("test"),
        npz=shard_files("test", "npz"),
        yhat=yhat_files("test"),
    output:
        png=report_item(
            f"{RUN}/figures/fig4.png",
            "fig4",
            "Figures",
            labels={"figure": "4", "shows": "posterior mean and std, first test images"},
        ),
        pdf=f"{RUN}/figures/fig4.pdf",
    params:
        n=POSTERIOR["figure_images"],
    log:
        f"{RUN}/logs/fig4.log",
    benchmark:
        f"{RUN}/benchmarks/fig4.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/fig4.py"


STUDY_TARGETS += [f"{RUN}/figures/fig{i}.{ext}" for i in (3, 4) for ext in ("png", "pdf")]


rule psi_metrics:
    input:
        posterior=posterior_files("test"),
        npz=shard_files("test", "npz"),
        yhat=yhat_files("test"),
    output:
        report_item(f"{METRICS}/psi.csv", "psi_metrics", "Metrics"),
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


STUDY_TARGETS += [f"{METRICS}/psi.csv"]

# Figures: one rule per figure, PNG + PDF under figures/, each registered for the HTML report;
# each script is an adapter for the job of the same name in diffloc.figures.jobs.
# Included after the stages whose outputs and names (FIG2, ABLATION, ...) the figures use.

FIGURES = f"{RUN}/figures"


rule fig1:
    input:
        npz=f"{RUN}/data/test/0000.npz",
        parquet=f"{RUN}/data/test/0000.parquet",
    output:
        png=report_item(
            f"{FIGURES}/fig1.png",
            "fig1",
            "Figures",
            labels={"figure": "1", "shows": "generative model"},
        ),
        pdf=f"{FIGURES}/fig1.pdf",
    params:
        image=0,
    log:
        f"{RUN}/logs/fig1.log",
    benchmark:
        f"{RUN}/benchmarks/fig1.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/fig1.py"


rule fig2:
    input:
        npz=f"{RUN}/data/{FIG2['set']}/{FIG2['shard']}.npz",
        parquet=f"{RUN}/data/{FIG2['set']}/{FIG2['shard']}.parquet",
        chains=[f"{chunk}.parquet" for chunk in FIG2_CHUNKS],
        maps=[f"{chunk}.npz" for chunk in FIG2_CHUNKS],
        diagnostics=[f"{chunk}.diagnostics.csv" for chunk in FIG2_CHUNKS],
    output:
        png=report_item(
            f"{FIGURES}/fig2.png",
            "fig2",
            "Figures",
            labels={"figure": "2", "shows": "MCMC posterior"},
        ),
        pdf=f"{FIGURES}/fig2.pdf",
    params:
        figure=FIG2,
        settings=config["mcmc"]["settings"],
        geometry=config["geometry"],
    log:
        f"{RUN}/logs/fig2.log",
    benchmark:
        f"{RUN}/benchmarks/fig2.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/fig2.py"


rule fig3:
    input:
        model=psi_model(0),
        npz=f"{RUN}/data/test/0000.npz",
        yhat=yhat_files("test")[0],
    output:
        png=report_item(
            f"{FIGURES}/fig3.png",
            "fig3",
            "Figures",
            labels={"figure": "3", "shows": "conditional diffusion pipeline"},
        ),
        pdf=f"{FIGURES}/fig3.pdf",
    params:
        image=0,
        sampler=config["diffusion"]["sampler"],
        seed=psi_seed_value(0),
    log:
        f"{RUN}/logs/fig3.log",
    benchmark:
        f"{RUN}/benchmarks/fig3.tsv"
    threads: config["diffusion"]["sampler"]["threads"]
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
            f"{FIGURES}/fig4.png",
            "fig4",
            "Figures",
            labels={"figure": "4", "shows": "posterior mean and std, first test images"},
        ),
        pdf=f"{FIGURES}/fig4.pdf",
    params:
        n_images=POSTERIOR["figure_images"],
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


rule fig5:
    input:
        sweep=f"{METRICS}/photon_sweep.csv",
        localization=f"{METRICS}/localization.csv",
    output:
        png=report_item(
            f"{FIGURES}/fig5.png",
            "fig5",
            "Figures",
            labels={"figure": "5", "shows": "localisation vs CRLB and KDE width"},
        ),
        pdf=f"{FIGURES}/fig5.pdf",
    log:
        f"{RUN}/logs/fig5.log",
    benchmark:
        f"{RUN}/benchmarks/fig5.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/fig5.py"


rule fig6:
    input:
        per_image=f"{CALIBRATION_DIR}/mcmc_per_image.csv",
        coverage=f"{METRICS}/calibration_coverage.csv",
        reliability=f"{CALIBRATION_DIR}/reliability.csv",
        z_hist=f"{CALIBRATION_DIR}/z_histogram.csv",
    output:
        png=report_item(
            f"{FIGURES}/fig6.png",
            "fig6",
            "Figures",
            labels={"figure": "6", "shows": "calibration of psi's uncertainty"},
        ),
        pdf=f"{FIGURES}/fig6.pdf",
    log:
        f"{RUN}/logs/fig6.log",
    benchmark:
        f"{RUN}/benchmarks/fig6.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/fig6.py"


rule fig7:
    input:
        ablation=f"{METRICS}/calibration_ablation.csv",
        recommendation=f"{METRICS}/calibration_recommendation.csv",
        timing=f"{RUN}/benchmarks/calibration_ablation_seconds.csv",
    output:
        png=report_item(
            f"{FIGURES}/fig7.png",
            "fig7",
            "Figures",
            labels={"figure": "7", "shows": "sampler ablation: calibration vs cost"},
        ),
        pdf=f"{FIGURES}/fig7.pdf",
    params:
        max_coverage_error=ABLATION["max_coverage_error"],
    log:
        f"{RUN}/logs/fig7.log",
    benchmark:
        f"{RUN}/benchmarks/fig7.tsv"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/fig7.py"


FIGURE_TARGETS = [f"{FIGURES}/fig{i}.{ext}" for i in range(1, 8) for ext in ("png", "pdf")]

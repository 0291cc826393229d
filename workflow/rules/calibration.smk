# Calibration of psi's uncertainty: diffusion vs MCMC std maps of isolated emitters,
# coverage / z-scores / CRPS on dense test images (with a validation-fitted recalibration and
# phi + constant sigma as a baseline), localisation uncertainty from detections on every
# posterior sample, the sampler ablation and the targets (Figures 6 and 7: figures.smk).
# Needs mcmc.smk (MCMC_SETTINGS) and psi.smk (posterior files, incl. posterior/val/). Each
# script is an adapter for the job of the same name in diffloc.calibration.jobs; files grouped
# per split (or per MCMC setting and split) arrive as `grouped_inputs` (common.smk).


include: "paths/calibration.smk"


# table jobs of a few seconds (pandas on small files): run where Snakemake runs, not via SLURM
localrules:
    calibration_mcmc,
    calibration_coverage,
    calibration_ablation,
    gather_seeds,
    calibration_targets,


rule calibration_mcmc:
    input:
        unpack(
            lambda wc: grouped_inputs(
                posterior={s: posterior_files(s, wc.psi_seed) for s in ISOLATED_SPLITS},
                npz={s: split_head_files(s, CAL_ISOLATED_N, "npz") for s in ISOLATED_SPLITS},
                maps={
                    m: {s: mcmc_split_maps(m, s) for s in ISOLATED_SPLITS} for m in MCMC_SETTINGS
                },
            )
        ),
    output:
        csv=f"{METRICS}/seed_{{psi_seed}}/calibration_mcmc.csv",
        per_image=f"{CALIBRATION_DIR}/seed_{{psi_seed}}/mcmc_per_image.csv",
    params:
        photons={s: split_photons(s) for s in ISOLATED_SPLITS},
        betas={m: config["mcmc"]["settings"][m]["beta"] for m in MCMC_SETTINGS},
        n_images=CAL_ISOLATED_N,
        floor=CALIBRATION["support_floor"],
        bootstrap=CALIBRATION["bootstrap"],
        seed=config["seed"],
    wildcard_constraints:
        psi_seed=r"\d+",
    log:
        f"{RUN}/logs/seed_{{psi_seed}}/calibration/mcmc.log",
    benchmark:
        f"{RUN}/benchmarks/seed_{{psi_seed}}/calibration/mcmc.tsv"
    threads: 1
    resources:
        mem_mb=calibration_mem_mb(len(ISOLATED_SPLITS) * CAL_ISOLATED_N),
        runtime=10,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/calibration_mcmc.py"


rule calibration_coverage:
    input:
        unpack(
            lambda wc: grouped_inputs(
                posterior={
                    "test": posterior_files("test", wc.psi_seed),
                    "val": posterior_files("val", wc.psi_seed),
                },
                npz={
                    "test": split_head_files("test", CAL_TEST_N, "npz"),
                    "val": split_head_files("val", CAL_VAL_N, "npz"),
                },
                yhat={
                    "test": split_head_yhat("test", CAL_TEST_N),
                    "val": split_head_yhat("val", CAL_VAL_N),
                },
            )
        ),
    output:
        csv=f"{METRICS}/seed_{{psi_seed}}/calibration_coverage.csv",
        reliability=f"{CALIBRATION_DIR}/seed_{{psi_seed}}/reliability.csv",
        z_hist=f"{CALIBRATION_DIR}/seed_{{psi_seed}}/z_histogram.csv",
    params:
        n_test=CAL_TEST_N,
        n_val=CAL_VAL_N,
        levels=CALIBRATION["levels"],
        recalibration_level=CALIBRATION["recalibration_level"],
        floor=CALIBRATION["support_floor"],
        bootstrap=CALIBRATION["bootstrap"],
        z_histogram=CALIBRATION["z_histogram"],
        seed=config["seed"],
    wildcard_constraints:
        psi_seed=r"\d+",
    log:
        f"{RUN}/logs/seed_{{psi_seed}}/calibration/coverage.log",
    benchmark:
        f"{RUN}/benchmarks/seed_{{psi_seed}}/calibration/coverage.tsv"
    threads: 1
    resources:
        mem_mb=calibration_mem_mb(CAL_TEST_N + CAL_VAL_N),
        runtime=30,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/calibration_coverage.py"


rule calibration_localization:
    input:
        unpack(
            lambda wc: grouped_inputs(
                posterior={s: posterior_files(s, wc.psi_seed) for s in CAL_LOCALIZATION_SPLITS},
                npz={
                    s: split_head_files(s, POSTERIOR_SPLITS[s], "npz")
                    for s in CAL_LOCALIZATION_SPLITS
                },
                parquet={
                    s: split_head_files(s, POSTERIOR_SPLITS[s], "parquet")
                    for s in CAL_LOCALIZATION_SPLITS
                },
                # the MCMC (beta = 1) posterior std of the isolated emitters
                diagnostics={
                    s: [
                        f"{RUN}/mcmc/{CAL_MCMC_REF}/{s}/{c}.diagnostics.csv"
                        for c in chunk_ids(config)
                    ]
                    for s in ISOLATED_SPLITS
                },
            )
        ),
    output:
        csv=f"{METRICS}/seed_{{psi_seed}}/calibration_localization.csv",
        tracks=f"{CALIBRATION_DIR}/seed_{{psi_seed}}/localization_tracks.parquet",
    params:
        photons={s: split_photons(s) for s in CAL_LOCALIZATION_SPLITS},
        n_images={s: POSTERIOR_SPLITS[s] for s in CAL_LOCALIZATION_SPLITS},
        config={**{k: config[k] for k in ("localize", "geometry", "psf", "mcmc")}, "kde": kde_definition(config)},
        levels=CALIBRATION["localization"]["levels"],
        samples=CALIBRATION["localization"]["samples"],
    wildcard_constraints:
        psi_seed=r"\d+",
    log:
        f"{RUN}/logs/seed_{{psi_seed}}/calibration/localization.log",
    benchmark:
        f"{RUN}/benchmarks/seed_{{psi_seed}}/calibration/localization.tsv"
    threads: 1
    resources:
        mem_mb=calibration_mem_mb(max(CAL_TEST_N, CAL_ISOLATED_N)),
        runtime=30,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/calibration_localization.py"


rule ablation:
    input:
        model=psi_model(0),
        npz=split_head_files("test", ABLATION["test_images"], "npz"),
        yhat=split_head_yhat("test", ABLATION["test_images"]),
        iso_npz=split_head_files(ABLATION_SPLIT, ABLATION["isolated_images"], "npz"),
        iso_yhat=split_head_yhat(ABLATION_SPLIT, ABLATION["isolated_images"]),
        maps=mcmc_split_maps(CAL_MCMC_REF, ABLATION_SPLIT) if ABLATION["isolated_images"] else [],
    output:
        csv=f"{ABLATION_DIR}/{{sampler}}.csv",
        timing=f"{ABLATION_DIR}/{{sampler}}.timing.csv",
    params:
        condition=CONDITION,
        ablation=ABLATION,
        reference=config["diffusion"]["sampler"],
        levels=CALIBRATION["levels"],
        quantile_method=config["diffusion"]["summary"]["quantile_method"],
        floor=CALIBRATION["support_floor"],
        device=config["diffusion"]["train"]["device"],
        seed=psi_seed_value(0),
    wildcard_constraints:
        sampler="|".join(ablation_kinds()),
    log:
        f"{RUN}/logs/calibration/ablation/{{sampler}}.log",
    benchmark:
        f"{RUN}/benchmarks/calibration/ablation/{{sampler}}.tsv"
    threads: ABLATION["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/ablation.py"


rule calibration_ablation:
    input:
        metrics=[f"{ABLATION_DIR}/{k}.csv" for k in ablation_kinds()],
        timings=[f"{ABLATION_DIR}/{k}.timing.csv" for k in ablation_kinds()],
    output:
        csv=report_item(
            f"{METRICS}/calibration_ablation.csv", "calibration_ablation", "Metrics"
        ),
        recommendation=report_item(
            f"{METRICS}/calibration_recommendation.csv", "calibration_recommendation", "Metrics"
        ),
        timing=report_item(
            f"{RUN}/benchmarks/calibration_ablation_seconds.csv",
            "calibration_ablation_seconds",
            "Timing (machine-dependent)",
        ),
    params:
        max_coverage_error=ABLATION["max_coverage_error"],
        ratio_bounds=CALIBRATION["targets"]["std_ratio"],
    log:
        f"{RUN}/logs/calibration/ablation_summary.log",
    benchmark:
        f"{RUN}/benchmarks/calibration/ablation_summary.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/calibration_ablation.py"


rule gather_seeds:
    input:
        tables=[f for _, per_seed in SEED_TABLES for f in per_seed],
    output:
        csv=[
            report_item(gathered, "seed_tables", "Metrics") if gathered.startswith(METRICS) else gathered
            for gathered, _ in SEED_TABLES
        ],
    params:
        seeds=PSI_SEEDS,
    log:
        f"{RUN}/logs/gather_seeds.log",
    benchmark:
        f"{RUN}/benchmarks/gather_seeds.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/gather_seeds.py"


rule calibration_targets:
    input:
        mcmc=f"{METRICS}/calibration_mcmc.csv",
        coverage=f"{METRICS}/calibration_coverage.csv",
        psi=f"{METRICS}/psi.csv",
    output:
        csv=report_item(f"{METRICS}/calibration_targets.csv", "calibration_targets", "Metrics"),
    params:
        targets=CALIBRATION["targets"],
        max_mse_ratio=POSTERIOR["max_mse_ratio"],
    log:
        f"{RUN}/logs/calibration/targets.log",
    benchmark:
        f"{RUN}/benchmarks/calibration/targets.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/calibration_targets.py"

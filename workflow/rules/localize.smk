# phi's evaluation at every KDE width of localize.sigma_y_axis: detection (localize.detector)
# on yhat and (oracle) on the true y0, the photon sweep against the Cramer-Rao bound and phi's
# target checks (Figure 5: figures.smk).


include: "paths/localize.smk"


# table jobs of a few seconds (pandas on small files): run where Snakemake runs, not via SLURM
localrules:
    photon_sweep,
    phi_targets,


rule localize:
    input:
        unpack(
            lambda wc: grouped_inputs(
                kde={s: kde_inputs(wc.source, s, wc.sigma_y) for s in LOCALIZE_SPLITS},
                npz={s: shard_files(s, "npz") for s in LOCALIZE_SPLITS},
                parquet={s: shard_files(s, "parquet") for s in LOCALIZE_SPLITS},
            )
        ),
    output:
        tables=[f"{RUN}/localizations/{{sigma_y}}/{{source}}/{s}.parquet" for s in LOCALIZE_SPLITS],
        metrics=[f"{METRICS}/localization/{{sigma_y}}/{{source}}/{s}.csv" for s in LOCALIZE_SPLITS],
    params:
        config={**{k: config[k] for k in ("localize", "geometry")}, "kde": kde_definition(config)},
        splits=LOCALIZE_SPLITS,
        photons={s: split_photons(s) for s in LOCALIZE_SPLITS},
        sigma_y=lambda wc: SIGMA_Y_AXIS[wc.sigma_y],
    wildcard_constraints:
        sigma_y=SIGMA_Y_PATTERN,
        source="phi|oracle",
    log:
        f"{RUN}/logs/{{sigma_y}}/localize/{{source}}.log",
    benchmark:
        f"{RUN}/benchmarks/{{sigma_y}}/localize/{{source}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/localize.py"


rule photon_sweep:
    input:
        unpack(
            lambda wc: grouped_inputs(
                tables={
                    s: [f"{RUN}/localizations/{wc.sigma_y}/phi/{s}.parquet"]
                    for s in ISOLATED_SPLITS
                },
                npz={s: shard_files(s, "npz") for s in ISOLATED_SPLITS},
                parquet={s: shard_files(s, "parquet") for s in ISOLATED_SPLITS},
            )
        ),
    output:
        sweep=f"{METRICS}/photon_sweep/{{sigma_y}}.csv",
    params:
        photons={s: SPLITS[s].photons["value"] for s in ISOLATED_SPLITS},
        sigma_x=config["psf"]["sigma_x"],
        background=config["psf"]["background"],
        pixel_size_nm=config["geometry"]["pixel_size_nm"],
        sigma_y=lambda wc: SIGMA_Y_AXIS[wc.sigma_y],
        detector=config["localize"]["detector"],
    wildcard_constraints:
        sigma_y=SIGMA_Y_PATTERN,
    log:
        f"{RUN}/logs/{{sigma_y}}/photon_sweep.log",
    benchmark:
        f"{RUN}/benchmarks/{{sigma_y}}/photon_sweep.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/photon_sweep.py"


rule phi_targets:
    input:
        metrics=localization_metrics_files(),
        sweeps=[f"{METRICS}/photon_sweep/{sy}.csv" for sy in SIGMA_Y_AXIS],
    output:
        localization=report_item(f"{METRICS}/localization.csv", "localization", "Metrics"),
        sweep=report_item(f"{METRICS}/photon_sweep.csv", "photon_sweep", "Metrics"),
        checks=report_item(f"{METRICS}/phi_targets.csv", "phi_targets", "Metrics"),
    params:
        targets=config["phi"]["targets"],
        split="test",  # phi's precision and recall targets are checked on the dense test split
    log:
        f"{RUN}/logs/phi_targets.log",
    benchmark:
        f"{RUN}/benchmarks/phi_targets.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/phi_targets.py"

# phi's evaluation: LoG localisation on yhat and (oracle) on the true y0, the photon sweep
# against the Cramer-Rao bound and phi's target checks (Figure 5: figures.smk).


include: "paths/localize.smk"


rule localize:
    input:
        kde=kde_inputs,
        npz=lambda wc: shard_files(wc.split, "npz"),
        parquet=lambda wc: shard_files(wc.split, "parquet"),
    output:
        table=f"{RUN}/localizations/{{source}}/{{split}}.parquet",
        metrics=f"{METRICS}/localization/{{source}}/{{split}}.csv",
    params:
        config={k: config[k] for k in ("localize", "kde", "geometry")},
        photons=lambda wc: split_photons(wc.split),
    wildcard_constraints:
        source="phi|oracle",
        split="|".join(LOCALIZE_SPLITS),
    log:
        f"{RUN}/logs/localize/{{source}}/{{split}}.log",
    benchmark:
        f"{RUN}/benchmarks/localize/{{source}}/{{split}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/localize_split.py"


rule photon_sweep:
    input:
        unpack(
            lambda wc: grouped_inputs(
                tables={s: [f"{RUN}/localizations/phi/{s}.parquet"] for s in ISOLATED_SPLITS},
                npz={s: shard_files(s, "npz") for s in ISOLATED_SPLITS},
                parquet={s: shard_files(s, "parquet") for s in ISOLATED_SPLITS},
            )
        ),
    output:
        sweep=report_item(f"{METRICS}/photon_sweep.csv", "photon_sweep", "Metrics"),
    params:
        photons={s: SPLITS[s].photons["value"] for s in ISOLATED_SPLITS},
        sigma_x=config["psf"]["sigma_x"],
        background=config["psf"]["background"],
        pixel_size_nm=config["geometry"]["pixel_size_nm"],
    log:
        f"{RUN}/logs/photon_sweep.log",
    benchmark:
        f"{RUN}/benchmarks/photon_sweep.tsv"
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
        metrics=[
            f"{METRICS}/localization/{source}/{split}.csv"
            for source in ("phi", "oracle")
            for split in LOCALIZE_SPLITS
        ],
        sweep=f"{METRICS}/photon_sweep.csv",
    output:
        localization=report_item(f"{METRICS}/localization.csv", "localization", "Metrics"),
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

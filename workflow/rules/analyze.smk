# analyze: a user's TIFF movie with this run's (or a given folder's) models -> localisations
# with per-emitter uncertainty, exports and renders. Not part of `rule all`: run
#   snakemake analyze_models --cores all --configfile config/analyze.yaml     # the models
#   snakemake analyze --cores all --configfile config/analyze.yaml --config analyze='{movie: m.tif}'


include: "paths/analyze.smk"


rule analysis_card:
    input:
        phi=phi_model(),
        psi=psi_model(0),
    output:
        card=ANALYZE_CARD,
    params:
        config=CARD_CONFIG,
    log:
        f"{RUN}/logs/analysis_card.log",
    benchmark:
        f"{RUN}/benchmarks/analysis_card.tsv"
    threads: config["analyze"]["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/analysis_card.py"


rule analyze_chunk:
    input:
        movie=analyze_movie,
        card=analyze_card_file,
    output:
        table=f"{ANALYZE_OUT}/chunks/{{chunk}}.parquet",
        sums=f"{ANALYZE_OUT}/chunks/{{chunk}}.npz",
    params:
        models=ANALYZE_MODELS,
        frames=analyze_frames,
        camera=ANALYZE["camera"],
        analyze={**ANALYZE, "threads": ANALYZE["job_threads"]},
        config=ANALYSIS_CONFIG,
        seed=config["seed"],
    wildcard_constraints:
        chunk=r"\d{4}",
    log:
        f"{ANALYZE_OUT}/logs/chunk_{{chunk}}.log",
    benchmark:
        f"{ANALYZE_OUT}/benchmarks/chunk_{{chunk}}.tsv"
    threads: ANALYZE["job_threads"]
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/analyze_chunk.py"


rule analyze_merge:
    input:
        tables=lambda wc: analyze_chunk_files("parquet"),
        sums=lambda wc: analyze_chunk_files("npz"),
    output:
        **ANALYZE_OUTPUTS,
    log:
        f"{ANALYZE_OUT}/logs/merge.log",
    benchmark:
        f"{ANALYZE_OUT}/benchmarks/merge.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/diffloc.yaml"
    script:
        "../scripts/analyze_merge.py"


# Targets: the movie's analysis; the models (and their card) an analysis needs.
rule analyze:
    input:
        list(ANALYZE_OUTPUTS.values()),


rule analyze_models:
    input:
        ANALYZE_CARD,

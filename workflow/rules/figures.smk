# Figures: one rule per figure, PNG + PDF under figures/, each registered for the HTML report.

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


STUDY_TARGETS += [f"{FIGURES}/fig1.png", f"{FIGURES}/fig1.pdf"]

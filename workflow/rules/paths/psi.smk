# Paths, config slices and targets of the psi stage, for its rules in ../psi.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.

POSTERIOR = config["posterior"]
# psi samples the first images of the test split, of every isolated split, and of the
# validation split (on which the calibration stage fits its recalibration)
POSTERIOR_SPLITS = {
    "test": POSTERIOR["test_images"],
    **{s: POSTERIOR["isolated_images"] for s in ISOLATED_SPLITS},
    "val": config["calibration"]["val_images"],
}


def posterior_files(split):
    """Posterior summary file of every chunk of `split`."""
    n, size = POSTERIOR_SPLITS[split], POSTERIOR["chunk_size"]
    return [f"{RUN}/posterior/{split}/{c:04d}.npz" for c in range(-(-n // size))]


def chunk_images(wildcards):
    """[start, stop) image range of a posterior chunk within its split."""
    size = POSTERIOR["chunk_size"]
    start = int(wildcards.chunk) * size
    return [start, min(start + size, POSTERIOR_SPLITS[wildcards.split])]


def psi_training_config():
    """What psi's training depends on: geometry and the diffusion section without the sampler
    and the summaries (changing how samples are drawn or summarised does not retrain psi)."""
    diffusion = {k: v for k, v in config["diffusion"].items() if k not in ("sampler", "summary")}
    return {"geometry": config["geometry"], "diffusion": diffusion}


PSI_TARGETS = [*(f for s in POSTERIOR_SPLITS for f in posterior_files(s)), f"{METRICS}/psi.csv"]

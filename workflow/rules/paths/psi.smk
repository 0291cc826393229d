# Paths, config slices and targets of the psi stage, for its rules in ../psi.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.

from diffloc import seeding

POSTERIOR = config["posterior"]
# psi samples the first images of the test split, of every isolated split, and of the
# validation split (on which the calibration stage fits its recalibration)
POSTERIOR_SPLITS = {
    "test": POSTERIOR["test_images"],
    **{s: POSTERIOR["isolated_images"] for s in ISOLATED_SPLITS},
    "val": config["calibration"]["val_images"],
}


# psi is trained and sampled once per training seed (calibration.seeds); seed 0's model and
# posteriors feed Figures 3-4, the sampler ablation and the analysis card
PSI_SEEDS = list(range(config["calibration"]["seeds"]))


def psi_seed_value(psi_seed):
    """The integer seed of psi seed `psi_seed` (training and sampling): its own stream of the
    study seed."""
    return seeding.torch_seed(config["seed"], "psi_seed", int(psi_seed))


def psi_model(psi_seed=0):
    """psi's weights trained with seed `psi_seed`."""
    return f"{RUN}/models/seed_{psi_seed}/psi.pt"


def posterior_files(split, psi_seed=0):
    """Posterior summary file of every chunk of `split`, sampled by psi seed `psi_seed`."""
    n, size = POSTERIOR_SPLITS[split], POSTERIOR["chunk_size"]
    return [f"{RUN}/posterior/seed_{psi_seed}/{split}/{c:04d}.npz" for c in range(-(-n // size))]


def chunk_images(wildcards):
    """[start, stop) image range of a posterior chunk within its split."""
    size = POSTERIOR["chunk_size"]
    start = int(wildcards.chunk) * size
    return [start, min(start + size, POSTERIOR_SPLITS[wildcards.split])]


CONDITION = config["diffusion"]["condition"]  # psi's input besides y_t: yhat | yhat_x


def condition_shards(split):
    """The data shards psi's condition reads for `split`: every one for yhat_x (camera images),
    none for yhat."""
    return shard_files(split, "npz") if CONDITION == "yhat_x" else []


def psi_training_config():
    """What psi's training depends on: geometry, the KDE's scale and the diffusion section without
    the sampler and the summaries (changing how samples are drawn or summarised does not retrain
    psi)."""
    diffusion = {k: v for k, v in config["diffusion"].items() if k not in ("sampler", "summary")}
    return {"geometry": config["geometry"], "kde": config["kde"], "diffusion": diffusion}


PSI_TARGETS = [
    *(f for d in PSI_SEEDS for s in POSTERIOR_SPLITS for f in posterior_files(s, d)),
    f"{METRICS}/psi.csv",
]

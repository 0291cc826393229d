# Helpers shared by the rules: split and shard enumeration from the validated config.
from pathlib import Path

from diffloc.config import shard_config, splits

SPLITS = splits(config)
# Final outputs of the study; each rules file appends its own, `rule all` builds them all.
STUDY_TARGETS = []
# Files the HTML report shows (rule `report`, report.smk); stages add theirs with report_item.
REPORT_TARGETS = []
REPORT_CAPTIONS = Path(workflow.basedir, "workflow", "report")
REPORT_HTML = f"{RUN}/report.html"


def report_item(path, caption, category, subcategory=None, labels=None, targets=None):
    """Flag output `path` for the HTML report, captioned by workflow/report/<caption>.rst.

    The report is built from `targets` (default: `path` itself, which then may not contain
    wildcards; pass the expanded files for an output pattern)."""
    rst = REPORT_CAPTIONS / f"{caption}.rst"
    if not rst.is_file():
        raise WorkflowError(f"report caption {rst} is missing (report_item for {path})")
    if targets is None:
        if "{" in path:
            raise WorkflowError(f"report_item({path!r}): a pattern needs its files as `targets`")
        targets = [path]
    REPORT_TARGETS.extend(targets)
    return report(
        path, caption=str(rst), category=category, subcategory=subcategory, labels=labels
    )


def report_inputs(wildcards):
    """Everything `rule all` builds except the report itself, and every registered report file."""
    return sorted({*STUDY_TARGETS, *REPORT_TARGETS} - {REPORT_HTML})


wildcard_constraints:
    split="|".join(SPLITS),
    shard=r"\d{4}",


def shard_files(split, ext):
    """Every shard file of `split` with extension `ext` (npz | parquet)."""
    return [f"{RUN}/data/{split}/{shard}.{ext}" for shard in SPLITS[split].shard_ids()]


def simulated_shards():
    """Both files of every shard of every split."""
    return [f for split in SPLITS for ext in ("npz", "parquet") for f in shard_files(split, ext)]


def shard_params(wildcards):
    """The config slice one shard depends on (its change reruns exactly that shard)."""
    return shard_config(config, wildcards.split, int(wildcards.shard))


def shard_mem_mb(wildcards):
    """Memory for one simulation job: ~0.2 MB per image plus the interpreter, in MB."""
    return 600 + SPLITS[wildcards.split].shard_size // 4


# phi's outputs and their evaluation (phi.smk, localize.smk)
YHAT_SPLITS = [s for s in SPLITS if s != "phi_train"]
LOCALIZE_SPLITS = ["test", *(s for s in SPLITS if s.startswith("isolated_"))]
ISOLATED = [s for s in LOCALIZE_SPLITS if s.startswith("isolated_")]
METRICS = f"{RUN}/metrics"


def yhat_files(split):
    """phi's yhat file of every shard of `split`."""
    return [f"{RUN}/yhat/{split}/{shard}.npz" for shard in SPLITS[split].shard_ids()]


def kde_inputs(wildcards):
    """The KDEs a localisation job reads: phi's yhat or the true y0 in the data shards."""
    if wildcards.source == "phi":
        return yhat_files(wildcards.split)
    return shard_files(wildcards.split, "npz")


def split_photons(split):
    """Photons per emitter of a split with a fixed photon count, else NaN."""
    spec = SPLITS[split].photons
    return float(spec["value"]) if spec["dist"] == "fixed" else float("nan")


# psi's posterior samples (psi.smk): the first images of the test split and of every isolated set
POSTERIOR = config["posterior"]
POSTERIOR_SETS = {"test": POSTERIOR["test_images"], **{s: POSTERIOR["isolated_images"] for s in ISOLATED}}


def posterior_files(set_name):
    """Posterior summary file of every chunk of `set_name`."""
    n, size = POSTERIOR_SETS[set_name], POSTERIOR["chunk_size"]
    return [f"{RUN}/posterior/{set_name}/{c:04d}.npz" for c in range(-(-n // size))]


def chunk_images(wildcards):
    """[start, stop) image range of a posterior chunk within its set."""
    size = POSTERIOR["chunk_size"]
    start = int(wildcards.chunk) * size
    return [start, min(start + size, POSTERIOR_SETS[wildcards.set])]


# calibration of psi's uncertainty (calibration.smk): psi also samples the first validation
# images (posterior/val/), on which the recalibration and phi's constant sigma are fitted
CALIBRATION = config["calibration"]
POSTERIOR_SETS["val"] = CALIBRATION["val_images"]
CALIBRATION_DIR = f"{RUN}/calibration"


def split_head_files(split, n, ext):
    """The shard files (`ext`: npz | parquet) of `split` holding its first n images, in order."""
    size = SPLITS[split].shard_size
    return shard_files(split, ext)[: -(-n // size)]


def split_head_yhat(split, n):
    """phi's yhat files of `split` holding its first n images, in order."""
    return yhat_files(split)[: -(-n // SPLITS[split].shard_size)]


def mcmc_set_maps(setting, set_name):
    """MCMC push-forward map files (every chunk, in order) of `set_name` under `setting`."""
    from diffloc.mcmc_plan import chunk_ids

    return [f"{RUN}/mcmc/{setting}/{set_name}/{chunk}.npz" for chunk in chunk_ids(config)]


def mcmc_reference_setting():
    """Name of the first MCMC setting with beta = 1 (the true posterior)."""
    return next(n for n, s in config["mcmc"]["settings"].items() if s["beta"] == 1)


def ablation_kinds():
    """The `{sampler}` wildcard of the ablation: the grid's kinds, then the study's own."""
    kinds = list(CALIBRATION["ablation"]["samplers"])
    own = config["diffusion"]["sampler"]["kind"]
    return kinds if own in kinds else [*kinds, own]


def calibration_mem_mb(n_images):
    """Memory (MB) of a calibration job holding n_images posterior summaries: per image its
    quantile maps, raw samples and a few maps, as float32 with float64 working copies."""
    summary = config["diffusion"]["summary"]
    side = config["geometry"]["lr_size"] * config["geometry"]["upsample"]
    maps = len(summary["quantiles"]) + summary["raw_samples"] + 4
    return 1000 + int(24 * maps * side * side * n_images / 1e6)


def psi_training_config():
    """What psi's training depends on: geometry and the diffusion section without the sampler
    and the summaries (changing how samples are drawn or summarised does not retrain psi)."""
    diffusion = {k: v for k, v in config["diffusion"].items() if k not in ("sampler", "summary")}
    return {"geometry": config["geometry"], "diffusion": diffusion}

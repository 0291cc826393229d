# Paths, config slices and targets of the calibration stage, for its rules in ../calibration.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.

CALIBRATION = config["calibration"]
CALIBRATION_DIR = f"{RUN}/calibration"


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


CAL_ISOLATED_N = POSTERIOR["isolated_images"]
CAL_TEST_N = POSTERIOR["test_images"]
CAL_VAL_N = CALIBRATION["val_images"]
CAL_MCMC_REF = mcmc_reference_setting()
# psi's localisation uncertainty is measured on the test split and every isolated split
CAL_LOCALIZATION_SPLITS = ["test", *ISOLATED_SPLITS]
ABLATION = CALIBRATION["ablation"]
ABLATION_SPLIT = f"isolated_{ABLATION['photons']}"
ABLATION_DIR = f"{CALIBRATION_DIR}/ablation"


# per-seed tables (metrics/seed_<i>/, calibration/seed_<i>/) gathered into one, with a seed column
SEED_METRICS = ["psi", "calibration_mcmc", "calibration_coverage", "calibration_localization"]
SEED_CALIBRATION_TABLES = ["mcmc_per_image", "reliability", "z_histogram"]
# (gathered table, its per-seed tables in seed order), for rule gather_seeds (one cheap local job)
SEED_TABLES = [
    (f"{RUN}/{folder}/{table}.csv", [f"{RUN}/{folder}/seed_{d}/{table}.csv" for d in PSI_SEEDS])
    for folder, tables in (("metrics", SEED_METRICS), ("calibration", SEED_CALIBRATION_TABLES))
    for table in tables
]

CALIBRATION_TARGETS = [
    f"{METRICS}/calibration_mcmc.csv",
    f"{METRICS}/calibration_coverage.csv",
    f"{METRICS}/calibration_localization.csv",
    f"{METRICS}/calibration_ablation.csv",
    f"{METRICS}/calibration_recommendation.csv",
    f"{METRICS}/calibration_targets.csv",
]

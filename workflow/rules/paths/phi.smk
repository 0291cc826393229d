# Paths, config slices and targets of the phi stage, for its rules in ../phi.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.
# phi is trained once per KDE width of localize.sigma_y_axis ({sigma_y} wildcard: sigma_y_1.5,
# sigma_y_3, ...); psi, MCMC and calibration use the one at kde.sigma_y (SIGMA_Y).
import re

from diffloc.config import kde_ceiling, sigma_y_tag

SIGMA_Y_AXIS = {sigma_y_tag(s): s for s in config["localize"]["sigma_y_axis"]}
SIGMA_Y_PATTERN = "|".join(map(re.escape, SIGMA_Y_AXIS))
SIGMA_Y = sigma_y_tag(config["kde"]["sigma_y"])
# phi predicts every split but its own training split, at every width, in one job per width
# (one process start instead of one per shard); psi reads the predictions at kde.sigma_y only,
# the localisation study reads AXIS_SPLITS at every width
YHAT_SPLITS = [s for s in SPLITS if s != "phi_train"]
AXIS_SPLITS = ["test", *ISOLATED_SPLITS]


def phi_model(sigma_y=SIGMA_Y):
    """phi's model file for the KDE width tag `sigma_y`."""
    return f"{RUN}/models/{sigma_y}/phi.pt"


def yhat_files(split, sigma_y=SIGMA_Y):
    """phi's yhat file of every shard of `split`, at KDE width tag `sigma_y`."""
    return [f"{RUN}/yhat/{sigma_y}/{split}/{shard}.npz" for shard in SPLITS[split].shard_ids()]


def split_head_yhat(split, n):
    """phi's yhat files (at kde.sigma_y) of `split` holding its first n images, in order."""
    return yhat_files(split)[: -(-n // SPLITS[split].shard_size)]


PHI_TARGETS = [f for sy in SIGMA_Y_AXIS for split in YHAT_SPLITS for f in yhat_files(split, sy)]

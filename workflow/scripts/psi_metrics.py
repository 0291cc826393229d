"""Rule `psi_metrics`: posterior-mean MSE against phi's and the concentration of the std maps."""

import logging

import numpy as np
import pandas as pd

from diffloc.data.files import save_csv
from diffloc.data.posterior import load_posterior
from diffloc.data.shards import image_range, read_shard, read_yhat
from diffloc.psi.quality import posterior_quality

log = logging.getLogger("diffloc.psi_metrics")


def run(
    posterior: list[str],
    data_npz: list[str],
    yhat_npz: list[str],
    floor: float,
    max_mse_ratio: float,
    out: str,
) -> None:
    """One row for the test images psi sampled, with the posterior-mean target checked."""
    summaries = [load_posterior(p)[0] for p in posterior]
    mean = np.concatenate([s["mean"] for s in summaries])
    std = np.concatenate([s["std"] for s in summaries])
    n = len(mean)
    y0 = image_range(data_npz, 0, n, lambda p: read_shard(p).y)
    yhat = image_range(yhat_npz, 0, n, lambda p: read_yhat(p)[0])
    row = {"set": "test", **posterior_quality(y0, yhat, mean, std, floor), "support_floor": floor}
    row["max_mse_ratio"] = max_mse_ratio
    row["passed"] = row["mse_ratio"] <= max_mse_ratio
    log.info("%s", row)
    save_csv(pd.DataFrame([row]), out)


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        list(smk.input.posterior),
        list(smk.input.npz),
        list(smk.input.yhat),
        smk.params.floor,
        smk.params.max_mse_ratio,
        smk.output[0],
    )

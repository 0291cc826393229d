"""Job functions of the simulate stage: one per rule of workflow/rules/simulate.smk."""

import logging
import time
from pathlib import Path

from diffloc.data.shards import write_shard
from diffloc.simulate.scenes import simulate_shard

log = logging.getLogger(__name__)


def simulate(*, shard: dict, npz: str | Path, parquet: str | Path) -> None:
    """Simulate the shard `shard` describes: camera images (ADU) and KDEs to NPZ, emitters (px, nm) to Parquet."""
    start = time.perf_counter()
    data = simulate_shard(shard)
    write_shard(data, npz, parquet)
    log.info(
        "split %s shard %d: %d images, %d emitters, config hash %s, %.2f s -> %s, %s",
        shard["split"],
        shard["shard"],
        data.n_images,
        len(data.emitters),
        data.metadata["config_hash"],
        time.perf_counter() - start,
        npz,
        parquet,
    )

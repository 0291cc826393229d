"""Rule `simulate`: simulate one shard and write its NPZ images and Parquet emitter table."""

import logging
import time

from diffloc.data.shards import write_shard
from diffloc.simulate.scenes import simulate_shard

log = logging.getLogger("diffloc.simulate")


def run(shard_cfg: dict, npz_path: str, parquet_path: str) -> None:
    """Simulate the shard described by `shard_cfg` and write both of its files."""
    start = time.perf_counter()
    shard = simulate_shard(shard_cfg)
    write_shard(shard, npz_path, parquet_path)
    log.info(
        "split %s shard %d: %d images, %d emitters, config hash %s, %.2f s -> %s, %s",
        shard_cfg["split"],
        shard_cfg["shard"],
        shard.n_images,
        len(shard.emitters),
        shard.metadata["config_hash"],
        time.perf_counter() - start,
        npz_path,
        parquet_path,
    )


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    run(snakemake.params.shard, snakemake.output.npz, snakemake.output.parquet)  # noqa: F821

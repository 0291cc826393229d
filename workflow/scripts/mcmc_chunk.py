"""Rule `mcmc`: sample one chunk of isolated-emitter images; write chains, maps, diagnostics."""

import logging
import time

from diffloc.config import config_hash
from diffloc.data.mcmc import write_chunk
from diffloc.data.shards import read_shard
from diffloc.mcmc.chunks import run_chunk

log = logging.getLogger("diffloc.mcmc")


def run(
    chunk_cfg: dict,
    npz_paths: list[str],
    parquet_paths: list[str],
    chains_path: str,
    maps_path: str,
    diagnostics_path: str,
) -> None:
    """Read the chunk's shards (hash-checked), run the chunk, write its three outputs."""
    start = time.perf_counter()
    shard_ids = sorted(chunk_cfg["shards"])
    if len(npz_paths) != len(shard_ids) or len(parquet_paths) != len(shard_ids):
        raise ValueError(f"chunk needs shards {shard_ids}, got files {npz_paths} {parquet_paths}")
    shards = {
        sid: read_shard(npz, parquet, expected_hash=chunk_cfg["shards"][sid])
        for sid, npz, parquet in zip(shard_ids, npz_paths, parquet_paths, strict=True)
    }
    result = run_chunk(chunk_cfg, shards, dict(zip(shard_ids, npz_paths, strict=True)))
    write_chunk(result, chains_path, maps_path, diagnostics_path)
    diag = result.diagnostics
    log.info(
        "%s %s chunk %d: images %s, config hash %s, acceptance %.3f, max R-hat %.4f, "
        "min bulk ESS %.0f, %.2f s -> %s",
        chunk_cfg["setting_name"],
        chunk_cfg["set"],
        chunk_cfg["chunk"],
        chunk_cfg["images"],
        config_hash(chunk_cfg),
        diag["acceptance"].mean(),
        diag.filter(like="rhat_").to_numpy().max(),
        diag.filter(like="ess_bulk_").to_numpy().min(),
        time.perf_counter() - start,
        chains_path,
    )


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    run(
        snakemake.params.chunk,  # noqa: F821
        list(snakemake.input.npz),  # noqa: F821
        list(snakemake.input.parquet),  # noqa: F821
        snakemake.output.chains,  # noqa: F821
        snakemake.output.maps,  # noqa: F821
        snakemake.output.diagnostics,  # noqa: F821
    )

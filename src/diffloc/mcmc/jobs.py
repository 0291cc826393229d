"""Job functions of the mcmc stage: one per rule of workflow/rules/mcmc.smk."""

import logging
import time
from pathlib import Path

from diffloc.config import config_hash
from diffloc.data.files import save_csv
from diffloc.data.mcmc import read_diagnostics, write_chunk
from diffloc.data.shards import read_shard
from diffloc.mcmc.chunks import run_chunk, summarise

log = logging.getLogger(__name__)


def mcmc(
    *,
    npz: list[str],
    parquet: list[str],
    chains: str | Path,
    maps: str | Path,
    diagnostics: str | Path,
    chunk: dict,
) -> None:
    """Sample one chunk of isolated emitters: chains (LR px), maps (KDE units), diagnostics (nm)."""
    start = time.perf_counter()
    shard_ids = sorted(chunk["shards"])
    if len(npz) != len(shard_ids) or len(parquet) != len(shard_ids):
        raise ValueError(f"chunk needs shards {shard_ids}, got files {npz} {parquet}")
    shards = {
        sid: read_shard(npz_path, parquet_path, expected_hash=chunk["shards"][sid])
        for sid, npz_path, parquet_path in zip(shard_ids, npz, parquet, strict=True)
    }
    result = run_chunk(chunk, shards, dict(zip(shard_ids, npz, strict=True)))
    write_chunk(result, chains, maps, diagnostics)
    diag = result.diagnostics
    log.info(
        "%s %s chunk %d: images %s, config hash %s, acceptance %.3f, max R-hat %.4f, "
        "min bulk ESS %.0f, %.2f s -> %s",
        chunk["setting_name"],
        chunk["set"],
        chunk["chunk"],
        chunk["images"],
        config_hash(chunk),
        diag["acceptance"].mean(),
        diag.filter(like="rhat_").to_numpy().max(),
        diag.filter(like="ess_bulk_").to_numpy().min(),
        time.perf_counter() - start,
        chains,
    )


def mcmc_summary(*, diagnostics: list[str], csv: str | Path) -> None:
    """Summarise the chunks' diagnostics: one row per (setting, split), std and sqrt(CRLB) in nm."""
    table = summarise([read_diagnostics(path) for path in diagnostics])
    save_csv(table, csv, float_format="%.6g")
    log.info("MCMC summary of %d chunk files -> %s\n%s", len(diagnostics), csv, table)

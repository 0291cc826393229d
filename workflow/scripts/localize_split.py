"""Rule `localize`: detect emitters on phi's yhat (or, for the oracle, the true KDE y) of one
split, match them to the truth, write one row per detection and the split's metrics."""

import logging

import pandas as pd

from diffloc.data.files import atomic_path, save_csv
from diffloc.data.shards import read_emitters, read_shard, read_yhat
from diffloc.localize.detection import detect
from diffloc.localize.matching import CONVENTIONS, localization_metrics, localization_table

log = logging.getLogger("diffloc.localize")


def run(
    source: str,
    split: str,
    photons: float,
    kde_npz: list[str],
    data_npz: list[str],
    data_parquet: list[str],
    settings,
    upsample: int,
    pixel_size_nm: float,
    radius_hr: float,
    out_table: str,
    out_metrics: str,
) -> None:
    """Localise every shard of `split` on the `source` KDEs (phi | oracle) and score them.

    The table (one-to-one matching) gets `image` = index within the split and `shard`; the
    metrics CSV has one row per matching convention.
    """
    tables, truths, offset = {c: [] for c in CONVENTIONS}, 0, 0
    for shard, (kde_path, npz, parquet) in enumerate(
        zip(kde_npz, data_npz, data_parquet, strict=True)
    ):
        images = read_yhat(kde_path)[0] if source == "phi" else read_shard(npz).y
        emitters, _ = read_emitters(parquet, len(images))
        detections = detect(images, settings)
        for convention in CONVENTIONS:
            table = localization_table(
                detections, emitters, upsample, pixel_size_nm, radius_hr, convention
            )
            # image: index within the split (shards in order); shard: which shard it came from
            tables[convention].append(table.assign(image=table["image"] + offset, shard=shard))
        truths += len(emitters)
        offset += len(images)
    rows = []
    for convention, parts in tables.items():
        table = pd.concat(parts, ignore_index=True)
        metrics = localization_metrics(table, truths)
        rows.append(
            {
                "source": source,
                "split": split,
                "photons": photons,
                "convention": convention,
                **metrics,
            }
        )
        log.info("%s on %s (%s): %s", source, split, convention, metrics)
    with atomic_path(out_table) as tmp:
        pd.concat(tables["one_to_one"], ignore_index=True).to_parquet(tmp, index=False)
    save_csv(pd.DataFrame(rows), out_metrics)


if "snakemake" in globals():
    from diffloc.localize.detection import detector_settings

    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    cfg = smk.params.config
    run(
        smk.wildcards.source,
        smk.wildcards.split,
        smk.params.photons,
        list(smk.input.kde),
        list(smk.input.npz),
        list(smk.input.parquet),
        detector_settings(cfg),
        cfg["geometry"]["upsample"],
        cfg["geometry"]["pixel_size_nm"],
        cfg["localize"]["match_radius"],
        smk.output.table,
        smk.output.metrics,
    )

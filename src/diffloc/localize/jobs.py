"""Job functions of the localize stage: one per rule of workflow/rules/localize.smk."""

import dataclasses
import logging
from pathlib import Path

import pandas as pd

from diffloc.data.files import save_csv, save_table
from diffloc.data.shards import read_emitters, read_shard, read_yhat
from diffloc.localize.detection import detect, detector_settings
from diffloc.localize.matching import CONVENTIONS, localization_metrics, localization_table
from diffloc.localize.photon_sweep import SWEEP_COLUMNS, sweep_row
from diffloc.localize.targets import phi_targets as check_phi_targets

log = logging.getLogger(__name__)


def localize(
    *,
    kde: list[str],
    npz: list[str],
    parquet: list[str],
    table: str | Path,
    metrics: str | Path,
    config: dict,
    source: str,
    split: str,
    photons: float,
) -> None:
    """Localise `split` on the `source` (phi | oracle) KDEs with `localize.detector`; write the
    detections (Parquet metadata `diffloc`: detector, settings) and the metrics (nm)."""
    # config: the localize, kde and geometry slices. The table keeps the one-to-one matching;
    # the metrics CSV has one row per matching convention.
    settings = detector_settings(config)
    log.info("detector %s: %s", settings.detector, settings)
    upsample = config["geometry"]["upsample"]
    pixel_size_nm = config["geometry"]["pixel_size_nm"]
    radius_hr = config["localize"]["match_radius"]
    tables, truths, offset = {c: [] for c in CONVENTIONS}, 0, 0
    for shard, (kde_path, npz_path, parquet_path) in enumerate(zip(kde, npz, parquet, strict=True)):
        images = read_yhat(kde_path)[0] if source == "phi" else read_shard(npz_path).y
        emitters, _ = read_emitters(parquet_path, len(images))
        detections = detect(images, settings)
        for convention in CONVENTIONS:
            part = localization_table(
                detections, emitters, upsample, pixel_size_nm, radius_hr, convention
            )
            # image: index within the split (shards in order); shard: which shard it came from
            tables[convention].append(part.assign(image=part["image"] + offset, shard=shard))
        truths += len(emitters)
        offset += len(images)
    rows = []
    for convention, parts in tables.items():
        scores = localization_metrics(pd.concat(parts, ignore_index=True), truths)
        rows.append(
            {
                "source": source,
                "split": split,
                "photons": photons,
                "convention": convention,
                **scores,
            }
        )
        log.info(
            "%s on %s (detector %s, %s): %s", source, split, settings.detector, convention, scores
        )
    # the metadata names the detector (the metrics CSV does not, yet: README, phi and localisation)
    metadata = {
        "detector": settings.detector,
        "localize": config["localize"],
        "settings": dataclasses.asdict(settings),
        "source": source,
        "split": split,
    }
    save_table(pd.concat(tables["one_to_one"], ignore_index=True), table, metadata)
    save_csv(pd.DataFrame(rows), metrics)


def photon_sweep(
    *,
    tables: dict[str, list[str]],
    npz: dict[str, list[str]],
    parquet: dict[str, list[str]],
    sweep: str | Path,
    photons: dict[str, float],
    sigma_x: float,
    background: float,
    pixel_size_nm: float,
) -> None:
    """Write phi's RMSE beside sqrt(CRLB) (nm), one row per photon count of `photons`."""
    # photons: {isolated split: photon count}, rows in its order; tables, npz, parquet: {split:
    # files} with the split's localisation table (one file) and its shards in order.
    rows = []
    for split, i0 in photons.items():
        (table_path,) = tables[split]
        table = pd.read_parquet(table_path)
        loaded = [read_shard(n, p) for n, p in zip(npz[split], parquet[split], strict=True)]
        emitters = pd.concat([s.emitters for s in loaded], ignore_index=True)
        rows.append(
            sweep_row(i0, table, emitters, loaded[0].camera, sigma_x, background, pixel_size_nm)
        )
        log.info("i0 = %s: %s", i0, rows[-1])
    save_csv(pd.DataFrame(rows, columns=list(SWEEP_COLUMNS)), sweep)


def phi_targets(
    *,
    metrics: list[str],
    sweep: str | Path,
    localization: str | Path,
    checks: str | Path,
    targets: dict,
    split: str,
) -> None:
    """Gather the localisation metrics (nm) into one table and check phi's `targets` on `split`."""
    table = pd.concat([pd.read_csv(p) for p in metrics], ignore_index=True)
    results = check_phi_targets(table, pd.read_csv(sweep), targets, split)
    for row in results.itertuples():
        log.info(
            "%s %s: %.4g %s %.4g",
            "PASS" if row.passed else "FAIL",
            row.description,
            row.measured,
            row.relation,
            row.threshold,
        )
    save_csv(table, localization)
    save_csv(results, checks)

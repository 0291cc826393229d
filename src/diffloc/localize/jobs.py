"""Job functions of the localize stage: one per rule of workflow/rules/localize.smk."""

import dataclasses
import logging
from pathlib import Path

import pandas as pd

from diffloc.data.files import save_csv, save_table
from diffloc.data.shards import read_emitters, read_shard, read_yhat, shard_kde
from diffloc.localize.detection import detect, detector_settings
from diffloc.localize.matching import CONVENTIONS, localization_metrics, localization_table
from diffloc.localize.photon_sweep import SWEEP_COLUMNS, sweep_row
from diffloc.localize.targets import phi_targets as check_phi_targets

log = logging.getLogger(__name__)


def localize(
    *,
    kde: dict[str, list[str]],
    npz: dict[str, list[str]],
    parquet: dict[str, list[str]],
    tables: list[str],
    metrics: list[str],
    splits: list[str],
    config: dict,
    source: str,
    photons: dict[str, float],
    sigma_y: float,
) -> None:
    """`localize_split` for every split of `splits` in one job (tables[i], metrics[i] belong to
    splits[i]; inputs and photons per emitter keyed by split)."""
    for split, table, metric in zip(splits, tables, metrics, strict=True):
        localize_split(
            kde=kde[split],
            npz=npz[split],
            parquet=parquet[split],
            table=table,
            metrics=metric,
            config=config,
            source=source,
            split=split,
            photons=photons[split],
            sigma_y=sigma_y,
        )


def localize_split(
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
    sigma_y: float,
) -> None:
    """Localise `split` on the `source` (phi | oracle) KDEs of kernel width `sigma_y` (HR px)
    with `localize.detector`; write the detections (Parquet metadata `diffloc`: detector,
    settings, sigma_y) and the metrics (nm), both naming the detector and the width."""
    # config: the localize, kde and geometry slices. The table keeps the one-to-one matching;
    # the metrics CSV has one row per matching convention.
    settings = detector_settings(config, sigma_y)
    log.info("detector %s: %s", settings.detector, settings)
    upsample = config["geometry"]["upsample"]
    pixel_size_nm = config["geometry"]["pixel_size_nm"]
    radius_hr = config["localize"]["match_radius"]
    tables, truths, offset = {c: [] for c in CONVENTIONS}, 0, 0
    for shard, (kde_path, npz_path, parquet_path) in enumerate(zip(kde, npz, parquet, strict=True)):
        if source == "phi":
            images = read_yhat(kde_path)[0]
            emitters, _ = read_emitters(parquet_path, len(images))
        else:
            data = read_shard(npz_path, parquet_path)
            images, emitters = shard_kde(data, sigma_y), data.emitters
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
                "sigma_y_hr": sigma_y,
                "detector": settings.detector,
                "convention": convention,
                **scores,
            }
        )
        log.info(
            "%s on %s (sigma_y %g, detector %s, %s): %s",
            source,
            split,
            sigma_y,
            settings.detector,
            convention,
            scores,
        )
    metadata = {
        "detector": settings.detector,
        "sigma_y_hr": sigma_y,
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
    sigma_y: float,
    detector: str,
) -> None:
    """Write phi's RMSE beside sqrt(CRLB) (nm), one row per photon count of `photons`, for phi
    at KDE width `sigma_y` (HR px) with `detector` (both named in every row)."""
    # photons: {isolated split: photon count}, rows in its order; tables, npz, parquet: {split:
    # files} with the split's localisation table (one file) and its shards in order.
    rows = []
    for split, i0 in photons.items():
        (table_path,) = tables[split]
        table = pd.read_parquet(table_path)
        loaded = [read_shard(n, p) for n, p in zip(npz[split], parquet[split], strict=True)]
        emitters = pd.concat([s.emitters for s in loaded], ignore_index=True)
        row = sweep_row(i0, table, emitters, loaded[0].camera, sigma_x, background, pixel_size_nm)
        rows.append({**row, "sigma_y_hr": sigma_y, "detector": detector})
        log.info("i0 = %s: %s", i0, rows[-1])
    save_csv(pd.DataFrame(rows, columns=list(SWEEP_COLUMNS)), sweep)


def phi_targets(
    *,
    metrics: list[str],
    sweeps: list[str],
    localization: str | Path,
    sweep: str | Path,
    checks: str | Path,
    targets: dict,
    split: str,
) -> None:
    """Gather the localisation metrics and photon sweeps (nm) of every KDE width into one table
    each and check phi's `targets` (dense ones on `split`) at every width."""
    table = pd.concat([pd.read_csv(p) for p in metrics], ignore_index=True)
    sweeps_table = pd.concat([pd.read_csv(p) for p in sweeps], ignore_index=True)
    results = check_phi_targets(table, sweeps_table, targets, split)
    for row in results.itertuples():
        log.info(
            "%s sigma_y %g, %s: %.4g %s %.4g",
            "PASS" if row.passed else "FAIL",
            row.sigma_y_hr,
            row.description,
            row.measured,
            row.relation,
            row.threshold,
        )
    save_csv(table, localization)
    save_csv(sweeps_table, sweep)
    save_csv(results, checks)

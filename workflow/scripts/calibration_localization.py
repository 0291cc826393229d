"""Rule `calibration_localization`: detect emitters on every stored posterior sample, associate
the detections across samples, and compare each emitter's spread with its actual error (dense
test images) and with sqrt(CRLB) and the MCMC posterior std (isolated emitters)."""

import logging

import pandas as pd

from diffloc.calibration.inputs import (
    add_isolated_references,
    read_posterior_set,
    read_set_emitters,
)
from diffloc.calibration.tables import localization_summary, localization_tracks, reference_ratios
from diffloc.data.files import atomic_path, save_csv
from diffloc.data.mcmc import read_diagnostics
from diffloc.localize.detection import detector_settings

log = logging.getLogger("diffloc.calibration")


def run(
    sets: dict[str, dict],
    config: dict,
    levels: list[float],
    n_samples: int,
    out_csv: str,
    out_tracks: str,
) -> None:
    """`sets`: name -> {photons (NaN: dense), n_images, posterior, npz, parquet, diagnostics};
    `config`: the study's localize, kde, geometry, psf and mcmc sections."""
    settings = detector_settings(config)
    geo, psf = config["geometry"], config["psf"]
    nm = geo["pixel_size_nm"] / geo["upsample"]
    radius = config["localize"]["match_radius"]
    rows, all_tracks = [], []
    for name, files in sets.items():
        n = files["n_images"]
        post = read_posterior_set(files["posterior"], n)
        samples = post["samples"][:, :n_samples]
        emitters, camera = read_set_emitters(files["npz"], files["parquet"], n)
        tracks = localization_tracks(
            samples, post["mean"], emitters, settings, radius, geo["upsample"], levels
        )
        row = {"set": name, "photons": files["photons"], "n_images": n}
        row["samples"] = samples.shape[1]
        row.update(localization_summary(tracks, len(emitters), levels, nm))
        if files["diagnostics"]:
            mcmc = pd.concat([read_diagnostics(p) for p in files["diagnostics"]])
            tracks = add_isolated_references(
                tracks,
                emitters,
                camera,
                psf["sigma_x"],
                psf["background"],
                geo["pixel_size_nm"],
                config["mcmc"]["fit_photons"],
                mcmc,
            )
            row.update(reference_ratios(tracks, nm))
        log.info("%s", row)
        rows.append(row)
        all_tracks.append(tracks.assign(set=name))
    save_csv(pd.DataFrame(rows), out_csv, float_format="%.9g")
    with atomic_path(out_tracks) as tmp:
        pd.concat(all_tracks, ignore_index=True).to_parquet(tmp, index=False)


if "snakemake" in globals():
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)  # noqa: F821
    smk = snakemake  # noqa: F821
    run(
        smk.params.sets,
        smk.params.config,
        smk.params.levels,
        smk.params.samples,
        smk.output.csv,
        smk.output.tracks,
    )

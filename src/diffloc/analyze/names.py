"""File names and config sections of `diffloc analyze`, without heavy imports: the workflow
reads them when Snakemake parses it (every job start on SLURM)."""

CARD_NAME = "analysis.json"
# Config sections the card copies, and which of them must match an analysis config exactly.
CARD_SECTIONS = ("geometry", "psf", "camera", "kde", "localize", "scene")
# The `analyze` keys the card's position calibration (analyze.calibration_movie) depends on.
CALIBRATION_KEYS = (
    "batch_pixels", "tile_margin", "fit_half_width", "position", "merge_px", "residual_rounds",
    "min_snr", "significance", "levels", "position_calibration", "threads", "device",
)  # fmt: skip
# The `analyze` keys that decide which localisations psi's calibration saw: an analysis with
# other values gets intervals calibrated for another set of localisations.
DETECTION_KEYS = (
    "fit_half_width", "position", "merge_px", "residual_rounds", "min_snr", "significance",
)  # fmt: skip
# The output files of an analysis (analyze.outputs), by kind.
OUTPUT_FILES = {
    "table": "localisations.parquet",
    "thunderstorm": "localisations_thunderstorm.csv",
    "picasso": "localisations_picasso.hdf5",
    "picasso_yaml": "localisations_picasso.yaml",
    "render_tif": "render.tif",
    "render_png": "render.png",
    "psi_mean_tif": "render_psi_mean.tif",
    "psi_mean_png": "render_psi_mean.png",
    "psi_std_tif": "render_psi_std.tif",
    "psi_std_png": "render_psi_std.png",
}

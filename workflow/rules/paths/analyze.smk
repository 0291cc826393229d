# Paths, config slices and targets of the analyze stage, for its rules in ../analyze.smk
# (kept apart from the rules, as Snakemake's linter asks). Uses common.smk and earlier stages.
# The movie's frame count, read from its TIFF header only when an analysis job is planned,
# splits it into chunks of analyze.chunk_frames frames, one job each.
import math

from diffloc.analyze.names import CALIBRATION_KEYS, CARD_NAME, CARD_SECTIONS, OUTPUT_FILES
from diffloc.analyze.nulls import with_nulls
from diffloc.data.files import DataError
from diffloc.data.movies import open_movie

ANALYZE = with_nulls(config["analyze"])  # 'null' from --config analyze='{models: null}' is None
ANALYZE_MOVIE = ANALYZE["movie"]
ANALYZE_CARD = f"{RUN}/models/{CARD_NAME}"
ANALYZE_MODELS = ANALYZE["models"] or f"{RUN}/models"
ANALYZE_OUT = (
    ANALYZE["out"] or f"{RUN}/analyze/{Path(ANALYZE_MOVIE).stem if ANALYZE_MOVIE else 'no_movie'}"
)
ANALYZE_CHUNK = int(ANALYZE["chunk_frames"])
ANALYZE_OUTPUTS = {key: f"{ANALYZE_OUT}/{name}" for key, name in OUTPUT_FILES.items()}
# what the models were trained for (the card) and what the analysis runs with
ANALYSIS_CONFIG = {
    **{k: config[k] for k in ("geometry", "psf", "kde", "localize")},
    "diffusion": {"sampler": config["diffusion"]["sampler"]},
}
CARD_CONFIG = {
    **{k: config[k] for k in CARD_SECTIONS},
    "diffusion": {"sampler": config["diffusion"]["sampler"]},
    "simulation": {"splits": config["simulation"]["splits"]},
    "analyze": {k: config["analyze"][k] for k in CALIBRATION_KEYS},
    "seed": config["seed"],
}


def analyze_movie(wildcards=None):
    """The movie to analyse; a clear error when none is configured."""
    if not ANALYZE_MOVIE:
        raise WorkflowError(
            "no movie to analyse: set one with --config analyze='{movie: path/to/movie.tif}' "
            "(README: 'Analysing your own movie')"
        )
    return ANALYZE_MOVIE


def analyze_n_frames():
    """Frames in the movie (its TIFF header only)."""
    try:
        with open_movie(analyze_movie()) as movie:
            return movie.n_frames
    except (DataError, ValueError) as error:
        raise WorkflowError(f"analyze.movie: {error}") from None


def analyze_chunk_files(ext):
    """The per-chunk files (`ext`: parquet | npz) of the movie, in frame order."""
    n = math.ceil(analyze_n_frames() / ANALYZE_CHUNK)
    return [f"{ANALYZE_OUT}/chunks/{c:04d}.{ext}" for c in range(n)]


def analyze_frames(wildcards):
    """[start, stop) frame range of a chunk."""
    start = int(wildcards.chunk) * ANALYZE_CHUNK
    return [start, min(start + ANALYZE_CHUNK, analyze_n_frames())]


def analyze_card_file(wildcards=None):
    """The models' analysis card: this run's (built here) or the configured folder's."""
    return f"{ANALYZE_MODELS}/{CARD_NAME}"

"""The analysis card `models/analysis.json`: what phi and psi were trained for, bound to the weights.

Model files record their network config and a training fingerprint, not the physics they were
trained on. The card records it (geometry, PSF, KDE, camera, training scenes, detector and
sampler settings) with the fingerprints of the two model files, so that an analysis can check,
before it reads a frame, that the movie and its settings match the models.
"""

import json
import math
from pathlib import Path

from diffloc.analyze.names import CARD_NAME, CARD_SECTIONS
from diffloc.config import config_hash
from diffloc.data.files import REBUILD_HINT, ModelFileError, atomic_path
from diffloc.data.models import read_model_metadata
from diffloc.provenance import versions

CARD_FORMAT = "diffloc.analysis_card/1"
# Config sections that must match an analysis config exactly (the card copies CARD_SECTIONS).
MUST_MATCH = {
    "geometry.lr_size": "the psi tile size (LR px)",
    "geometry.upsample": "the KDE upsampling factor",
    "geometry.pixel_size_nm": "the camera pixel size (nm)",
    "psf.sigma_x": "the PSF width (LR px)",
    "kde.sigma_y": "the KDE kernel width (HR px)",
    "kde.normalize": "the KDE normalisation",
}
PIXEL_TOLERANCE = 0.005  # relative: a movie pixel size within 0.5 % of the models' passes
SIGMA_TOLERANCE = 0.05  # relative: a stated PSF width within 5 % of the models' passes


class ModelCardError(ModelFileError):
    """The models' analysis card is missing or invalid, or the movie does not fit the models."""


def build_card(
    config: dict,
    phi_model: str | Path,
    psi_model: str | Path,
    card: str | Path,
    position_calibration: dict | None = None,
) -> dict:
    """The card of models trained under `config` (a full study config) with these model files;
    it names them relative to the card's folder (`card` is the card's path) and holds the
    scales of psi's position intervals (analyze.calibration_movie; None: psi's own)."""
    phi_meta, psi_meta = read_model_metadata(phi_model), read_model_metadata(psi_model)
    folder = Path(card).resolve().parent
    splits = config["simulation"]["splits"]
    card = {
        "format": CARD_FORMAT,
        **{k: config[k] for k in CARD_SECTIONS},
        "sampler": config["diffusion"]["sampler"],
        "training_scenes": {
            name: splits[name].get("scene", {}) for name in ("phi_train", "psi_train")
        },
        "phi_file": Path(phi_model).resolve().relative_to(folder).as_posix(),
        "psi_file": Path(psi_model).resolve().relative_to(folder).as_posix(),
        "phi_fingerprint": phi_meta["fingerprint"],
        "psi_fingerprint": psi_meta["fingerprint"],
        "seed": config["seed"],
        "position_calibration": position_calibration,
        "versions": versions(),
    }
    card["card_hash"] = config_hash({k: v for k, v in card.items() if k != "versions"})
    return card


def write_card(card: dict, path: str | Path) -> None:
    """Write the card as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def read_card(models: str | Path) -> dict:
    """The card in the folder `models`, checked against the model files it names there (keys
    phi_file, psi_file); ModelCardError if it is missing, not a card, or belongs to other weights."""
    models = Path(models)
    path = models / CARD_NAME
    if not path.is_file():
        raise ModelCardError(
            f"{path}: analysis card is missing; the models folder must hold analysis.json and "
            "the phi and psi model files it names (build them with `snakemake --cores all --configfile "
            "config/analyze.yaml analyze_models`)"
        )
    try:
        card = json.loads(path.read_text())
    except Exception as exc:
        raise ModelCardError(f"{path}: not a JSON file ({exc}); {REBUILD_HINT}") from exc
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelCardError(f"{path}: not a diffloc analysis card ({CARD_FORMAT}); {REBUILD_HINT}")
    metas = {}
    for network in ("phi", "psi"):
        metas[network] = read_model_metadata(models / card[f"{network}_file"])
        if metas[network].get("fingerprint") != card[f"{network}_fingerprint"]:
            raise ModelCardError(
                f"{path}: the card was written for other {network} weights than "
                f"{models / card[f'{network}_file']}; {REBUILD_HINT}"
            )
    psi_geometry = metas["psi"].get("config", {}).get("geometry")
    if psi_geometry != card["geometry"]:
        raise ModelCardError(
            f"{path}: geometry {card['geometry']} differs from the one psi.pt was trained with "
            f"({psi_geometry}); {REBUILD_HINT}"
        )
    return card


def _get(tree: dict, dotted: str):
    """Value at a dotted key of nested dicts."""
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def check_compatible(
    card: dict,
    *,
    pixel_size_nm: float,
    psf_sigma_nm: float | None = None,
    config: dict | None = None,
    where: str = "models",
) -> None:
    """ModelCardError with one sentence unless the movie's pixel size (nm), the optional PSF
    width (nm) and the optional analysis config match what the models were trained for."""
    trained_px = float(card["geometry"]["pixel_size_nm"])
    if not (math.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise ModelCardError(f"the movie's pixel size must be a number > 0 nm, got {pixel_size_nm}")
    if abs(pixel_size_nm / trained_px - 1) > PIXEL_TOLERANCE:
        raise ModelCardError(
            f"{where}: trained for {trained_px:g} nm camera pixels, but the movie has "
            f"{pixel_size_nm:g} nm pixels; the PSF would have another width in pixels. Train "
            f"models with geometry.pixel_size_nm: {pixel_size_nm:g} (and psf.sigma_x in those "
            "pixels) in config/analyze.yaml"
        )
    if psf_sigma_nm is not None:
        trained = float(card["psf"]["sigma_x"]) * trained_px
        if abs(psf_sigma_nm / trained - 1) > SIGMA_TOLERANCE:
            raise ModelCardError(
                f"{where}: trained for a PSF sigma of {trained:.1f} nm "
                f"({card['psf']['sigma_x']:g} px), but the movie's PSF sigma is "
                f"{psf_sigma_nm:g} nm; train models with psf.sigma_x: "
                f"{psf_sigma_nm / trained_px:.3g} in config/analyze.yaml"
            )
    if config is not None:
        for key, what in MUST_MATCH.items():
            want, got = _get(card, key), _get(config, key)
            if want != got:
                raise ModelCardError(
                    f"{where}: trained with {key} = {want!r} ({what}), but the analysis config "
                    f"has {got!r}; use the config the models were trained with or retrain them"
                )

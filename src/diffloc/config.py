"""Study configuration: schema validation with one clear message, cross-field checks, splits."""

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SHARD_DIGITS = 4
DENSE_SPLITS_REQUIRED = ("phi_train", "psi_train", "val", "test")
ISOLATED_PREFIX = "isolated_"
DIST_PARAMS = {
    "n_emitters": {"fixed": ("value",), "poisson": ("mean",), "uniform": ("low", "high")},
    "photons": {
        "fixed": ("value",),
        "uniform": ("low", "high"),
        "loguniform": ("low", "high"),
        "lognormal": ("median", "sigma"),
    },
    "background": {"fixed": ("value",), "uniform": ("low", "high"), "loguniform": ("low", "high")},
}
# Keys of the top-level `scene`; a dense split's `scene` override may replace any of them and
# may add `background` (per-image background; without it a split uses psf.background).
SCENE_KEYS = ("disc_radius", "n_emitters", "photons")


class ConfigError(ValueError):
    """An invalid study configuration; the message names the offending key."""


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _schema_message(error: jsonschema.ValidationError) -> str:
    """One line naming the key, what is wrong and what is allowed."""
    key, value = _key(error.absolute_path), error.instance
    kind = error.validator
    if kind == "enum":
        return f"config key '{key}' is {value!r}; allowed values: {error.validator_value}"
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        where = "" if key == "<top level>" else f" in '{key}'"
        return f"missing config key(s) {missing}{where}"
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed))
        where = "at the top level" if key == "<top level>" else f"in '{key}'"
        return f"unknown config key(s) {unknown} {where}; allowed keys: {allowed}"
    if kind == "type":
        return f"config key '{key}' must be of type {error.validator_value}, got {value!r}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return f"config key '{key}' must be {bound[kind]} {error.validator_value}, got {value!r}"
    if kind == "pattern":
        return f"config key '{key}' = {value!r} must match {error.validator_value!r}"
    if kind == "propertyNames":
        return f"config key '{key}': {error.message}"
    if kind == "contains" and "const" in error.validator_value:
        return f"config key '{key}' = {value!r} must contain {error.validator_value['const']!r}"
    return f"config key '{key}': {error.message}"


def validate_config(config: dict, schema: dict) -> None:
    """Raise ConfigError (first problem, key named) unless `config` fits `schema` and is coherent."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(e.path)))
    if errors:
        raise ConfigError(_schema_message(errors[0]))
    check_consistency(config)


_SCHEMA_TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


NULL_WORDS = ("null", "none", "~")  # a string meaning none, as `snakemake --config` passes it


def _scalar(text: str) -> Any:
    """A string's value as YAML would read it unquoted: None, a bool, an int, a finite float,
    or the string itself ('nan' and 'inf' stay strings, so validation refuses them)."""
    word = text.strip()
    if word.lower() in NULL_WORDS:
        return None
    if word.lower() in ("true", "false"):
        return word.lower() == "true"
    try:
        return int(word)
    except ValueError:
        pass
    try:
        value = float(word)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _type_errors(errors) -> Any:
    """The schema's type errors on string values among `errors` and their sub-errors (oneOf)."""
    for error in errors:
        if error.validator == "type" and isinstance(error.instance, str):
            yield error
        yield from _type_errors(error.context or ())


def command_line_values(config: dict, schema: dict) -> list[str]:
    """Read back, in place, the values `snakemake --config` passed as strings where `schema`
    wants a number, a boolean or null (a nested mapping's values, e.g. `--config
    diffusion='{train_crop: 8}'`, all arrive as strings); a string that the key accepts as
    a string stays one. Returns the keys changed (dotted)."""
    validator = jsonschema.Draft202012Validator(schema)
    changed: list[str] = []
    while True:
        fixes = {}
        for error in _type_errors(validator.iter_errors(config)):
            allowed = error.validator_value
            allowed = [allowed] if isinstance(allowed, str) else list(allowed)
            value = _scalar(error.instance)
            if any(_SCHEMA_TYPES.get(t, lambda v: False)(value) for t in allowed):
                fixes[tuple(error.absolute_path)] = value
        fixes = {path: v for path, v in fixes.items() if path and _key(path) not in changed}
        if not fixes:
            return changed
        for path, value in fixes.items():
            parent = config
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = value
            changed.append(_key(path))


def _at_most(key: str, value, limit_name: str, limit, why: str = "") -> None:
    """ConfigError naming `key` unless its value is at most `limit` (named `limit_name`)."""
    if value > limit:
        raise ConfigError(f"config key '{key}' ({value}) exceeds {limit_name} ({limit}){why}")


def _one_of(key: str, value, allowed_name: str, allowed: list) -> None:
    """ConfigError naming `key` unless its value is in `allowed` (the list at `allowed_name`)."""
    if value not in allowed:
        raise ConfigError(f"config key '{key}' ({value}) is not one of {allowed_name} {allowed}")


def _exact_keys(key: str, kind: str, spec: dict, allowed: list, tag: str) -> None:
    """ConfigError unless `spec` holds exactly `allowed` besides its selector key `tag`."""
    extra = sorted(set(spec) - {tag, *allowed})
    missing = [k for k in allowed if k not in spec]
    if missing or extra:
        raise ConfigError(
            f"config key '{key}': {kind} takes exactly the keys {list(allowed)} "
            f"(missing {missing}, unexpected {extra})"
        )


def _check_scene(prefix: str, scene: dict, config: dict) -> None:
    """Checks of the scene keys in `scene` (the top-level `scene` or a split's override), named
    `<prefix>.<key>`: disc inside the camera, distribution keys, low <= high."""
    if "disc_radius" in scene:
        half = config["geometry"]["lr_size"] / 2.0
        reach = scene["disc_radius"] + 3.0 * config["psf"]["sigma_x"]
        if reach > half:
            raise ConfigError(
                f"{prefix}.disc_radius + 3 * psf.sigma_x = {reach:g} LR px exceeds half the "
                f"image (geometry.lr_size / 2 = {half:g}); emitters' PSFs would fall off the camera"
            )
    for name, table in DIST_PARAMS.items():
        if name not in scene:
            continue
        spec, key = scene[name], f"{prefix}.{name}"
        needed = table[spec["dist"]]
        _exact_keys(key, f"dist '{spec['dist']}'", spec, list(needed), "dist")
        if "low" in needed:
            _at_most(f"{key}.low", spec["low"], f"{key}.high", spec["high"])
        if spec["dist"] == "loguniform" and spec["low"] <= 0:
            raise ConfigError(f"config key '{key}.low' must be > 0 for dist 'loguniform'")


def check_consistency(config: dict) -> None:
    """Cross-field checks the schema cannot express; raise ConfigError naming the keys."""
    _check_scene("scene", config["scene"], config)
    for name, split in config["simulation"]["splits"].items():
        if name.startswith(ISOLATED_PREFIX):
            raise ConfigError(
                f"config key 'simulation.splits.{name}': the prefix '{ISOLATED_PREFIX}' is "
                "reserved for simulation.isolated"
            )
        key = f"simulation.splits.{name}"
        _at_most(f"{key}.shard_size", split["shard_size"], f"{key}.n_images", split["n_images"])
        _check_scene(f"{key}.scene", split.get("scene", {}), config)
    loc = config["localize"]
    _at_most("localize.min_sigma", loc["min_sigma"], "localize.max_sigma", loc["max_sigma"])
    iso = config["simulation"]["isolated"]
    _at_most(
        "simulation.isolated.shard_size",
        iso["shard_size"],
        "simulation.isolated.n_images",
        iso["n_images"],
    )
    targets = config["phi"]["targets"]
    for name in ("photons", "recall_photons"):
        missing_photons = sorted(set(targets[name]) - set(iso["photons"]))
        if missing_photons:
            raise ConfigError(
                f"config key 'phi.targets.{name}' names photon counts {missing_photons} that "
                f"simulation.isolated.photons ({iso['photons']}) does not simulate"
            )
    axis = loc["sigma_y_axis"]
    for key, value in (
        ("kde.sigma_y", config["kde"]["sigma_y"]),
        ("phi.targets.recall_sigma_y", targets["recall_sigma_y"]),
    ):
        if value not in axis:
            raise ConfigError(
                f"config key '{key}' ({value}) must be one of localize.sigma_y_axis ({axis})"
            )
    tags = [sigma_y_tag(s) for s in axis]
    if len(set(tags)) < len(tags):
        raise ConfigError(
            f"config key 'localize.sigma_y_axis': values {axis} share a path tag {tags}"
        )
    post, test_n = config["posterior"], config["simulation"]["splits"]["test"]["n_images"]
    _at_most(
        "posterior.test_images", post["test_images"], "simulation.splits.test.n_images", test_n
    )
    _at_most(
        "posterior.isolated_images",
        post["isolated_images"],
        "simulation.isolated.n_images",
        iso["n_images"],
    )
    _at_most(
        "posterior.figure_images",
        post["figure_images"],
        "posterior.test_images",
        post["test_images"],
    )
    _check_mcmc(config)
    _check_diffusion(config)
    _check_calibration(config)
    _check_position_calibration(config)
    _check_augment(config)


def _check_augment(config: dict) -> None:
    """phi.train.augment / diffusion.train.augment: dihedral is an exact symmetry of the data only
    with a scalar camera (an sCMOS map is fixed to the sensor; a flip would move it)."""
    preset = config["camera"]["preset"]
    for key in ("phi.train.augment", "diffusion.train.augment"):
        section, _, _ = key.split(".")
        if config[section]["train"]["augment"] == "dihedral" and preset != "scalar":
            raise ConfigError(
                f"config key '{key}': dihedral flips the images, an exact symmetry only with "
                f"camera.preset scalar; camera.preset {preset!r} has per-pixel maps fixed to "
                "the sensor, which a flip would move (use augment: none)"
            )


def _check_position_calibration(config: dict) -> None:
    """analyze.position_calibration: photon distribution keys, background low <= high,
    increasing photon_edges."""
    key, pc = "analyze.position_calibration", config["analyze"]["position_calibration"]
    _check_scene(key, {"photons": pc["photons"]}, config)
    _at_most(f"{key}.background.low", pc["background"]["low"], f"{key}.background.high",
             pc["background"]["high"])  # fmt: skip
    edges = pc["photon_edges"]
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ConfigError(f"config key '{key}.photon_edges' must increase: {edges}")


SCHEDULE_PARAMS = {"linear": ("beta_start", "beta_end"), "cosine": ("offset", "max_beta")}


def _check_diffusion(config: dict) -> None:
    """Cross-field checks of the `diffusion` section (schedule keys, sampler, U-Net levels)."""
    diff = config["diffusion"]
    sched, sampler, unet = diff["schedule"], diff["sampler"], diff["unet"]
    needed = ["T", *SCHEDULE_PARAMS[sched["kind"]]]
    _exact_keys("diffusion.schedule", f"kind '{sched['kind']}'", sched, needed, "kind")
    if sched["kind"] == "linear":
        _at_most(
            "diffusion.schedule.beta_start", sched["beta_start"], "beta_end", sched["beta_end"]
        )
    _at_most("diffusion.sampler.steps", sampler["steps"], "diffusion.schedule.T", sched["T"])
    if (sampler["kind"] == "ddim") != ("eta" in sampler):
        raise ConfigError(
            f"config key 'diffusion.sampler.eta' is required for kind 'ddim' and only there "
            f"(kind '{sampler['kind']}')"
        )
    if sampler["batch_size"] < sampler["k"]:
        raise ConfigError(
            f"config key 'diffusion.sampler.batch_size' ({sampler['batch_size']}) is below "
            f"diffusion.sampler.k ({sampler['k']}): batches hold whole images"
        )
    quantiles = diff["summary"]["quantiles"]
    if quantiles != sorted(quantiles):
        raise ConfigError(f"config key 'diffusion.summary.quantiles' must increase: {quantiles}")
    raw = diff["summary"]["raw_samples"]
    _at_most("diffusion.summary.raw_samples", raw, "diffusion.sampler.k", sampler["k"])
    size = config["geometry"]["lr_size"] * config["geometry"]["upsample"]
    if size % unet["patch"]:
        raise ConfigError(
            f"config key 'diffusion.unet.patch' ({unet['patch']}) does not divide the KDE size "
            f"({size} px)"
        )
    sizes = [size // unet["patch"]]
    for _ in unet["multipliers"][1:]:
        sizes.append(math.ceil(sizes[-1] / 2))
    unreachable = sorted(set(unet["attention_resolutions"]) - set(sizes))
    if unreachable:
        raise ConfigError(
            f"config key 'diffusion.unet.attention_resolutions': {unreachable} never reached; "
            f"the U-Net levels are {sizes} px"
        )
    crop = diff["train_crop"]
    step = crop_step(config["geometry"], unet)
    if crop and (crop > size or crop % step or (size - crop) % step):
        raise ConfigError(
            f"config key 'diffusion.train_crop' ({crop}) must be 0 or a multiple of {step} HR px "
            f"(whole LR pixels and U-Net cells) of at most the KDE size ({size} px)"
        )
    widths = [unet["channels"] * m for m in (1, *unet["multipliers"])]
    if any(w % unet["norm_groups"] or w % unet["attention_heads"] for w in widths):
        raise ConfigError(
            f"config key 'diffusion.unet.norm_groups' ({unet['norm_groups']}) and "
            f"attention_heads ({unet['attention_heads']}) must divide every width {widths}"
        )


def _check_mcmc(config: dict) -> None:
    """Cross-field checks of the `mcmc` section against itself and simulation.isolated."""
    mc, iso = config["mcmc"], config["simulation"]["isolated"]
    _at_most("mcmc.n_images", mc["n_images"], "simulation.isolated.n_images", iso["n_images"])
    _at_most("mcmc.chunk_size", mc["chunk_size"], "mcmc.n_images", mc["n_images"])
    for name, setting in mc["settings"].items():
        key = f"mcmc.settings.{name}"
        if setting["iterations"] - setting["burn_in"] < 4:
            raise ConfigError(
                f"config key '{key}.burn_in' ({setting['burn_in']}) must leave at least 4 of "
                f"the {setting['iterations']} iterations (split R-hat needs them)"
            )
        if setting["adapt"]:
            why = ": the proposal is adapted during burn-in only"
            _at_most(
                f"{key}.adapt.every", setting["adapt"]["every"], "burn_in", setting["burn_in"], why
            )
    figure = mc["figure"]
    _one_of("mcmc.figure.photons", figure["photons"], "simulation.isolated.photons", iso["photons"])
    if figure["image"] >= mc["n_images"]:
        raise ConfigError(
            f"config key 'mcmc.figure.image' ({figure['image']}) must be < mcmc.n_images "
            f"({mc['n_images']})"
        )


def _check_calibration(config: dict) -> None:
    """Cross-field checks of the `calibration` section against the posterior it scores."""
    cal, summary = config["calibration"], config["diffusion"]["summary"]
    stored = summary["quantiles"]

    def stored_level(q: float) -> bool:
        return any(abs(q - s) <= 1e-9 for s in stored)

    needed = sorted({0.5} | {round(f(c), 12) for c in cal["levels"] for f in _TAILS})
    missing = [q for q in needed if not stored_level(q)]
    if missing:
        raise ConfigError(
            f"config key 'calibration.levels' {cal['levels']} needs the quantiles {missing} "
            f"(and the median 0.5) in diffusion.summary.quantiles ({stored})"
        )
    k = config["diffusion"]["sampler"]["k"]
    if summary["quantile_method"] == "weibull":
        ranks = {c: (1 - c) * (k + 1) / 2 for c in cal["levels"]}
        off_grid = [c for c, r in ranks.items() if abs(r - round(r)) > 1e-9 or r < 1 - 1e-9]
        if off_grid:
            raise ConfigError(
                f"config key 'calibration.levels': {off_grid} are not exact order-statistic "
                f"intervals at diffusion.sampler.k = {k} (quantile_method weibull needs "
                f"(1 - c)(K + 1)/2 to be a whole number >= 1; e.g. K = 39 or 79 for "
                "0.5/0.8/0.9/0.95)"
            )
    for key, value in (
        ("recalibration_level", cal["recalibration_level"]),
        ("targets.coverage_level", cal["targets"]["coverage_level"]),
    ):
        if not any(abs(value - c) <= 1e-9 for c in cal["levels"]):
            raise ConfigError(
                f"config key 'calibration.{key}' ({value}) must be one of calibration.levels "
                f"{cal['levels']}"
            )
    low, high = cal["targets"]["std_ratio"]
    if low > high:
        raise ConfigError(
            f"config key 'calibration.targets.std_ratio' must be [low, high]: {[low, high]}"
        )
    if summary["raw_samples"] < 2:
        raise ConfigError(
            f"config key 'diffusion.summary.raw_samples' ({summary['raw_samples']}) must be >= 2: "
            "the calibration's CRPS and localisation spreads need raw samples"
        )
    _at_most(
        "calibration.localization.samples",
        cal["localization"]["samples"],
        "diffusion.summary.raw_samples",
        summary["raw_samples"],
    )
    splits_cfg = config["simulation"]["splits"]
    val_n, test_n = splits_cfg["val"]["n_images"], splits_cfg["test"]["n_images"]
    _at_most("calibration.val_images", cal["val_images"], "simulation.splits.val.n_images", val_n)
    abl, mc = cal["ablation"], config["mcmc"]
    T = config["diffusion"]["schedule"]["T"]
    _at_most("calibration.ablation.steps", max(abl["steps"]), "diffusion.schedule.T", T)
    if abl["batch_size"] < max(abl["k"]):
        raise ConfigError(
            f"config key 'calibration.ablation.batch_size' ({abl['batch_size']}) is below "
            f"max(calibration.ablation.k) ({max(abl['k'])}): batches hold whole images"
        )
    _at_most(
        "calibration.ablation.test_images",
        abl["test_images"],
        "simulation.splits.test.n_images",
        test_n,
    )
    iso_photons = config["simulation"]["isolated"]["photons"]
    _one_of(
        "calibration.ablation.photons", abl["photons"], "simulation.isolated.photons", iso_photons
    )
    why = ": they are compared with the MCMC"
    _at_most(
        "calibration.ablation.isolated_images",
        abl["isolated_images"],
        "mcmc.n_images",
        mc["n_images"],
        why,
    )
    if not any(s["beta"] == 1 for s in mc["settings"].values()):
        raise ConfigError(
            "config key 'mcmc.settings' has no setting with beta = 1: the calibration compares "
            "psi with the true posterior"
        )


_TAILS = (lambda c: (1.0 - c) / 2.0, lambda c: (1.0 + c) / 2.0)


def load_config(path: str | Path, schema_path: str | Path) -> dict:
    """Read a YAML config and validate it against the YAML schema at `schema_path`."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(config).__name__}")
    validate_config(config, yaml.safe_load(Path(schema_path).read_text()))
    return config


@dataclass(frozen=True)
class SplitSpec:
    """A named dataset: image count, shard size and its scene (the `scene` of its shards:
    disc_radius, n_emitters, photons and, where the split overrides it, background)."""

    name: str
    n_images: int
    shard_size: int
    scene: dict

    @property
    def n_emitters(self) -> dict:
        """Distribution of emitters per image."""
        return self.scene["n_emitters"]

    @property
    def photons(self) -> dict:
        """Distribution of photons per emitter."""
        return self.scene["photons"]

    @property
    def n_shards(self) -> int:
        """Number of shards; the last one may hold fewer than shard_size images."""
        return math.ceil(self.n_images / self.shard_size)

    def shard_ids(self) -> list[str]:
        """Zero-padded shard identifiers, the `{shard}` wildcard of the workflow."""
        return [f"{i:0{SHARD_DIGITS}d}" for i in range(self.n_shards)]

    def shard_len(self, shard: int) -> int:
        """Number of images in shard `shard`."""
        if not 0 <= shard < self.n_shards:
            raise ConfigError(f"split '{self.name}' has shards 0..{self.n_shards - 1}, not {shard}")
        return min(self.shard_size, self.n_images - shard * self.shard_size)


def isolated_split_name(photons: int) -> str:
    """Split name of the isolated-emitter set at `photons` photons."""
    return f"{ISOLATED_PREFIX}{photons}"


def splits(config: dict) -> dict[str, SplitSpec]:
    """Every simulated split: the dense ones, then one isolated-emitter split per photon count.

    A dense split's scene is the top-level `scene` with the keys of its optional `scene`
    override replaced (a distribution as a whole); isolated splits hold one emitter at their
    photon count on the top-level disc, with psf.background."""
    sim = config["simulation"]
    base = {k: config["scene"][k] for k in SCENE_KEYS}
    out = {
        name: SplitSpec(name, s["n_images"], s["shard_size"], {**base, **s.get("scene", {})})
        for name, s in sim["splits"].items()
    }
    iso = sim["isolated"]
    for photons in iso["photons"]:
        name = isolated_split_name(photons)
        scene = {
            **base,
            "n_emitters": {"dist": "fixed", "value": 1},
            "photons": {"dist": "fixed", "value": photons},
        }
        out[name] = SplitSpec(name, iso["n_images"], iso["shard_size"], scene)
    return out


def shard_config(config: dict, split: str, shard: int) -> dict:
    """Everything one shard's content depends on, and nothing else (its hash keys the shard)."""
    all_splits = splits(config)
    if split not in all_splits:
        raise ConfigError(f"unknown split {split!r}; configured splits: {sorted(all_splits)}")
    spec = all_splits[split]
    return {
        **{k: config[k] for k in ("seed", "geometry", "psf", "camera")},
        "kde": kde_definition(config),
        "scene": spec.scene,
        "split": split,
        "shard": shard,
        "n_images": spec.shard_len(shard),
    }


def kde_definition(config: dict) -> dict:
    """The `kde` keys that define the KDE itself (width, normalisation), without the networks'
    `ceiling`: what data, MCMC and localisation jobs depend on."""
    return {k: config["kde"][k] for k in ("sigma_y", "normalize")}


def kde_ceiling(kde: dict) -> float:
    """Largest KDE value phi and psi represent (KDE units), from the `kde` config section: 1 for
    `max` (every KDE lies in [0, 1]), `kde.ceiling` (molecules) for `peak`."""
    return 1.0 if kde["normalize"] == "max" else float(kde["ceiling"])


def crop_step(geometry: dict, unet: dict) -> int:
    """Grid (HR px) that psi's training crops (`diffusion.train_crop`) snap to, from the
    `geometry` and `diffusion.unet` sections: whole LR pixels (yhat_x's photon channel is constant
    over upsample x upsample blocks) and whole cells of the U-Net's coarsest level (patch x
    2^(levels - 1) HR px), so that a crop meets the network as the full KDE does."""
    return math.lcm(geometry["upsample"], unet["patch"] * 2 ** (len(unet["multipliers"]) - 1))


def sigma_y_tag(sigma_y: float) -> str:
    """The path tag of a KDE width (HR px): `sigma_y_1.5`, `sigma_y_3`."""
    return f"sigma_y_{sigma_y:g}"


def config_hash(obj: Any) -> str:
    """Stable 16-hex-digit SHA-256 of a JSON-serialisable object (key order ignored)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]

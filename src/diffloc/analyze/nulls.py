"""Config values that mean none: `snakemake --config` passes YAML's null inside a mapping as the
string 'null'. Torch-free: the workflow reads it while parsing."""

from diffloc.config import NULL_WORDS

NULLABLE_KEYS = ("movie", "models", "out", "psf_sigma_nm")  # analyze keys that may be null


def is_null(value: object) -> bool:
    """Whether a config value means none: None, one of config.NULL_WORDS as `snakemake --config`
    passes YAML's null inside a mapping, or an empty string."""
    return value is None or (isinstance(value, str) and value.strip().lower() in (*NULL_WORDS, ""))


def with_nulls(analyze: dict) -> dict:
    """The analyze section with NULLABLE_KEYS and camera.em_gain given as 'null' (or 'none')
    read as None, as a config file's null is."""
    out = {k: None if k in NULLABLE_KEYS and is_null(v) else v for k, v in analyze.items()}
    if isinstance(out.get("camera"), dict) and is_null(out["camera"].get("em_gain", 0)):
        out["camera"] = {**out["camera"], "em_gain": None}
    return out

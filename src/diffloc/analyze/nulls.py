"""Config values that mean none: `snakemake --config` passes YAML's null inside a mapping as the
string 'null'. Torch-free: the workflow reads it while parsing."""

from diffloc.config import NULL_WORDS

# analyze keys that may be null and also take a string, so config.command_line_values leaves a
# command line's 'null' there for this module to read (numeric keys get None from it already)
NULLABLE_KEYS = ("movie", "models", "out")


def is_null(value: object) -> bool:
    """Whether a config value means none: None, one of config.NULL_WORDS as `snakemake --config`
    passes YAML's null inside a mapping, or an empty string."""
    return value is None or (isinstance(value, str) and value.strip().lower() in (*NULL_WORDS, ""))


def with_nulls(analyze: dict) -> dict:
    """The analyze section with NULLABLE_KEYS given as 'null' (or 'none') read as None, as a
    config file's null is."""
    return {k: None if k in NULLABLE_KEYS and is_null(v) else v for k, v in analyze.items()}

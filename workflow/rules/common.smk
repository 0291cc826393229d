# What every stage needs: the splits and their shard files, the report registry, grouped inputs.
# Each stage's own path helpers live at the top of its rules file; the Snakefile includes the
# files in pipeline order, so a file only uses names defined by itself or an earlier stage.
from pathlib import Path

from diffloc.config import kde_definition, splits

SPLITS = splits(config)
ISOLATED_SPLITS = [s for s in SPLITS if s.startswith("isolated_")]
METRICS = f"{RUN}/metrics"
# Files the HTML report shows (rule `report`, report.smk); stages add theirs with report_item.
REPORT_TARGETS = []
REPORT_CAPTIONS = Path(workflow.basedir, "workflow", "report")
REPORT_HTML = f"{RUN}/report.html"


def report_item(path, caption, category, subcategory=None, labels=None, targets=None):
    """Flag output `path` for the HTML report, captioned by workflow/report/<caption>.rst.

    The report is built from `targets` (default: `path` itself, which then may not contain
    wildcards; pass the expanded files for an output pattern)."""
    rst = REPORT_CAPTIONS / f"{caption}.rst"
    if not rst.is_file():
        raise WorkflowError(f"report caption {rst} is missing (report_item for {path})")
    if targets is None:
        if "{" in path:
            raise WorkflowError(f"report_item({path!r}): a pattern needs its files as `targets`")
        targets = [path]
    REPORT_TARGETS.extend(targets)
    return report(
        path, caption=str(rst), category=category, subcategory=subcategory, labels=labels
    )


wildcard_constraints:
    split="|".join(SPLITS),
    shard=r"\d{4}",
    chunk=r"\d{4}",


def shard_files(split, ext):
    """Every shard file of `split` with extension `ext` (npz | parquet)."""
    return [f"{RUN}/data/{split}/{shard}.{ext}" for shard in SPLITS[split].shard_ids()]


def split_head_files(split, n, ext):
    """The shard files (`ext`: npz | parquet) of `split` holding its first n images, in order."""
    return shard_files(split, ext)[: -(-n // SPLITS[split].shard_size)]


def split_photons(split):
    """Photons per emitter of a split with a fixed photon count, else NaN."""
    spec = SPLITS[split].photons
    return float(spec["value"]) if spec["dist"] == "fixed" else float("nan")


def grouped_inputs(**kinds):
    """Named inputs for `unpack`: {kind: {group: files}} -> {"kind__group": files}; a job reads
    them back with `diffloc.runtime.grouped(snakemake.input, kind)`. Groups may nest
    ({kind: {a: {b: files}}} -> "kind__a__b")."""

    def flatten(prefix, value):
        if isinstance(value, dict):
            return {k: v for key, sub in value.items() for k, v in flatten(f"{prefix}__{key}", sub).items()}
        return {prefix: list(value)}

    return {k: v for kind, groups in kinds.items() for k, v in flatten(kind, groups).items()}

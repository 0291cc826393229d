"""Where and how a job runs: its SLURM allocation, the GPUs it was given, torch's device and
threads, its log file, and its grouped inputs.

Every rule that trains or samples calls `log_allocation` first, so its log shows whether the
scheduler gave it a GPU and whether torch uses one (a GPU job that silently runs on the CPU is
the commonest cluster mistake).
"""

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

# Variables SLURM sets in a job (and its steps) that name the job and the GPUs it holds.
ALLOCATION_VARS = (
    "SLURM_JOB_ID",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
    "CUDA_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
)
UNSET = "-"


def allocation(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Value of each of ALLOCATION_VARS in `env` (default: os.environ); UNSET where absent."""
    env = os.environ if env is None else env
    return {name: env.get(name) or UNSET for name in ALLOCATION_VARS}


def describe_device(device: torch.device) -> str:
    """`device`, with the GPU's model when it is a CUDA device."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def describe_allocation(device: torch.device, env: Mapping[str, str] | None = None) -> str:
    """One log line: the SLURM job and GPU variables (NAME=value) and torch's device."""
    fields = " ".join(f"{name}={value}" for name, value in allocation(env).items())
    return f"allocation: {fields} torch_device={describe_device(device)}"


def log_allocation(logger: logging.Logger, device: torch.device) -> str:
    """Log (INFO) and return `describe_allocation(device)`; warn when GPUs are visible but unused."""
    line = describe_allocation(device)
    logger.info(line)
    gpus = allocation()["CUDA_VISIBLE_DEVICES"]
    if gpus != UNSET and device.type != "cuda":
        logger.warning(
            "GPUs %s were allocated but torch runs on %s (torch %s, CUDA available: %s)",
            gpus,
            device,
            torch.__version__,
            torch.cuda.is_available(),
        )
    return line


def parse_allocation(line: str) -> dict[str, str]:
    """Inverse of `describe_allocation`: the NAME=value fields of an allocation line."""
    if "allocation: " not in line:
        raise ValueError(f"not an allocation line: {line!r}")
    fields = line.split("allocation: ", 1)[1]
    return dict(re.findall(r"(\w+)=(\S+)", fields))


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask (what SLURM or taskset grant), or
    the machine's count where there is no mask (not Linux)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Pin torch's intra-op threads so vectorised kernels split work identically on any machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str) -> torch.device:
    """torch device for `auto | cpu | cuda`; asking for cuda without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


@contextmanager
def job_log(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send every log record (INFO and up) to `path`, a rule's log file, while a job runs; a
    failure is logged with its traceback before it propagates. Yields the `diffloc` logger."""
    root, logger = logging.getLogger(), logging.getLogger("diffloc")
    handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield logger
    except BaseException:
        logger.exception("job failed")
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def grouped(named: Any, kind: str) -> dict[str, Any]:
    """Regroup named inputs `kind__a[__b...]` (workflow/rules/common.smk: `grouped_inputs`) as
    {a: files} or {a: {b: files}}, groups in their input order; `named` is any mapping-like
    object with `.items()` (a Snakemake input list, a dict)."""
    out: dict[str, Any] = {}
    for name, files in named.items():
        parts = name.split("__")
        if parts[0] != kind or len(parts) < 2:
            continue
        node = out
        for part in parts[1:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = [files] if isinstance(files, str) else [str(f) for f in files]
    if not out:
        raise KeyError(f"no inputs named {kind}__<group> among {[n for n, _ in named.items()]}")
    return out

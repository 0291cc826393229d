"""Where a job runs: its SLURM allocation, the GPUs it was given, torch's device and threads.

Every rule that trains or samples calls `log_allocation` first, so its log shows whether the
scheduler gave it a GPU and whether torch uses one (a GPU job that silently runs on the CPU is
the commonest cluster mistake).
"""

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

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


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Pin torch's intra-op threads so vectorised kernels split work identically on any machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

"""What a run was made of, for its report: software versions and the machine its floats came from."""

import functools
import hashlib
import importlib.metadata
import os
import platform
import re
from pathlib import Path

import numpy as np
import torch

import diffloc
from diffloc.runtime import usable_cores


def source_fingerprint(root: Path | None = None) -> str:
    """16 hex digits of a SHA-256 over the relative path and bytes of every .py file under
    `root` (default: the installed diffloc package): the code that computed a result, which the
    version number does not track between releases."""
    root = Path(diffloc.__file__).parent if root is None else Path(root)
    return _source_fingerprint(root.resolve())


@functools.cache
def _source_fingerprint(root: Path) -> str:
    """source_fingerprint of the resolved `root`, computed once per process."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def versions() -> dict[str, str]:
    """Versions of the software that computes an artifact, stored in its metadata (diffloc's
    with the fingerprint of its source files)."""
    return {
        "diffloc": diffloc.__version__,
        "diffloc_source": source_fingerprint(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": str(torch.__version__),
    }


def package_versions(distribution: str = "diffloc") -> dict[str, str]:
    """Versions of Python, `distribution` and every package it requires."""
    out = {
        "python": platform.python_version(),
        distribution: importlib.metadata.version(distribution),
    }
    for requirement in importlib.metadata.requires(distribution) or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\[\s]", requirement, maxsplit=1)[0]
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cpu_model() -> str:
    """The processor's model name (Linux /proc/cpuinfo, else what platform reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, str]:
    """The processor, torch build and thread settings a run computed on. Float results (and
    models trained from them) differ between processors and torch builds, so a report keeps
    them beside its numbers."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": str(os.cpu_count()),
        "platform": platform.platform(),
        "torch_build": (
            f"{torch.__version__}; CUDA {torch.version.cuda or 'none'}; "
            f"MKL {'yes' if torch.backends.mkl.is_available() else 'no'}; "
            f"oneDNN {'yes' if torch.backends.mkldnn.is_available() else 'no'}; "
            f"OpenMP {'yes' if torch.backends.openmp.is_available() else 'no'}"
        ),
        "torch_default_threads": str(torch.get_num_threads()),
        "torch_interop_threads": str(torch.get_num_interop_threads()),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        **{f"env_{k}": os.environ.get(k, "-") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def hardware() -> str:
    """One line for a benchmark's output: CPU model, usable cores, torch threads and version,
    numpy version, and the CUDA device with its CUDA and cuDNN versions (or "no CUDA")."""
    cores = usable_cores()
    gpu = "no CUDA"
    if torch.cuda.is_available():
        gpu = (
            f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}"
        )
    return (
        f"CPU: {_cpu_model()}, {cores} usable cores, torch threads {torch.get_num_threads()}; "
        f"GPU: {gpu}; torch {torch.__version__}, numpy {np.__version__}"
    )

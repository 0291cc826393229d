"""What a run was made of, for its report: software versions."""

import importlib.metadata
import platform
import re

import numpy as np
import torch

import diffloc


def versions() -> dict[str, str]:
    """Versions of the software that computes an artifact, stored in its metadata."""
    return {
        "diffloc": diffloc.__version__,
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

"""diffloc: uncertainty-aware single-molecule localisation microscopy by conditional diffusion."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("diffloc")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

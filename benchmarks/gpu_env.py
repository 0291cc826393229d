"""What the study needs on a GPU machine that has no network: check it there, bring it from here.

    python benchmarks/gpu_env.py check            # on the GPU machine: modules missing? (exit 1)
    python benchmarks/gpu_env.py wheels .whl      # here (with PyPI): wheels for what it lacks

`check` imports every module the study imports (diffloc from src/ when it is not installed)
and names the missing ones. `wheels DIR` downloads, pinned to the versions installed here,
cp312 manylinux x86_64 wheels of the study's dependency closure (pyproject.toml's
dependencies, walked through the installed packages' metadata) less what the GPU machine's
image already holds (IMAGE_HAS: the image's package list; the SLURM executor plugins are
left out too, since a one-GPU run does not submit jobs). benchmarks/gpu_check.sh installs a
carried `.whl/` folder offline (pip --no-index) and nothing else.
"""

import argparse
import importlib
import importlib.metadata as md
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
# modules the workflow, the package and the benchmarks import
MODULES = (
    "snakemake",
    "jsonschema",
    "yaml",
    "numpy",
    "pandas",
    "scipy",
    "skimage",
    "matplotlib",
    "seaborn",
    "pyarrow",
    "tqdm",
    "pygments",
    "arviz",
    "scoringrules",
    "torch",
    "diffloc",
)
# packages of the dependency closure that the GPU machine's image already has (its package
# list, 2026-11); their large wheels (torch, numpy, scipy, pandas, ...) would not fit a call
IMAGE_HAS = frozenset(
    canonicalize_name(n)
    for n in """attrs certifi charset-normalizer contourpy cycler filelock fonttools fsspec h5py
    idna imageio jinja2 kiwisolver lazy-loader markupsafe matplotlib mpmath networkx numpy
    packaging pandas pillow psutil pyarrow pygments pyparsing python-dateutil pyyaml requests
    scikit-image scipy seaborn setuptools six sympy tabulate tifffile torch tqdm
    typing-extensions urllib3 wrapt xarray""".split()
)
SKIP = frozenset(
    {"diffloc", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep"}
)
# the GPU machine's Python (markers of the requirements are evaluated for it)
TARGET_ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def check() -> int:
    """Import every module of MODULES; print the missing ones; 1 if any is missing."""
    sys.path.append(str(REPO / "src"))  # diffloc, when it is not installed
    missing = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
    for line in missing:
        print(f"missing: {line}")
    if missing:
        print(
            "bring them as wheels: `python benchmarks/gpu_env.py wheels .whl` on a machine with PyPI"
        )
        return 1
    print(f"all {len(MODULES)} modules import")
    return 0


def closure() -> dict[str, str]:
    """{name: installed version} of pyproject's dependencies and all that they require here."""
    roots = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [Requirement(r).name for r in roots]
    found: dict[str, str] = {}
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found or name in SKIP:
            continue
        found[name] = md.version(name)
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(TARGET_ENV):
                todo.append(req.name)
    return found


def wheels(folder: Path) -> int:
    """Download the wheels the GPU machine lacks into `folder` (building a pure-Python wheel
    here where PyPI has only a source archive of the pinned version); 1 if any failed."""
    need = {n: v for n, v in sorted(closure().items()) if n not in IMAGE_HAS}
    print(f"{len(need)} packages: " + " ".join(f"{n}=={v}" for n, v in need.items()))
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    pip = [sys.executable, "-m", "pip", "-q"]
    target = ["--python-version", "3.12", "--implementation", "cp", *platforms]
    failed = []
    for name, version in need.items():
        spec = f"{name}=={version}"
        download = [
            *pip,
            "download",
            "--no-deps",
            "--only-binary=:all:",
            *target,
            "-d",
            str(folder),
        ]
        if subprocess.run([*download, spec], check=False).returncode == 0:
            continue
        build = [*pip, "wheel", "--no-deps", "-w", str(folder), spec]
        if subprocess.run(build, check=False).returncode != 0:
            failed.append(spec)
    size = sum(f.stat().st_size for f in folder.glob("*.whl")) / 2**20
    print(
        f"{folder}: {len(list(folder.glob('*.whl')))} wheels, {size:.1f} MiB (a call carries 64 MiB)"
    )
    if failed:
        print(f"failed: {' '.join(failed)}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="import every module the study needs")
    get = sub.add_parser("wheels", help="download the wheels the GPU machine lacks")
    get.add_argument("folder", type=Path)
    args = parser.parse_args()
    sys.exit(check() if args.command == "check" else wheels(args.folder))


if __name__ == "__main__":
    main()

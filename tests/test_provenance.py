"""What the report records about a run: its datasets, software versions, config, and the
`snakemake --report` call the report rule makes."""

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from diffloc.config import shard_config
from diffloc.data.models import save_model
from diffloc.data.shards import write_shard
from diffloc.provenance import package_versions, source_fingerprint, versions
from diffloc.report.datasets import DATASET_COLUMNS, dataset_table
from diffloc.report.jobs import report_command, run_info
from diffloc.simulate.scenes import simulate_shard


@pytest.fixture
def shards(tmp_path, tiny_config):
    """(npz, parquet) of phi_train shards 0-2 (10 + 10 + 4 images) and isolated_1000 shard 0."""
    out = []
    for split, shard in (
        ("phi_train", 0),
        ("phi_train", 1),
        ("phi_train", 2),
        ("isolated_1000", 0),
    ):
        npz, parquet = tmp_path / f"{split}_{shard}.npz", tmp_path / f"{split}_{shard}.parquet"
        write_shard(simulate_shard(shard_config(tiny_config, split, shard)), npz, parquet)
        out.append((npz, parquet))
    return out


def test_dataset_table_counts_each_split(shards):
    table = dataset_table(shards).set_index("split")
    assert list(table.reset_index().columns) == list(DATASET_COLUMNS)
    assert table.loc["phi_train", ["shards", "images", "emitters"]].tolist() == [3, 24, 240]
    assert table.loc["isolated_1000", ["shards", "images", "emitters"]].tolist() == [1, 5, 5]
    assert table.loc["phi_train", "emitters_per_image"] == 10
    assert table.loc["isolated_1000", "photons_per_emitter"] == 1000


def test_dataset_table_needs_a_shard():
    with pytest.raises(ValueError, match="at least one shard"):
        dataset_table([])


def test_source_fingerprint_follows_the_code_not_its_location(tmp_path):
    """The fingerprint of a package tree: equal for a copy elsewhere, other after one byte of
    one file changed or a file renamed, blind to files that are not Python; every artifact's
    versions carry the installed package's."""
    import shutil

    import diffloc

    package = Path(diffloc.__file__).parent
    copies = [tmp_path / f"copy{i}" / "diffloc" for i in range(4)]
    for copy in copies:
        shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = source_fingerprint()
    assert len(original) == 16 and int(original, 16) >= 0
    assert source_fingerprint(copies[0]) == original == versions()["diffloc_source"]
    edited = copies[1] / "physics" / "psf.py"
    edited.write_bytes(edited.read_bytes().replace(b"erf", b"Erf", 1))
    (copies[2] / "seeding.py").rename(copies[2] / "seeding2.py")
    (copies[3] / "notes.txt").write_text("not code")
    assert source_fingerprint(copies[1]) != original
    assert source_fingerprint(copies[2]) != original
    assert source_fingerprint(copies[3]) == original


def test_package_versions_cover_every_dependency():
    versions = package_versions()
    assert versions["torch"] == torch.__version__
    assert {"python", "diffloc", "numpy", "snakemake", "matplotlib"} <= set(versions)


def test_run_info_writes_config_versions_datasets_and_machine(tmp_path, shards, tiny_config):
    out = {name: tmp_path / "report" / name for name in ("config.yaml", "v.tsv", "d.tsv", "m.tsv")}
    npz, parquet = zip(*shards, strict=True)
    model = tmp_path / "phi.pt"
    machine = {"cpu_model": "Test CPU 9000", "torch_build": "x", "cuda_device": "none"}
    save_model(model, torch.nn.Linear(2, 1), {}, {"network": "phi", "machine": machine})
    run_info(
        npz=list(npz),
        parquet=list(parquet),
        models=[str(model)],
        config_yaml=str(out["config.yaml"]),
        versions=str(out["v.tsv"]),
        datasets=str(out["d.tsv"]),
        machine=str(out["m.tsv"]),
        config=tiny_config,
    )
    table = pd.read_csv(out["m.tsv"], sep="\t")
    trained = table[table["where"] == "phi: trained on"].set_index("what")["value"]
    assert trained["cpu_model"] == "Test CPU 9000"
    threads = table[table["where"] == "psi: training threads (config)"]["value"].tolist()
    assert threads == [str(tiny_config["diffusion"]["train"]["threads"])]
    assert "torch_build" in set(table[table["where"] == "this job (run_info)"]["what"])
    assert yaml.safe_load(out["config.yaml"].read_text()) == tiny_config
    versions = pd.read_csv(out["v.tsv"], sep="\t")
    assert list(versions.columns) == ["package", "version"] and "torch" in set(versions.package)
    source = versions.set_index("package").loc["diffloc source fingerprint", "version"]
    assert source == source_fingerprint()
    assert pd.read_csv(out["d.tsv"], sep="\t")["images"].tolist() == [24, 5]


def test_report_rule_calls_snakemake_report_on_its_targets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = report_command(
        "/repo/Snakefile", "results/r/report/config.yaml", ["a.png", "b.tsv", "a.png"], "r.html"
    )
    assert command == [
        *(sys.executable, "-m", "snakemake", "--snakefile", "/repo/Snakefile"),
        *("--directory", str(tmp_path), "--configfile", "results/r/report/config.yaml"),
        *("--report", "r.html", "a.png", "b.tsv"),
    ]


def test_hardware_line_names_cpu_cores_threads_and_versions():
    import torch

    from diffloc.provenance import _cpu_model, hardware

    line = hardware()
    assert _cpu_model() in line and f"torch threads {torch.get_num_threads()}" in line
    assert f"torch {torch.__version__}" in line and "usable cores" in line
    assert ("no CUDA" in line) != torch.cuda.is_available()

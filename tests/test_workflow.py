"""The Snakemake workflow: config errors stop a dry run; shards, models and metrics are identical
on 1 and 2 cores and on a rerun."""

import hashlib
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from diffloc.config import shard_config
from diffloc.data.shards import read_shard
from diffloc.simulate.jobs import simulate


def snakemake(workdir, config, *args, timeout=300):
    """Run the repository's workflow in `workdir` on `config`; return the completed process."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    cmd += ["--configfile", str(cfg), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def digests(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".npz", ".parquet")
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["camera"].update(preset="ccd"), "'camera.preset' is 'ccd'; allowed values"),
        (
            lambda c: c["diffusion"].update(condition="x"),
            "config key 'diffusion.condition' is 'x'; allowed values: ['yhat', 'yhat_x']",
        ),
        (lambda c: c["scene"].update(disc_radius=9.0), "scene.disc_radius + 3 * psf.sigma_x"),
        (
            lambda c: c["simulation"]["splits"]["phi_train"].update(
                scene={"photons": {"dist": "loguniform", "low": 100}}
            ),
            "config key 'simulation.splits.phi_train.scene.photons': dist 'loguniform' takes",
        ),
    ],
)
def test_bad_config_stops_the_dry_run_before_any_job(tmp_path, tiny_config, edit, message):
    edit(tiny_config)
    proc = snakemake(tmp_path, tiny_config, "-n", "--cores", "1")
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert not (tmp_path / "results").exists()


def test_models_and_metrics_do_not_depend_on_cores_and_rerun_bit_identically(tmp_path, tiny_config):
    """The tiny study to every model and metrics table, once on 1 core and once on 2: the
    training threads come from the config (not from --cores), model files carry no wall time
    and no temporary names, and no metrics table holds a timing, so both runs write the same
    bytes (the second run is also the rerun of the first)."""
    one, two = tmp_path / "one", tmp_path / "two"
    for workdir, cores in ((one, "1"), (two, "2")):
        proc = snakemake(workdir, tiny_config, "--cores", cores, "metrics_and_models", timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def files(root):
        run = root / "results" / "tiny"
        return {
            str(p.relative_to(run)): p.read_bytes()
            for sub in ("models", "metrics")
            for p in sorted((run / sub).rglob("*"))
            if p.is_file()
        }

    a, b = files(one), files(two)
    phi = {f"models/sigma_y_{s:g}/phi.pt" for s in tiny_config["localize"]["sigma_y_axis"]}
    assert phi | {"models/seed_0/psi.pt", "metrics/calibration_ablation.csv"} <= set(a)
    assert sorted(a) == sorted(b)
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"differ between --cores 1 and --cores 2: {differ}"


def test_shards_are_identical_on_one_and_two_cores(tmp_path, tiny_config):
    one, two = tmp_path / "one", tmp_path / "two"
    for workdir, cores in ((one, "1"), (two, "2")):
        proc = snakemake(workdir, tiny_config, "--cores", cores, "--until", "simulate")
        assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = digests(one / "results" / "tiny"), digests(two / "results" / "tiny")
    assert len(a) == 2 * (3 + 1 + 1 + 1 + 2)  # phi_train 3 shards, psi/val/test 1, 2 isolated
    assert a == b
    for split, shard in (("phi_train", 2), ("isolated_1000", 0)):
        data = read_shard(
            one / f"results/tiny/data/{split}/{shard:04d}.npz",
            one / f"results/tiny/data/{split}/{shard:04d}.parquet",
            expected_hash=None,
        )
        assert data.metadata["config"] == shard_config(tiny_config, split, shard)
    assert (one / "results/tiny/logs/simulate/val/0000.log").read_text().strip()
    # a rerun finds nothing to do
    proc = snakemake(one, tiny_config, "-n", "--cores", "1", "--until", "simulate")
    assert re.search(r"^total\s+0$", proc.stdout + proc.stderr, flags=re.M), proc.stdout[-2000:]


def test_simulate_job_writes_the_same_bytes_every_time(tmp_path, tiny_config):
    cfg = shard_config(tiny_config, "val", 0)
    simulate(shard=cfg, npz=str(tmp_path / "a.npz"), parquet=str(tmp_path / "a.parquet"))
    simulate(shard=cfg, npz=str(tmp_path / "b.npz"), parquet=str(tmp_path / "b.parquet"))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    shard = read_shard(tmp_path / "a.npz", tmp_path / "a.parquet")
    assert shard.n_images == 6


def test_bytes_do_not_depend_on_thread_counts(tmp_path, tiny_config):
    code = (
        "import sys, yaml, hashlib; from diffloc.config import shard_config;"
        "from diffloc.simulate.scenes import simulate_shard;"
        "c = yaml.safe_load(open(sys.argv[1])); s = simulate_shard(shard_config(c, 'phi_train', 0));"
        "print(hashlib.sha256(s.x.tobytes() + s.y.tobytes()).hexdigest())"
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config))
    out = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        proc = subprocess.run(
            [sys.executable, "-c", code, str(cfg)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        out.add(proc.stdout)
    assert len(out) == 1


def test_lint_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "-d", str(REPO)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr

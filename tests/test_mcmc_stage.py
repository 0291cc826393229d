"""The MCMC stage: job functions on tiny data, reproducibility, chunking and thinning against
Monte Carlo error, bad inputs, config checks, and the workflow's plan."""

import copy
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, tiny
from diffloc.config import ConfigError, shard_config, validate_config
from diffloc.data.files import ShardError
from diffloc.data.mcmc import CHAIN_COLUMNS, read_chains, read_diagnostics, read_maps
from diffloc.data.shards import read_shard, write_shard
from diffloc.mcmc.chunks import run_chunk
from diffloc.mcmc.jobs import mcmc, mcmc_summary
from diffloc.mcmc.plan import chunk_config, chunk_ids, chunk_images, figure_spec
from diffloc.mcmc.sampler import kde_factors
from diffloc.simulate.scenes import simulate_shard

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

Z_MAX = 5.0  # per pixel; ~1500 correlated pixel checks per comparison


def _shards(config, split, root):
    """Simulate and write every shard of `split`; return {id: (npz, parquet)}."""
    size = config["simulation"]["isolated"]["shard_size"]
    n = config["simulation"]["isolated"]["n_images"]
    paths = {}
    for shard in range(-(-n // size)):
        npz, parquet = root / f"{split}_{shard}.npz", root / f"{split}_{shard}.parquet"
        write_shard(simulate_shard(shard_config(config, split, shard)), npz, parquet)
        paths[f"{shard:04d}"] = (str(npz), str(parquet))
    return paths


def _outputs(root, tag):
    """The `mcmc` job's output paths, named as its arguments."""
    return {
        "chains": str(root / f"{tag}.parquet"),
        "maps": str(root / f"{tag}.npz"),
        "diagnostics": str(root / f"{tag}.csv"),
    }


def test_mcmc_job_writes_chains_maps_and_diagnostics_bit_identically(tmp_path, tiny_config):
    tiny_config["mcmc"].update(n_images=4, chunk_size=2)
    paths = _shards(tiny_config, "isolated_200", tmp_path)
    cfg = chunk_config(tiny_config, "default", "isolated_200", 1)  # images 2, 3
    npz, parquet = zip(*(paths[s] for s in sorted(cfg["shards"])), strict=True)
    for tag in ("a", "b"):
        mcmc(npz=list(npz), parquet=list(parquet), chunk=cfg, **_outputs(tmp_path, tag))
    for key, a in _outputs(tmp_path, "a").items():
        b = _outputs(tmp_path, "b")[key]
        assert open(a, "rb").read() == open(b, "rb").read(), a
    chains, meta = read_chains(tmp_path / "a.parquet")
    setting = tiny_config["mcmc"]["settings"]["default"]
    kept = -(-(setting["iterations"] - setting["burn_in"]) // tiny_config["mcmc"]["thin"])
    assert list(chains.columns) == list(CHAIN_COLUMNS)
    assert len(chains) == 2 * tiny_config["mcmc"]["chains"] * kept
    assert sorted(chains["image"].unique()) == [2, 3]
    assert np.all(chains["photons"] == 200.0)
    assert meta["seed_key"] == ["mcmc", "isolated_200", "default", 1]
    maps, _ = read_maps(tmp_path / "a.npz")
    assert maps["mean"].shape == (2, 80, 80) and list(maps["image"]) == [2, 3]
    np.testing.assert_allclose(maps["std"], np.sqrt(maps["var"]), rtol=1e-6)
    assert 0.0 <= maps["mean"].min() and maps["mean"].max() <= 1.0 + 1e-6
    diag = read_diagnostics(tmp_path / "a.csv")
    assert list(diag["image"]) == [2, 3]
    truth = read_shard(*paths["0000"]).emitters
    np.testing.assert_allclose(diag["u_true_px"], truth["u_px"].to_numpy()[2:4])
    assert np.all(diag["crlb_u_nm"] > 0) and np.all(diag["std_u_nm"] > 0)


def test_a_stale_or_corrupt_shard_fails_naming_the_file_and_writes_nothing(tmp_path, tiny_config):
    paths = _shards(tiny_config, "isolated_200", tmp_path)
    npz, parquet = paths["0000"]
    outputs = _outputs(tmp_path, "out")
    stale = copy.deepcopy(tiny_config)
    stale["psf"]["sigma_x"] = 1.0  # the shard was simulated with 0.92
    with pytest.raises(ShardError, match=rf"{npz}: config hash .* does not match"):
        mcmc(
            npz=[npz],
            parquet=[parquet],
            chunk=chunk_config(stale, "default", "isolated_200", 0),
            **outputs,
        )
    cfg = chunk_config(tiny_config, "default", "isolated_200", 0)
    open(npz, "r+b").truncate(200)
    with pytest.raises(ShardError, match=rf"{npz}: corrupt or truncated"):
        mcmc(npz=[npz], parquet=[parquet], chunk=cfg, **outputs)
    assert not any(p.name.startswith(("out", ".out")) for p in tmp_path.iterdir())


def _pixel_series(chains, image, window):
    """KDE values y(theta) [C, S, P] of the draws of `image` at the HR pixels `window`."""
    rows = chains[chains["image"] == image].sort_values(["chain", "draw"])
    n_chains = rows["chain"].nunique()
    u = rows["u_px"].to_numpy().reshape(n_chains, -1)
    v = rows["v_px"].to_numpy().reshape(n_chains, -1)
    a, b = kde_factors(u, v, 20, 4, 3.0, "max")
    r, c = window
    return (a[..., r][..., :, None] * b[..., c][..., None, :]).reshape(*u.shape, -1)


def _mc_errors(chains, image, window):
    """Per-pixel MC standard errors of the posterior mean and std of y (ArviZ)."""
    dataset = az.convert_to_dataset({"y": _pixel_series(chains, image, window)})
    return (
        az.mcse(dataset, method="mean")["y"].to_numpy(),
        az.mcse(dataset, method="sd")["y"].to_numpy(),
    )


def _window(maps, k):
    """HR pixels within +-12 of the posterior mean map's peak (where y varies)."""
    peak = np.unravel_index(maps["mean"][k].argmax(), maps["mean"][k].shape)
    return tuple(np.arange(p - 12, p + 13) for p in peak)


def _crop(image, window):
    return image[np.ix_(*window)].reshape(-1)


@pytest.fixture(scope="module")
def long_runs(tmp_path_factory, _default_config):
    """One split of 6 images sampled as 1 chunk of 6 and as 2 chunks of 3, at thin 1 and 10."""
    root = tmp_path_factory.mktemp("chunks")
    config = tiny(_default_config)
    config["simulation"]["isolated"] = {"photons": [200], "n_images": 6, "shard_size": 6}
    config["mcmc"].update(n_images=6, chunk_size=6, thin=1, figure={"photons": 200, "image": 0})
    config["mcmc"]["settings"]["default"].update(iterations=3000, burn_in=1000)
    paths = _shards(config, "isolated_200", root)
    shards = {"0000": read_shard(*paths["0000"])}
    one = run_chunk(chunk_config(config, "default", "isolated_200", 0), shards)
    thinned_cfg = chunk_config(config, "default", "isolated_200", 0)
    thinned_cfg["mcmc"] = {**thinned_cfg["mcmc"], "thin": 10}
    thinned = run_chunk(thinned_cfg, shards)
    config["mcmc"]["chunk_size"] = 3
    halves = [run_chunk(chunk_config(config, "default", "isolated_200", c), shards) for c in (0, 1)]
    return one, thinned, halves


def test_thinning_keeps_maps_within_monte_carlo_error(long_runs):
    one, thinned, _ = long_runs
    assert len(thinned.chains) * 10 == len(one.chains)
    for k in range(6):
        window = _window(one.maps, k)
        se_mean, se_std = _mc_errors(thinned.chains, k, window)
        for key, se in (("mean", se_mean), ("std", se_std)):
            diff = _crop(thinned.maps[key][k], window) - _crop(one.maps[key][k], window)
            assert np.all(np.abs(diff) <= Z_MAX * se + 1e-7), (key, np.abs(diff / se).max())


def test_chunking_keeps_maps_within_monte_carlo_error(long_runs):
    one, _, halves = long_runs
    assert [h.metadata["seed_key"][-1] for h in halves] == [0, 1]  # other random streams
    for k in range(6):
        half = halves[k // 3]
        assert not np.array_equal(half.maps["mean"][k % 3], one.maps["mean"][k])
        window = _window(one.maps, k)
        errors = [_mc_errors(run.chains, k, window) for run in (one, half)]
        for index, key in enumerate(("mean", "std")):
            se = np.hypot(errors[0][index], errors[1][index])
            diff = _crop(half.maps[key][k % 3], window) - _crop(one.maps[key][k], window)
            assert np.all(np.abs(diff) <= Z_MAX * se), (key, np.abs(diff / se).max())
        # and the comparison has teeth: a posterior 20 % wider would fail it
        wide = _crop(one.maps["std"][k], window) * 1.2 - _crop(one.maps["std"][k], window)
        assert np.abs(wide / np.hypot(errors[0][1], errors[1][1])).max() > Z_MAX


def test_summary_job_reports_every_setting_and_split(tmp_path, long_runs):
    one, _, halves = long_runs
    paths = []
    for i, result in enumerate([one, *halves]):
        paths.append(tmp_path / f"{i}.csv")
        frame = result.diagnostics.assign(setting="default" if i == 0 else "split")
        frame.to_csv(paths[-1], index=False)
    mcmc_summary(diagnostics=[str(p) for p in paths], csv=str(tmp_path / "summary.csv"))
    table = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(table["setting"]) == ["default", "split"]
    assert list(table["n_images"]) == [6, 6]
    assert np.all(table["expected_std_over_crlb"] == 1.0)
    assert np.all((table["std_over_crlb"] > 0.8) & (table["std_over_crlb"] < 1.25))


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda c: c["mcmc"].update(n_images=10_000), r"'mcmc\.n_images'.*simulation\.isolated"),
        (lambda c: c["mcmc"].update(chunk_size=10_000), r"'mcmc\.chunk_size'.*exceeds"),
        (lambda c: c["mcmc"].update(chains=2), r"'mcmc\.chains' must be >= 4"),
        (
            lambda c: c["mcmc"]["settings"]["paper"].update(burn_in=9998),
            r"'mcmc\.settings\.paper\.burn_in'.*at least 4",
        ),
        (
            lambda c: c["mcmc"]["settings"]["default"]["adapt"].update(every=5000),
            r"'mcmc\.settings\.default\.adapt\.every'.*exceeds burn_in",
        ),
        (lambda c: c["mcmc"]["settings"].update(Bad={}), r"Bad"),
        (lambda c: c["mcmc"]["figure"].update(photons=300), r"'mcmc\.figure\.photons'.*\[100,"),
        (
            lambda c: c["mcmc"]["figure"].update(image=20),
            r"'mcmc\.figure\.image'.*< mcmc\.n_images",
        ),
        (lambda c: c["mcmc"].pop("thin"), r"missing config key.*'thin'.*'mcmc'"),
    ],
)
def test_bad_mcmc_config_names_the_key(default_config, schema, edit, pattern):
    edit(default_config)
    with pytest.raises(ConfigError, match=pattern):
        validate_config(default_config, schema)


def test_plan_covers_every_image_once(default_config):
    mc = default_config["mcmc"]
    mc.update(n_images=47, chunk_size=10)
    ids = chunk_ids(default_config)
    assert ids == ["0000", "0001", "0002", "0003", "0004"]
    covered = [i for c in range(len(ids)) for i in chunk_images(default_config, c)]
    assert covered == list(range(47))
    default_config["simulation"]["isolated"].update(n_images=200, shard_size=25)
    cfg = chunk_config(default_config, "paper", "isolated_500", 2)  # images 20..29
    assert cfg["images"] == [20, 30] and sorted(cfg["shards"]) == ["0000", "0001"]
    mc["figure"] = {"photons": 500, "image": 31}
    spec = figure_spec(default_config)
    assert (spec["chunk"], spec["shard"], spec["local"]) == ("0003", "0001", 6)


def test_dry_run_plans_every_chunk_summary_and_figure(tmp_path, tiny_config):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config))
    targets = ["results/tiny/metrics/mcmc.csv", "results/tiny/figures/fig2.pdf"]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    proc = subprocess.run(
        [*cmd, "--configfile", str(cfg), "-n", "--cores", "1", *targets],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in out.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    # 2 settings x 2 splits x 1 chunk; 2 isolated shards; one summary, one figure
    assert (counts["mcmc"], counts["simulate"], counts["mcmc_summary"], counts["fig2"]) == (
        4,
        2,
        1,
        1,
    )


def test_chunk_bytes_do_not_depend_on_thread_counts(tmp_path, tiny_config):
    paths = _shards(tiny_config, "isolated_1000", tmp_path)
    cfg = tmp_path / "chunk.yaml"
    cfg.write_text(yaml.safe_dump(chunk_config(tiny_config, "default", "isolated_1000", 0)))
    code = (
        "import sys, yaml, hashlib; from diffloc.data.shards import read_shard;"
        "from diffloc.mcmc.chunks import run_chunk;"
        "c = yaml.safe_load(open(sys.argv[1])); r = run_chunk(c, {'0000': read_shard(*sys.argv[2:])});"
        "print(hashlib.sha256(r.chains.to_numpy().tobytes() + r.maps['var'].tobytes()"
        " + r.diagnostics.to_csv().encode()).hexdigest())"
    )
    out = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        proc = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", code, str(cfg), *paths["0000"]],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        out.add(proc.stdout)
    assert len(out) == 1

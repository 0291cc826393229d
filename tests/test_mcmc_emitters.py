"""MCMC on simulated isolated emitters against the Cramer-Rao bound, tempering and R-hat."""

import copy
import math

import numpy as np
import pytest

from diffloc.config import shard_config
from diffloc.mcmc.sampler import Setting, diagnostics, emitter_data, sample_emitters
from diffloc.physics.crlb import crlb
from diffloc.simulate.scenes import simulate_shard

N_IMAGES = 100
ADAPTED = Setting(1.0, 3000, 1000, 0.05, target_acceptance=0.35, adapt_every=50)


def _isolated(config: dict, photons: int, n: int, preset: str = "scmos"):
    """A simulated isolated-emitter shard (the study's own simulation) with n images."""
    config["camera"]["preset"] = preset  # per-pixel gain, offset and readout maps
    config["simulation"]["isolated"] = {"photons": [photons], "n_images": n, "shard_size": n}
    config["mcmc"].update(n_images=n, chunk_size=n, figure={"photons": photons, "image": 0})
    shard = simulate_shard(shard_config(config, f"isolated_{photons}", 0))
    truth = shard.emitters[["u_px", "v_px", "photons"]].to_numpy()
    return shard, truth


def _run(config, shard, truth, setting, seed, fit_photons=False):
    psf = config["psf"]
    data = emitter_data(shard.x, shard.camera, psf["sigma_x"], psf["background"], 5, truth[:, 2])
    chains = sample_emitters(data, setting, 4, 1.0, fit_photons, np.random.default_rng(seed))
    return diagnostics(chains)


@pytest.fixture(scope="module")
def high_photons(_default_config):
    config = copy.deepcopy(_default_config)
    shard, truth = _isolated(config, 1000, N_IMAGES)
    tempered = Setting(0.2, 3000, 1000, 0.05, target_acceptance=0.35, adapt_every=50)
    return {
        "config": config,
        "shard": shard,
        "truth": truth,
        "beta1": _run(config, shard, truth, ADAPTED, seed=1),
        "beta02": _run(config, shard, truth, tempered, seed=2),
    }


def test_posterior_std_matches_sqrt_crlb_within_10_percent(high_photons):
    config, shard, truth = high_photons["config"], high_photons["shard"], high_photons["truth"]
    table = high_photons["beta1"]
    bound = crlb(*truth.T, shard.camera, config["psf"]["sigma_x"], fit_photons=False)
    ratio = table[["std_u", "std_v"]].to_numpy() / np.sqrt(bound)
    # at i0 = 1000 the posterior is ~Gaussian with covariance ~ I^-1 (Bernstein-von Mises)
    assert abs(ratio.mean() - 1.0) < 0.10, ratio.mean()
    assert np.all((ratio > 0.8) & (ratio < 1.25)), (ratio.min(), ratio.max())


def test_posterior_mean_is_unbiased_within_3_standard_errors(high_photons):
    truth, table = high_photons["truth"], high_photons["beta1"]
    error = table[["mean_u", "mean_v"]].to_numpy() - truth[:, :2]
    standard_error = error.std(axis=0, ddof=1) / math.sqrt(len(error))
    assert np.all(np.abs(error.mean(axis=0)) < 3.0 * standard_error), (
        error.mean(0),
        standard_error,
    )
    # and calibrated: the error of the posterior mean has the posterior's spread
    z = error / table[["std_u", "std_v"]].to_numpy()
    chi2_per_dof = (z**2).mean()
    assert abs(chi2_per_dof - 1.0) < 4.0 * math.sqrt(2.0 / z.size), chi2_per_dof


def test_beta_02_widens_the_posterior_by_1_over_sqrt_beta(high_photons):
    wide, narrow = high_photons["beta02"], high_photons["beta1"]
    ratio = wide[["std_u", "std_v"]].to_numpy() / narrow[["std_u", "std_v"]].to_numpy()
    assert abs(ratio.mean() / (1.0 / math.sqrt(0.2)) - 1.0) < 0.10, ratio.mean()


def test_default_config_setting_converges_with_rhat_below_1_01(_default_config):
    config = copy.deepcopy(_default_config)
    mc = config["mcmc"]
    setting = Setting.from_config(mc["settings"]["default"])
    assert setting.beta == 1.0 and setting.target_acceptance is not None
    worst = []
    for photons in (100, 2000):  # the widest and the narrowest posterior of the sweep
        shard, truth = _isolated(config, photons, 30, preset="scalar")
        data = emitter_data(shard.x, shard.camera, 0.92, 0.0, mc["window"], truth[:, 2])
        chains = sample_emitters(
            data, setting, mc["chains"], mc["init_spread"], False, np.random.default_rng(photons)
        )
        table = diagnostics(chains)
        worst.append(table[["rhat_u", "rhat_v"]].to_numpy().max())
        assert table[["ess_bulk_u", "ess_bulk_v"]].to_numpy().min() > 400
    assert max(worst) < 1.01, worst


def test_fitted_photons_are_unbiased_with_the_three_parameter_bound(high_photons):
    config, shard, truth = high_photons["config"], high_photons["shard"], high_photons["truth"]
    n = 60
    sub = type(shard)(shard.x[:n], shard.y[:n], shard.camera, shard.emitters, shard.metadata)
    table = _run(config, sub, truth[:n], ADAPTED, seed=3, fit_photons=True)
    bound = crlb(*truth[:n].T, shard.camera, config["psf"]["sigma_x"], fit_photons=True)
    ratio = table[["std_u", "std_v", "std_photons"]].to_numpy() / np.sqrt(bound)
    assert np.all(np.abs(ratio.mean(axis=0) - 1.0) < 0.10), ratio.mean(axis=0)
    error = table["mean_photons"].to_numpy() - truth[:n, 2]
    assert abs(error.mean()) < 3.0 * error.std(ddof=1) / math.sqrt(n), error.mean()
    assert table[["rhat_u", "rhat_v", "rhat_photons"]].to_numpy().max() < 1.02

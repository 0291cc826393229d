"""Posterior summaries against numpy on random data; their NPZ files; batched sampling."""

import numpy as np
import pytest
import torch

from diffloc.data.files import PosteriorFileError
from diffloc.data.posterior import SUMMARY_KEYS, load_posterior, save_posterior
from diffloc.psi.diffusion import Diffusion, Sampler, cosine_schedule
from diffloc.psi.posterior import concat_summaries, sample_summaries, summarise

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def random_samples(n=3, k=17, h=5, w=4, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(2.0, 0.1, size=(n, k, h, w)).astype(np.float32)


@pytest.mark.parametrize("method", ["weibull", "linear"])
def test_summaries_match_numpy_definitions(method):
    x = random_samples()
    s = summarise(x, LEVELS, 3, method)
    x64 = x.astype(np.float64)
    k = x.shape[1]
    np.testing.assert_allclose(s["mean"], x64.sum(1) / k, rtol=1e-6)
    dev = x64 - x64.mean(1, keepdims=True)
    var = (dev**2).sum(1) / (k - 1)  # unbiased, ddof = 1
    np.testing.assert_allclose(s["var"], var, rtol=1e-5)
    np.testing.assert_allclose(s["std"], np.sqrt(var), rtol=1e-5)
    # Hyndman-Fan type 6 (weibull): 1-based rank q (K + 1); type 7 (linear): q (K - 1) + 1;
    # clamped to [1, K], linear interpolation between order statistics
    srt = np.sort(x64, axis=1)
    for j, q in enumerate(LEVELS):
        rank = q * (k + 1) if method == "weibull" else q * (k - 1) + 1
        rank = min(max(rank, 1.0), float(k))
        lo, frac = int(np.floor(rank)) - 1, rank - np.floor(rank)
        hi = min(lo + 1, k - 1)
        expected = srt[:, lo] + frac * (srt[:, hi] - srt[:, lo])
        np.testing.assert_allclose(s["quantiles"][:, j], expected, rtol=1e-5)
        assert s["quantile_cdf"][j] == pytest.approx(rank / (k + 1), rel=1e-6)
    assert np.array_equal(s["samples"], x[:, :3])
    np.testing.assert_allclose(s["quantile_levels"], LEVELS)
    assert all(s[key].dtype == np.float32 for key in SUMMARY_KEYS)
    assert s["quantiles"].shape == (3, 5, 5, 4) and s["mean"].shape == (3, 5, 4)
    torch_s = summarise(torch.from_numpy(x), LEVELS, 3, method)
    assert all(np.array_equal(torch_s[key], s[key]) for key in SUMMARY_KEYS)


@pytest.mark.parametrize(
    ("method", "k", "expected"), [("weibull", 39, 0.9), ("linear", 41, 36 / 42)]
)
def test_interval_coverage_of_exchangeable_draws_is_the_tested_level(method, k, expected):
    """Truth and K samples drawn from the same Gaussian per pixel: the central 90 % interval of
    the stored quantiles covers the truth with the closed-form probability (j-th smallest to
    j-th largest of K: (K + 1 - 2 j)/(K + 1)), within 4 binomial standard errors; the summary's
    quantile_cdf names that level."""
    from diffloc.calibration.metrics import quantile_interval, tested_level

    rng = np.random.default_rng(11)
    mu, sd = rng.uniform(-1, 1, (1, 300, 400)), rng.uniform(0.5, 2, (1, 300, 400))
    samples = mu[:, None] + sd[:, None] * rng.standard_normal((1, k, 300, 400))
    truth = mu + sd * rng.standard_normal(mu.shape)
    s = summarise(samples.astype(np.float32), (0.05, 0.5, 0.95), 0, method)
    assert tested_level(s["quantile_levels"], s["quantile_cdf"], 0.9) == pytest.approx(expected)
    lo, hi = quantile_interval(s["quantiles"], s["quantile_levels"], 0.9)
    covered = np.mean((truth >= lo) & (truth <= hi))
    assert abs(covered - expected) < 4 * np.sqrt(expected * (1 - expected) / truth.size)


def test_summaries_are_per_image():
    x = random_samples(n=4)
    whole = summarise(x, LEVELS, 2)
    parts = concat_summaries([summarise(x[:1], LEVELS, 2), summarise(x[1:], LEVELS, 2)])
    assert all(np.array_equal(whole[k], parts[k]) for k in SUMMARY_KEYS)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"samples": np.zeros((2, 1, 3, 3))}, "K >= 2"),
        ({"samples": np.zeros((2, 3, 3))}, r"\[N, K, H, W\]"),
        ({"samples": np.full((1, 3, 2, 2), np.nan)}, "NaN"),
        ({"quantiles": (0.5, 1.0)}, r"\(0, 1\)"),
        ({"raw_samples": 20}, "raw_samples"),
    ],
)
def test_summarise_rejects_bad_input(kwargs, pattern):
    args = {"samples": random_samples(), "quantiles": LEVELS, "raw_samples": 2, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        summarise(**args)


def test_save_load_round_trip_and_reproducible_bytes(tmp_path):
    s = summarise(random_samples(), LEVELS, 2)
    meta = {"set": "test", "chunk": "0000", "k": 17}
    a, b = tmp_path / "a" / "0000.npz", tmp_path / "b" / "0000.npz"
    save_posterior(a, s, meta)
    save_posterior(b, s, meta)
    assert a.read_bytes() == b.read_bytes()
    loaded, loaded_meta = load_posterior(a)
    assert loaded_meta == meta
    assert all(np.array_equal(loaded[k], s[k]) for k in SUMMARY_KEYS)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda s: s.update(var=s["var"].astype(np.float64)), "'var' has dtype float64"),
        (lambda s: s.update(std=s["std"][:, :2]), "'std' has shape"),
        (lambda s: s.update(quantiles=s["quantiles"][:, :3]), "'quantiles' has shape"),
        (lambda s: s["mean"].__setitem__((0, 0, 0), np.nan), "'mean' contains NaN"),
        (lambda s: s.pop("samples"), "lacks"),
    ],
)
def test_invalid_summaries_are_refused(tmp_path, edit, pattern):
    s = summarise(random_samples(), LEVELS, 2)
    edit(s)
    with pytest.raises(PosteriorFileError, match=pattern):
        save_posterior(tmp_path / "x.npz", s, {})


def test_load_names_a_corrupt_file(tmp_path):
    path = tmp_path / "0000.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(PosteriorFileError, match=r"0000\.npz"):
        load_posterior(path)


class Shrink:
    """A net predicting x0 = 0.5 x_t (with prediction='x0'): cheap and input-dependent."""

    def __call__(self, x, t, generator=None):
        return 0.5 * x[:, :1]


def test_sample_summaries_equal_summaries_of_one_sample_call():
    diffusion = Diffusion(cosine_schedule(20), "residual", "x0")
    yhat = torch.rand((5, 6, 6), generator=torch.Generator().manual_seed(0))
    sampler = Sampler("ancestral", 20)
    batched = sample_summaries(
        diffusion, Shrink(), yhat, torch.Generator().manual_seed(3), sampler, 4, 8, LEVELS, 2
    )
    whole = summarise(
        diffusion.sample(Shrink(), yhat, 4, torch.Generator().manual_seed(3), sampler, 100),
        LEVELS,
        2,
    )
    assert all(np.array_equal(batched[k], whole[k]) for k in SUMMARY_KEYS)
    assert batched["mean"].shape == (5, 6, 6) and np.all(batched["var"] > 0)

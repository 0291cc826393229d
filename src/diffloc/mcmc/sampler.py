"""Random-walk Metropolis-Hastings for isolated emitters, vectorised over images x chains: the
reference posterior that psi's uncertainty is compared with.

The energy is the negative log-likelihood l(x | theta) of the Poisson approximation (offset
subtracted, per-pixel camera maps); the prior is uniform on a box (the image for positions,
photons > 0). A proposal theta' = theta + s * scale * N(0, I) is accepted with probability
min(1, exp(beta * (l(theta) - l(theta')))): beta = 1 samples the posterior, beta < 1 a tempered
one whose width is inflated by about 1/sqrt(beta). Positions are in LR pixels (pixel i covers
[i, i+1), u along rows, v along columns), photons in expected detected photons.

    data = emitter_data(x, camera, sigma_x, background, window=5, photons=i0)   # x: [N, H, W] ADU
    chains = sample_emitters(data, setting, n_chains=4, init_spread=1.0, fit_photons=False, rng=rng)
    table = diagnostics(chains)                # acceptance, ESS, R-hat, posterior mean/std
    draws = chains.thinned(10).draws.reshape(data.n_images, -1, 2)               # [N, C * S, 2]
    mean, var = push_forward(draws[..., 0], draws[..., 1], 20, 4, 3.0, "max", batch=1024)
"""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.special import gammaln

from diffloc.physics.camera import Camera
from diffloc.physics.kde import Normalize, isolated_peak
from diffloc.physics.psf import pixel_integrals, pixel_integrals_pixels_first
from diffloc.runtime import torch_threads

ADAPT_GAIN = 3.0  # log-scale step per unit acceptance error, decaying as 1/sqrt(update number)
BLOCK = 256  # iterations whose random numbers are drawn at once (bounds memory)
RATE_FLOOR = 1e-12  # photons: keeps log(omega') finite with neither background nor readout noise
PHOTON_INIT_SPREAD = 0.5  # fitted photons start at the estimate times U(1 - 0.5, 1 + 0.5)

Energy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Setting:
    """One sampler configuration: tempering beta, iteration counts, proposal variance s^2 (LR
    px^2), and the acceptance rate the scale s is adapted to during burn-in, every `adapt_every`
    iterations (target_acceptance None: s stays fixed)."""

    beta: float
    iterations: int
    burn_in: int
    proposal_var: float
    target_acceptance: float | None = None
    adapt_every: int = 50

    def __post_init__(self) -> None:
        if not 0 <= self.burn_in < self.iterations:
            raise ValueError(
                f"need 0 <= burn_in < iterations, got {self.burn_in}, {self.iterations}"
            )
        if self.beta <= 0 or self.proposal_var <= 0:
            raise ValueError(
                f"beta and proposal_var must be > 0, got {self.beta}, {self.proposal_var}"
            )
        if self.target_acceptance is not None and not 1 <= self.adapt_every <= self.burn_in:
            raise ValueError(
                f"adaptation needs 1 <= adapt_every <= burn_in, got {self.adapt_every}"
            )

    @classmethod
    def from_config(cls, cfg: dict) -> "Setting":
        """Setting from one entry of the config's `mcmc.settings` (`adapt`: null or a mapping)."""
        adapt = cfg["adapt"] or {}
        return cls(
            beta=cfg["beta"],
            iterations=cfg["iterations"],
            burn_in=cfg["burn_in"],
            proposal_var=cfg["proposal_var"],
            target_acceptance=adapt.get("target_acceptance"),
            **({"adapt_every": adapt["every"]} if adapt else {}),
        )


@dataclass(frozen=True)
class Chains:
    """Post-burn-in states of C chains for each of N problems.

    draws [N, C, S, d] (LR px, photons), nll [N, C, S] (negative log-likelihood at each draw),
    acceptance [N, C] (fraction of post-burn-in proposals accepted), step [N] (the frozen
    proposal scale s), names: the d parameter names.
    """

    draws: np.ndarray
    nll: np.ndarray
    acceptance: np.ndarray
    step: np.ndarray
    names: tuple[str, ...]

    def thinned(self, thin: int) -> "Chains":
        """Every `thin`-th draw of each chain, starting with the first post-burn-in one."""
        return Chains(
            self.draws[:, :, ::thin], self.nll[:, :, ::thin], self.acceptance, self.step, self.names
        )


def metropolis(
    energy: Energy,
    init: np.ndarray,
    setting: Setting,
    scale: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    rng: np.random.Generator,
    names: tuple[str, ...],
) -> Chains:
    """Random-walk Metropolis-Hastings on N problems x C chains, all advanced together.

    `energy(theta [N, C, d]) -> [N, C]` is a negative log-likelihood, `init` [N, C, d] the starts,
    `scale` [N, d] a fixed per-problem shape of the proposal, `lower`/`upper` (broadcast to
    [N, d]) the uniform prior's box [lower, upper). The proposal scale s starts at
    sqrt(proposal_var); with a target acceptance it is adapted per problem during burn-in (from
    the acceptance pooled over chains, every `setting.adapt_every` iterations), then frozen.
    """
    n, c, d = init.shape
    lower = np.broadcast_to(lower, (n, d))[:, None]
    upper = np.broadcast_to(upper, (n, d))[:, None]
    if np.any(init < lower) or np.any(init >= upper):
        raise ValueError("initial states lie outside the prior's box")
    theta = np.array(init, dtype=np.float64)
    current = energy(theta)
    if not np.all(np.isfinite(current)):
        raise ValueError("the energy is not finite at the initial states")
    kept = setting.iterations - setting.burn_in
    draws, nll = np.empty((kept, n, c, d)), np.empty((kept, n, c))
    log_step = np.full(n, 0.5 * math.log(setting.proposal_var))
    accepted, window, updates = np.zeros((n, c)), np.zeros(n), 0
    shape = np.asarray(scale, dtype=np.float64)[:, None, :]
    step = np.exp(log_step)[:, None, None] * shape  # [N, 1, d] proposal std per axis
    for start in range(0, setting.iterations, BLOCK):
        size = min(BLOCK, setting.iterations - start)
        noise = rng.standard_normal((size, n, c, d))
        log_u = np.log(rng.random((size, n, c)))
        for t in range(size):
            it = start + t
            proposal = theta + step * noise[t]
            inside = np.all((proposal >= lower) & (proposal < upper), axis=-1)
            proposal = np.where(inside[..., None], proposal, theta)
            candidate = energy(proposal)
            accept = inside & (log_u[t] < setting.beta * (current - candidate))
            theta = np.where(accept[..., None], proposal, theta)
            current = np.where(accept, candidate, current)
            if it >= setting.burn_in:
                draws[it - setting.burn_in], nll[it - setting.burn_in] = theta, current
                accepted += accept
            elif setting.target_acceptance is not None:
                window += accept.mean(axis=1)
                if (it + 1) % setting.adapt_every == 0:
                    updates += 1
                    error = window / setting.adapt_every - setting.target_acceptance
                    log_step += ADAPT_GAIN / math.sqrt(updates) * error
                    step = np.exp(log_step)[:, None, None] * shape
                    window[:] = 0.0
    return Chains(
        draws.transpose(1, 2, 0, 3).copy(),
        nll.transpose(1, 2, 0).copy(),
        accepted / kept,
        np.exp(log_step),
        names,
    )


@dataclass(frozen=True)
class EmitterData:
    """Isolated-emitter images cut to square likelihood windows of P x P pixels, in photons.

    counts [N, P, P]: n = (x - o)/g + w^2/g^2 clipped at 0; rate0 [N, P, P]: omega' without the
    emitter (background + w^2/g^2); origin [N, 2]: LR pixel index of each window's first row and
    column; centre [N, 2]: centroid estimate of the emitter (LR px); photons [N]: known i0;
    sigma_x: PSF std (LR px); lr_size: image side (LR px).
    """

    counts: np.ndarray
    rate0: np.ndarray
    origin: np.ndarray
    centre: np.ndarray
    photons: np.ndarray
    sigma_x: float
    lr_size: int

    @property
    def n_images(self) -> int:
        """Number of images N."""
        return self.counts.shape[0]

    def estimated_photons(self) -> np.ndarray:
        """Background-subtracted photons in each window [N] (at least 1): start of a fitted i0."""
        return np.maximum((self.counts - self.rate0).sum(axis=(-2, -1)), 1.0)

    def nll(self, theta: np.ndarray) -> np.ndarray:
        """Negative log-likelihood [N, C] of the windows' counts at theta [N, C, 2 | 3].

        theta holds (u, v) in LR px, and i0 in photons when d = 3 (else the known photons).
        Equals `physics.camera.poisson_nll` of the window, including its lgamma constant.
        """
        return WindowLikelihood(self, theta.shape[1])(theta)


class WindowLikelihood:
    """`EmitterData.nll` for a fixed number of chains C, laid out for speed: every per-pixel
    array is [P, P, N*C] with the N*C chains contiguous, so each numpy pass is one long loop."""

    def __init__(self, data: EmitterData, n_chains: int) -> None:
        n, p = data.n_images, data.counts.shape[-1]
        self.data, self.n_chains, self.p = data, n_chains, p
        chains_last = lambda a: np.repeat(a.transpose(1, 2, 0), n_chains, axis=-1)  # noqa: E731
        self.rate0 = chains_last(data.rate0)  # [P, P, M]
        self.counts = chains_last(data.counts).reshape(p * p, n * n_chains)
        self.constant = np.repeat(
            data.rate0.sum(axis=(-2, -1)) + gammaln(data.counts + 1.0).sum(axis=(-2, -1)), n_chains
        )
        self.origin = np.repeat(data.origin.T, n_chains, axis=1)  # [2, M]
        self.sigma_x = data.sigma_x
        self.photons = np.repeat(data.photons, n_chains)  # [M]
        self.omega = np.empty_like(self.rate0)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """Negative log-likelihood [N, C] at theta [N, C, 2 | 3] (LR px, photons)."""
        n, c, d = theta.shape
        if (n, c) != (self.data.n_images, self.n_chains):
            raise ValueError(
                f"theta has {n} x {c} chains, expected {self.data.n_images} x {self.n_chains}"
            )
        flat = theta.reshape(n * c, d)
        integrals = pixel_integrals_pixels_first(flat[:, :2].T - self.origin, self.p, self.sigma_x)
        eu = integrals[:, 0] * (flat[:, 2] if d == 3 else self.photons)  # [P, M]
        ev = integrals[:, 1]
        omega = np.multiply(eu[:, None, :], ev[None, :, :], out=self.omega)
        omega += self.rate0
        signal = eu.sum(axis=0) * ev.sum(axis=0)
        log_omega = np.log(omega, out=omega).reshape(self.p * self.p, n * c)
        data_term = np.einsum("qm,qm->m", log_omega, self.counts)
        return (self.constant + signal - data_term).reshape(n, c)


def locate(signal: np.ndarray) -> np.ndarray:
    """Centroid estimate [N, 2] (LR px) of one emitter per image from background-free photons
    [N, H, W]: the brightest 3 x 3 box, then the centroid of its positive part."""
    n, h, w = signal.shape
    padded = np.pad(signal, ((0, 0), (1, 1), (1, 1)))
    box = sum(padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3))
    peak = np.stack(np.unravel_index(box.reshape(n, -1).argmax(axis=1), (h, w)), axis=1)
    offsets = np.arange(-1, 2)
    rows = np.clip(peak[:, :1] + offsets, 0, h - 1)  # [N, 3]
    cols = np.clip(peak[:, 1:] + offsets, 0, w - 1)
    patch = np.maximum(signal[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]], 0)
    weight = patch.sum(axis=(1, 2))
    centroid_u = (patch.sum(axis=2) * (rows + 0.5)).sum(axis=1)
    centroid_v = (patch.sum(axis=1) * (cols + 0.5)).sum(axis=1)
    fallback = peak + 0.5  # an image without positive photons: the box centre
    safe = np.where(weight > 0, weight, 1.0)
    centroid = np.stack([centroid_u / safe, centroid_v / safe], axis=1)
    return np.where(weight[:, None] > 0, centroid, fallback)


def emitter_data(
    x: np.ndarray,
    camera: Camera,
    sigma_x: float,
    background: float | np.ndarray,
    window: int,
    photons: np.ndarray,
) -> EmitterData:
    """Cut camera images x [N, H, W] (ADU) of isolated emitters to likelihood windows.

    The window is the 2*window x 2*window pixel square (the whole image if that is larger)
    around each image's centroid estimate, shifted to lie inside the image. `photons` [N] are
    the known i0 (used unless i0 is fitted).
    """
    x = np.asarray(x, dtype=np.float64)
    n, size = x.shape[0], camera.shape[0]
    if x.shape[1:] != camera.shape or camera.shape != (size, size):
        raise ValueError(f"images {x.shape[1:]} do not match the square camera {camera.shape}")
    counts = camera.poisson_counts(x)
    rate0 = np.maximum(camera.effective_rate(np.broadcast_to(background, camera.shape)), RATE_FLOOR)
    centre = locate(counts - rate0)
    p = min(2 * window, size)
    origin = np.clip(np.round(centre).astype(np.int64) - p // 2, 0, size - p)
    rows = origin[:, 0, None, None] + np.arange(p)[None, :, None]  # [N, P, 1]
    cols = origin[:, 1, None, None] + np.arange(p)[None, None, :]  # [N, 1, P]
    return EmitterData(
        counts=counts[np.arange(n)[:, None, None], rows, cols],
        rate0=rate0[rows, cols],
        origin=origin.astype(np.float64),
        centre=centre,
        photons=np.broadcast_to(np.asarray(photons, dtype=np.float64), (n,)).copy(),
        sigma_x=float(sigma_x),
        lr_size=size,
    )


def sample_emitters(
    data: EmitterData,
    setting: Setting,
    n_chains: int,
    init_spread: float,
    fit_photons: bool,
    rng: np.random.Generator,
) -> Chains:
    """Sample p(u, v | x) at known photons (or p(u, v, i0 | x)) for every image of `data`.

    Chains start dispersed: uniform within +-init_spread LR px of the centroid estimate (fitted
    photons at the photon estimate times U(0.5, 1.5)). The prior is uniform on the image (and
    i0 > 0); photon proposals are scaled by the photon estimate, so one scale s fits all axes.
    """
    n, size = data.n_images, data.lr_size
    d = 3 if fit_photons else 2
    start = data.centre[:, None, :] + init_spread * rng.uniform(-1.0, 1.0, (n, n_chains, 2))
    start = np.clip(start, 0.0, np.nextafter(size, 0.0))
    scale = np.ones((n, d))
    lower, upper = np.zeros(d), np.full(d, float(size))
    if fit_photons:
        guess = data.estimated_photons()
        spread = rng.uniform(1.0 - PHOTON_INIT_SPREAD, 1.0 + PHOTON_INIT_SPREAD, (n, n_chains, 1))
        start = np.concatenate([start, guess[:, None, None] * spread], axis=-1)
        scale[:, 2] = guess
        upper[2] = np.inf
    names = ("u", "v", "photons")[:d]
    with torch_threads(1):  # the erf runs in torch: one thread, identical bits on any machine
        energy = WindowLikelihood(data, n_chains)
        return metropolis(energy, start, setting, scale, lower, upper, rng, names)


def diagnostics(chains: Chains) -> pd.DataFrame:
    """Per problem: acceptance rate, proposal scale, and per parameter the posterior mean and
    std (ddof=1, all chains pooled), bulk ESS and rank-normalised split R-hat (ArviZ)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its 1.0 refactor
        import arviz as az  # here, not at the top: a 1-2 s import only diagnostics need

    draws = chains.draws
    n, c, s, d = draws.shape
    dataset = az.convert_to_dataset({"theta": draws.transpose(1, 2, 0, 3)})
    ess = az.ess(dataset, method="bulk")["theta"].to_numpy()
    rhat = az.rhat(dataset, method="rank")["theta"].to_numpy()
    pooled = draws.reshape(n, c * s, d)
    columns = {"acceptance": chains.acceptance.mean(axis=1), "step": chains.step}
    for k, name in enumerate(chains.names):
        columns[f"mean_{name}"] = pooled[..., k].mean(axis=1)
        columns[f"std_{name}"] = pooled[..., k].std(axis=1, ddof=1)
        columns[f"ess_bulk_{name}"] = ess[:, k]
        columns[f"rhat_{name}"] = rhat[:, k]
    return pd.DataFrame(columns)


def kde_factors(
    u: np.ndarray, v: np.ndarray, lr_size: int, upsample: int, sigma_y: float, normalize: Normalize
) -> tuple[np.ndarray, np.ndarray]:
    """Factors a [..., sH], b [..., sW] with y = a (x) b the normalised KDE of one emitter at
    (u, v) (LR px): `physics.kde.kde_images` for M = 1, whose max is max(a) * max(b)."""
    side = upsample * lr_size
    a = pixel_integrals(upsample * np.asarray(u), side, sigma_y)
    b = pixel_integrals(upsample * np.asarray(v), side, sigma_y)
    if normalize == "max":
        return a / a.max(axis=-1, keepdims=True), b / b.max(axis=-1, keepdims=True)
    if normalize == "peak":
        return a / isolated_peak(sigma_y), b
    raise ValueError(f"kde normalisation must be 'max' or 'peak', got {normalize!r}")


def _bmm_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched a^T b of float64 [N, S, I] and [N, S, J] -> [N, I, J], on one thread (same bits
    whatever the machine's thread settings)."""
    with torch_threads(1):
        return torch.bmm(torch.from_numpy(a).transpose(1, 2), torch.from_numpy(b)).numpy()


def push_forward(
    u: np.ndarray,
    v: np.ndarray,
    lr_size: int,
    upsample: int,
    sigma_y: float,
    normalize: Normalize,
    batch: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and variance (ddof=1) of the KDE y(theta) over posterior samples.

    u, v [N, S] are S samples (LR px) for each of N images; each sample's KDE is normalised like
    the training targets. One emitter's KDE is an outer product a (x) b (`kde_factors`), so the
    sums over samples of y and y^2 are matrix products, accumulated `batch` samples at a time
    (memory ~ 2 * 8 * N * batch * sH bytes). Returns float64 [N, sH, sW] each.
    """
    n, s = u.shape
    if s < 2:
        raise ValueError("the push-forward variance needs at least 2 samples per image")
    side = upsample * lr_size
    total, squares = np.zeros((n, side, side)), np.zeros((n, side, side))
    for first in range(0, s, batch):
        a, b = kde_factors(
            u[:, first : first + batch],
            v[:, first : first + batch],
            lr_size,
            upsample,
            sigma_y,
            normalize,
        )
        total += _bmm_t(a, b)
        squares += _bmm_t(a * a, b * b)
    mean = total / s
    var = np.maximum(squares - total * mean, 0.0) / (s - 1)
    return mean, var

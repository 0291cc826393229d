"""Conditional DDPM psi (paper section 3.2, appendices A.1-A.2): schedules, loss and samplers.

Conventions. KDEs y and phi's estimate yhat are in [0, c], c the KDE ceiling (`kde_ceiling`: 1
for kde.normalize: max, kde.ceiling molecules for peak); the data space is y0 = 2 y / c - 1 in
[-1, 1], and below "yhat" means yhat / c. The condition c [B, C, H, W] (`diffloc.data.condition`: channel 0 is yhat, then for
`diffusion.condition: yhat_x` the camera image's photon channel) is concatenated to the input.
The diffused variable x0 is y0 (`target: full`, paper) or the residual y0 - (2 yhat - 1)
(`target: residual`, in [-2, 2]), divided by `target_scale` s (default 1). A scale below 1
magnifies a target whose spread is small against the unit noise of the schedule (the exact
posterior std of a bright isolated emitter's KDE is ~0.03 in data space, about the noise floor
sqrt(1 - gamma_1) of the default schedule), so that the noise levels where its posterior is
resolved are not crowded into the schedule's last few steps. Forward process: x_t = sqrt(gamma_t) x0 + sqrt(1 - gamma_t) eps,
t = 1..T, gamma_0 = 1. The network sees (x_t, c) and t / T in [0, 1] and outputs eps, x0 or
v = sqrt(gamma_t) eps - sqrt(1 - gamma_t) x0 (`prediction`).

Clamp. Samplers clamp the predicted y0 to [-1, 1]. With `target: residual` the clamp applies in
data space, x0^ <- (clamp(s x0^ + c', -1, 1) - c') / s with c' = 2 yhat - 1, i.e. the residual is kept
inside [-2 yhat, 2 - 2 yhat] so that the implied KDE lies in [0, 1]; clamping the residual itself
to [-1, 1] would be wrong. The noise estimate is recomputed from the clamped x0^.

Samplers walk a decreasing subsequence tau of S steps from T to 1 (all T steps when S = T),
then to 0; between consecutive tau (t -> p) the effective beta is 1 - gamma_t / gamma_p.
`ancestral` (eq. 5): posterior mean, variance beta; `ancestral_posterior`: variance
beta~ = (1 - gamma_p) / (1 - gamma_t) beta; `paper_a1` (A.1): y_p ~ N(sqrt(gamma_p) y0^,
(1 - gamma_p) I); `ddim`: sqrt(gamma_p) y0^ + sqrt(1 - gamma_p - sigma^2) eps^ + sigma z with
sigma^2 = eta^2 beta~ (eta = 1 coincides with ancestral_posterior, draw for draw);
`dpmpp_2m`: DPM-Solver++(2M) (Lu et al. 2022), the second-order multistep solver of the same
ODE as ddim with eta = 0, one network call per step. The last step (p = 0) returns the clamped
y0^ in every sampler (no noise, as in Ho et al. 2020). `spacing` picks tau: uniform in t, or
uniform in log SNR. With an exact denoiser on a Gaussian toy problem and S = 20 steps, ddim
(eta 0 or 1, either spacing) loses over 20 % of the posterior variance (up to ~80 % with uniform
spacing) for posterior stds <= 0.5, while dpmpp_2m with logsnr spacing stays within 6 %
(tests/test_diffusion.py); this is why the CPU default uses dpmpp_2m.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from diffloc.config import SCHEDULE_PARAMS, kde_ceiling
from diffloc.data.condition import Condition
from diffloc.data.models import load_model
from diffloc.psi.unet import UNet

TARGETS = ("full", "residual")
PREDICTIONS = ("eps", "x0", "v")
WEIGHTINGS = ("uniform", "vlb")
NORMS = ("l2", "l1")
SAMPLERS = ("ancestral", "ancestral_posterior", "paper_a1", "ddim", "dpmpp_2m")
SPACINGS = ("uniform", "logsnr")

Net = Callable[..., torch.Tensor]  # net(x [B, 1 + C, H, W], t [B] in [0, 1]) -> [B, 1, H, W]


@dataclass(frozen=True)
class Schedule:
    """A noise schedule: betas[t - 1] = beta_t for t = 1..T, stored in float64."""

    betas: np.ndarray

    def __post_init__(self):
        b = np.asarray(self.betas, dtype=np.float64)
        if b.ndim != 1 or b.size < 1 or not np.all((b > 0) & (b < 1)):
            raise ValueError("betas must be a non-empty 1-D array with values in (0, 1)")
        object.__setattr__(self, "betas", b)

    @property
    def T(self) -> int:
        """Number of diffusion steps."""
        return self.betas.size

    @property
    def gammas(self) -> np.ndarray:
        """gamma_t = prod_{s <= t} (1 - beta_s) for t = 0..T (gamma_0 = 1), shape [T + 1]."""
        return np.concatenate([[1.0], np.cumprod(1.0 - self.betas)])

    @property
    def snr(self) -> np.ndarray:
        """SNR_t = gamma_t / (1 - gamma_t) for t = 0..T (SNR_0 = inf), shape [T + 1]."""
        g = self.gammas
        with np.errstate(divide="ignore"):
            return g / (1.0 - g)

    @classmethod
    def from_config(cls, cfg: dict) -> "Schedule":
        """Build from `diffusion.schedule` ({kind: linear|cosine, T, kind-specific keys})."""
        kind, T = cfg["kind"], int(cfg["T"])
        if kind == "linear":
            return linear_schedule(T, cfg["beta_start"], cfg["beta_end"])
        if kind == "cosine":
            return cosine_schedule(T, cfg["offset"], cfg["max_beta"])
        raise ValueError(f"unknown schedule kind {kind!r}; allowed: {list(SCHEDULE_PARAMS)}")


def linear_schedule(T: int, beta_start: float, beta_end: float) -> Schedule:
    """beta_t linear from beta_start (t = 1) to beta_end (t = T) (Ho et al. 2020; paper 4)."""
    return Schedule(np.linspace(beta_start, beta_end, T, dtype=np.float64))


def cosine_schedule(T: int, offset: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Nichol & Dhariwal (2021): gamma_t = f(t) / f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2)."""
    f = np.cos((np.arange(T + 1) / T + offset) / (1 + offset) * np.pi / 2) ** 2
    return Schedule(np.minimum(1.0 - f[1:] / f[:-1], max_beta))


@dataclass(frozen=True)
class Sampler:
    """Reverse-process settings: kind (SAMPLERS), steps S in 1..T, spacing (SPACINGS), ddim eta."""

    kind: str
    steps: int
    spacing: str = "uniform"
    eta: float = 0.0

    def __post_init__(self):
        if self.kind not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.kind!r}; allowed: {list(SAMPLERS)}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"unknown step spacing {self.spacing!r}; allowed: {list(SPACINGS)}")
        if self.steps < 1 or not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"sampler needs steps >= 1 and eta in [0, 1], got {self}")
        if self.kind != "ddim" and self.eta != 0.0:
            raise ValueError(f"eta applies to ddim only, got eta={self.eta} for {self.kind}")

    @classmethod
    def from_config(cls, cfg: dict) -> "Sampler":
        """Build from `diffusion.sampler` (eta present for ddim only)."""
        return cls(cfg["kind"], int(cfg["steps"]), cfg["spacing"], float(cfg.get("eta", 0.0)))


@dataclass(frozen=True)
class Trajectory:
    """One reverse run per image: steps t (T .. 0), and per step y_t and the predicted y0.

    `y_t` [N, S + 1, H, W] is the noisy state in the y scale, (y_t + 1) / 2 with
    y_t = sqrt(gamma_t) y0 + sqrt(1 - gamma_t) eps (in the residual case the state plus
    sqrt(gamma_t) (2 yhat - 1), i.e. the same quantity); `y0_hat` [N, S + 1, H, W] is the
    clamped prediction of y in [0, 1] at each step (the last entry is the sample itself).
    """

    t: list[int]
    y_t: torch.Tensor
    y0_hat: torch.Tensor


def timesteps(schedule: Schedule, steps: int, spacing: str = "uniform") -> list[int]:
    """Strictly decreasing S-step subsequence of 1..T from T to 1.

    uniform: evenly spaced in t; logsnr: evenly spaced in log SNR_t (more steps at low noise).
    Real-valued positions are rounded, then nudged apart so that all S steps are distinct.
    """
    T = schedule.T
    if not 1 <= steps <= T:
        raise ValueError(f"sampler steps must be in 1..T = {T}, got {steps}")
    if steps == 1:
        return [T]
    if spacing == "uniform":
        ideal = np.linspace(T, 1, steps)
    elif spacing == "logsnr":
        lam = np.log(schedule.snr[1:])  # decreasing in t = 1..T
        ideal = np.interp(np.linspace(lam[-1], lam[0], steps), lam[::-1], np.arange(T, 0, -1))
    else:
        raise ValueError(f"unknown step spacing {spacing!r}; allowed: {list(SPACINGS)}")
    tau = np.floor(ideal + 0.5).astype(int)
    for i in range(steps - 2, -1, -1):
        tau[i] = max(tau[i], tau[i + 1] + 1)
    for i in range(steps):
        tau[i] = min(tau[i], T - i)
    return [int(v) for v in tau]


def _check_images(name: str, a: torch.Tensor, hi: float = 1.0) -> None:
    """ValueError unless `a` is finite with values in [0, hi] (hi: the KDE ceiling)."""
    if not torch.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if a.numel() and (a.min() < 0 or a.max() > hi):
        raise ValueError(
            f"{name} must lie in [0, {hi:g}] (the KDE range: [0, 1] for kde.normalize: max, "
            f"[0, kde.ceiling] for peak), got [{a.min().item():.4g}, {a.max().item():.4g}]"
        )


def _check_condition(cond: torch.Tensor, hi: float = 1.0) -> None:
    """ValueError unless the condition [B, C, H, W] is finite with yhat (channel 0) in [0, hi]."""
    _check_images("yhat", cond[:, :1], hi)
    if not torch.isfinite(cond[:, 1:]).all():
        raise ValueError("the condition's photon channel contains NaN or infinite values")


class Diffusion:
    """The diffusion process psi is trained and sampled with (see the module docstring)."""

    def __init__(
        self,
        schedule: Schedule,
        target: str = "full",
        prediction: str = "eps",
        weighting: str = "uniform",
        norm: str = "l2",
        ceiling: float = 1.0,
        scale: float = 1.0,
    ):
        if not ceiling > 0:
            raise ValueError(f"the KDE ceiling must be positive, got {ceiling}")
        if not scale > 0:
            raise ValueError(f"diffusion target_scale must be positive, got {scale}")
        for name, value, allowed in (
            ("target", target, TARGETS),
            ("prediction", prediction, PREDICTIONS),
            ("loss.weighting", weighting, WEIGHTINGS),
            ("loss.norm", norm, NORMS),
        ):
            if value not in allowed:
                raise ValueError(f"diffusion {name} {value!r}; allowed: {list(allowed)}")
        self.schedule = schedule
        self.T = schedule.T
        self.target, self.prediction = target, prediction
        self.weighting, self.norm = weighting, norm
        self.ceiling = float(ceiling)  # KDE value mapped to +1 in data space (kde_ceiling)
        self.scale = float(scale)  # data-space target = scale * diffused variable
        self.gammas = torch.from_numpy(schedule.gammas)  # float64 [T + 1]
        self.loss_weights = torch.from_numpy(vlb_weights(schedule, prediction))  # [T + 1]

    @classmethod
    def from_config(cls, cfg: dict, ceiling: float = 1.0) -> "Diffusion":
        """Build from the `diffusion` config section and the KDE ceiling (`kde_ceiling`)."""
        return cls(
            Schedule.from_config(cfg["schedule"]),
            cfg["target"],
            cfg["prediction"],
            cfg["loss"]["weighting"],
            cfg["loss"]["norm"],
            ceiling,
            cfg["target_scale"],
        )

    def _unit(self, cond: torch.Tensor) -> torch.Tensor:
        """The condition with yhat (channel 0) divided by the ceiling: the [0, 1] scale that
        data space y0 = 2 y / ceiling - 1 is built on."""
        if self.ceiling == 1.0:
            return cond
        return torch.cat([cond[:, :1] / self.ceiling, cond[:, 1:]], dim=1)

    # ----- coefficients and parametrisations -----------------------------------------------
    def _coef(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sqrt(gamma_t), sqrt(1 - gamma_t)) as [B, 1, 1, 1] in the dtype/device of `like`."""
        g = self.gammas[t.cpu()].to(device=like.device)
        shape = (-1,) + (1,) * (like.ndim - 1)
        return g.sqrt().to(like.dtype).view(shape), (1 - g).sqrt().to(like.dtype).view(shape)

    def _shift(self, yhat: torch.Tensor) -> torch.Tensor | float:
        """The data-space offset of the diffused variable: 2 yhat - 1 (residual) or 0 (full)."""
        return 2 * yhat - 1 if self.target == "residual" else 0.0

    def x0_to_data(self, x0: torch.Tensor, yhat: torch.Tensor) -> torch.Tensor:
        """Diffused variable -> y0 in data space ([-1, 1] scale)."""
        return self.scale * x0 + self._shift(yhat)

    def data_to_x0(self, y0: torch.Tensor, yhat: torch.Tensor) -> torch.Tensor:
        """y0 in data space -> the diffused variable (y0 itself or the residual, / scale)."""
        return (y0 - self._shift(yhat)) / self.scale

    def prediction_target(
        self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """What the network regresses: eps, x0 or v = sqrt(gamma) eps - sqrt(1 - gamma) x0."""
        if self.prediction == "eps":
            return eps
        if self.prediction == "x0":
            return x0
        a, s = self._coef(t, x0)
        return a * eps - s * x0

    def to_x0(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Network output at x_t -> the implied x0 prediction (unclamped)."""
        a, s = self._coef(t, x_t)
        if self.prediction == "eps":
            return (x_t - s * out) / a
        if self.prediction == "x0":
            return out
        return a * x_t - s * out

    def clamp_x0(self, x0: torch.Tensor, yhat: torch.Tensor) -> torch.Tensor:
        """Clamp the implied y0 to [-1, 1] (in data space, also for the residual target)."""
        return self.data_to_x0(self.x0_to_data(x0, yhat).clamp(-1.0, 1.0), yhat)

    # ----- forward process, loss, prior term ---------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(gamma_t) x0 + sqrt(1 - gamma_t) eps for per-row steps t (ints in 1..T)."""
        a, s = self._coef(t, x0)
        return a * x0 + s * eps

    def training_loss(
        self, net: Net, y: torch.Tensor, cond: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Scalar loss for a batch of KDEs y [B, 1, H, W] in [0, 1] and conditions cond
        [B, C, H, W] (channel 0: phi's estimate yhat in [0, 1]).

        Draws t ~ U{1..T} and eps ~ N(0, I) from `generator` (also passed to the net for
        dropout, so the net must accept net(x, t, generator)). uniform: mean over pixels and
        rows of |out - target|^p (p = 2 for l2, 1 for l1); vlb: eq. 8 per pixel,
        (T / 2) mean_rows(w_t mean_pixels(|out - target|^p)) with `vlb_weights` (a bound on
        -log p in nats per pixel, up to the prior term and constants, for l2 only).
        """
        if y.ndim != 4 or y.shape[1] != 1 or cond.ndim != 4 or y[:, 0].shape != cond[:, 0].shape:
            raise ValueError(
                f"y must be [B, 1, H, W] and the condition [B, C, H, W] of the same B, H, W, got "
                f"{list(y.shape)} and {list(cond.shape)}"
            )
        _check_images("y", y, self.ceiling)
        _check_condition(cond, self.ceiling)
        y, cond = y / self.ceiling, self._unit(cond)
        yhat = cond[:, :1]
        b = y.shape[0]
        t = torch.randint(1, self.T + 1, (b,), generator=generator, device=generator.device)
        eps = torch.randn(y.shape, generator=generator, device=generator.device).to(y)
        t = t.cpu()
        x0 = self.data_to_x0(2 * y - 1, yhat)
        x_t = self.q_sample(x0, t, eps)
        out = net(torch.cat([x_t, cond], dim=1), t.to(y.device, y.dtype) / self.T, generator)
        err = out.float() - self.prediction_target(x0, eps, t).float()
        per_row = (err.square() if self.norm == "l2" else err.abs()).flatten(1).mean(1)
        if self.weighting == "uniform":
            return per_row.mean()
        w = self.loss_weights[t].to(per_row)
        return 0.5 * self.T * (w * per_row).mean()

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """KL(q(x_T | x0) || N(0, 1)) per pixel in nats (eq. 7's first term), same shape as x0."""
        g = float(self.schedule.gammas[-1])
        return 0.5 * (g * x0.double().square() - g - math.log1p(-g))

    def schedule_report(self, y: torch.Tensor, yhat: torch.Tensor) -> dict[str, float]:
        """gamma_T, SNR_T and the prior KL (nats/pixel) for background and for a batch (y, yhat)
        in KDE units."""
        y, yhat = y / self.ceiling, yhat / self.ceiling
        background = self.data_to_x0(torch.full((1,), -1.0), torch.zeros(1))
        return {
            "gamma_T": float(self.schedule.gammas[-1]),
            "snr_T": float(self.schedule.snr[-1]),
            "prior_kl_background": float(self.prior_kl(background)),
            "prior_kl_data": float(self.prior_kl(self.data_to_x0(2 * y - 1, yhat)).mean()),
        }

    # ----- sampling ----------------------------------------------------------------------
    def _reverse(
        self,
        net: Net,
        cond: torch.Tensor,
        x: torch.Tensor,
        noise: Callable[[], torch.Tensor],
        sampler: Sampler,
        record: list | None = None,
    ) -> torch.Tensor:
        """Run the reverse chain from x = x_T for rows with conditions cond ([B, C, H, W]).

        `noise()` returns a fresh N(0, I) draw shaped like x. Returns the clamped x0^ (x-space).
        If `record` is a list, (t, x_t, clamped x0^) are appended for every step.
        """
        steps = timesteps(self.schedule, sampler.steps, sampler.spacing)
        g = self.schedule.gammas
        b, yhat = x.shape[0], cond[:, :1]
        previous = None  # dpmpp_2m: (x0^, h) of the step before
        for i, t in enumerate(steps):
            p = steps[i + 1] if i + 1 < len(steps) else 0
            tt = torch.full((b,), t, dtype=torch.long)
            out = net(torch.cat([x, cond], dim=1), tt.to(x.device, x.dtype) / self.T)
            x0 = self.clamp_x0(self.to_x0(out.to(x.dtype), x, tt), yhat)
            if record is not None:
                record.append((t, x, x0))
            if p == 0:
                x = x0
                break
            gt, gp = g[t], g[p]
            beta = 1.0 - gt / gp
            if sampler.kind == "dpmpp_2m":
                h = 0.5 * math.log(gp * (1 - gt) / (gt * (1 - gp)))  # lambda_p - lambda_t
                d = x0
                if previous is not None:
                    half_r = 0.5 * h / previous[1]
                    d = (1 + half_r) * x0 - half_r * previous[0]
                previous = (x0, h)
                mean = math.sqrt((1 - gp) / (1 - gt)) * x - math.sqrt(gp) * math.expm1(-h) * d
                var = 0.0
            elif sampler.kind in ("ancestral", "ancestral_posterior"):
                mean = (math.sqrt(gp) * beta / (1 - gt)) * x0 + (
                    math.sqrt(1 - beta) * (1 - gp) / (1 - gt)
                ) * x
                var = beta if sampler.kind == "ancestral" else beta * (1 - gp) / (1 - gt)
            elif sampler.kind == "paper_a1":
                mean, var = math.sqrt(gp) * x0, 1 - gp
            else:  # ddim
                var = sampler.eta**2 * beta * (1 - gp) / (1 - gt)
                eps = (x - math.sqrt(gt) * x0) / math.sqrt(1 - gt)
                mean = math.sqrt(gp) * x0 + math.sqrt(max(1 - gp - var, 0.0)) * eps
            x = mean + math.sqrt(var) * noise() if var > 0 else mean
        if record is not None:
            record.append((0, x, x))
        return x

    def _prepare(self, cond: torch.Tensor) -> torch.Tensor:
        """Validate a condition (yhat [N, H, W], or [N, C, H, W] with yhat in channel 0) and
        return it as float32 [N, C, H, W]."""
        if cond.ndim == 3:
            cond = cond[:, None]
        if cond.ndim != 4:
            raise ValueError(
                f"the condition must be yhat [N, H, W] or [N, C, H, W], got {list(cond.shape)}"
            )
        _check_condition(cond, self.ceiling)
        return self._unit(cond.float())

    def _image_generators(
        self, n: int, generator: torch.Generator, device: torch.device
    ) -> list[torch.Generator]:
        """One generator per image, seeded in order from `generator` (batching-invariant)."""
        seeds = torch.randint(0, 2**62, (n,), generator=generator, device=generator.device)
        return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds.tolist()]

    @torch.inference_mode()
    def sample(
        self,
        net: Net,
        cond: torch.Tensor,
        k: int,
        generator: torch.Generator,
        sampler: Sampler,
        batch_size: int,
    ) -> torch.Tensor:
        """K posterior samples of y per image: [N, K, H, W] float32 on the CPU, values in
        [0, ceiling] (KDE units).

        cond: the condition (`diffloc.data.condition`) [N, C, H, W], or yhat [N, H, W] in
        [0, ceiling],
        on the device the net runs on. Each image gets its own generator seeded from
        `generator`, so results do not depend on `batch_size` (network inputs per forward pass,
        rounded to whole images: at least K).
        """
        cond = self._prepare(cond)
        if k < 1 or batch_size < 1:
            raise ValueError(f"need k >= 1 and batch_size >= 1, got k={k}, batch={batch_size}")
        n, _, h, w = cond.shape
        gens = self._image_generators(n, generator, cond.device)
        per_batch = max(1, batch_size // k)
        out = torch.empty((n, k, h, w), dtype=torch.float32)
        for start in range(0, n, per_batch):
            g = gens[start : start + per_batch]
            c = cond[start : start + per_batch].repeat_interleave(k, dim=0)

            def noise(g=g):
                return torch.cat(
                    [torch.randn((k, 1, h, w), generator=gi, device=gi.device) for gi in g]
                )

            x0 = self._reverse(net, c, noise(), noise, sampler)
            y = ((self.x0_to_data(x0, c[:, :1]) + 1) / 2).clamp(0.0, 1.0)  # clamped x0: rounding
            out[start : start + len(g)] = (self.ceiling * y).view(len(g), k, h, w).float().cpu()
        return out

    @torch.inference_mode()
    def trajectory(
        self, net: Net, cond: torch.Tensor, generator: torch.Generator, sampler: Sampler
    ) -> Trajectory:
        """One reverse run per image of condition cond (as in `sample`) with every step recorded
        (for Figure 3); see Trajectory.

        Uses the same per-image seeding as `sample`, so its final state equals `sample` with k=1.
        """
        cond = self._prepare(cond)
        yhat = cond[:, :1]
        n, _, h, w = cond.shape
        gens = self._image_generators(n, generator, cond.device)

        def noise():
            return torch.cat(
                [torch.randn((1, 1, h, w), generator=gi, device=gi.device) for gi in gens]
            )

        record: list = []
        self._reverse(net, cond, noise(), noise, sampler, record)
        shift = self._shift(yhat)
        g = self.schedule.gammas
        y_t = [(self.scale * x + math.sqrt(g[t]) * shift + 1) / 2 for t, x, _ in record]
        y0 = [(self.x0_to_data(x0, yhat) + 1) / 2 for _, _, x0 in record]
        return Trajectory(
            [t for t, _, _ in record],
            self.ceiling * torch.cat(y_t, dim=1).float().cpu(),
            self.ceiling * torch.cat(y0, dim=1).float().cpu(),
        )


def vlb_weights(schedule: Schedule, prediction: str) -> np.ndarray:
    """Eq. 8 weights w_t, t = 0..T ([T + 1], w_0 unused), for |out - target|^2 per pixel.

    For t >= 2 the KL of A.2 is (1/2)(SNR_{t-1} - SNR_t) |x0 - x0^|^2, i.e. in the network's
    own parametrisation: x0: SNR_{t-1} - SNR_t; eps: SNR_{t-1}/SNR_t - 1 (eq. 8);
    v: (SNR_{t-1} - SNR_t) (1 - gamma_t). For t = 1 (SNR_0 = inf) the term is the Gaussian
    decoder -log N(x0; x0^, beta_1) up to a constant, weight 1 / beta_1 in x0 units
    (= 1 + SNR_1), converted the same way, so that every step is trained.
    """
    snr, g = schedule.snr, schedule.gammas
    w_x0 = np.empty(schedule.T + 1)
    w_x0[0] = np.nan
    w_x0[1] = 1.0 / schedule.betas[0]
    w_x0[2:] = snr[1:-1] - snr[2:]
    if prediction == "x0":
        return w_x0
    if prediction == "eps":
        return w_x0 / snr
    if prediction == "v":
        return w_x0 * (1.0 - g)
    raise ValueError(f"unknown prediction {prediction!r}; allowed: {list(PREDICTIONS)}")


def build_psi(config: dict) -> tuple[UNet, Diffusion]:
    """The U-Net (1 + C input channels for `diffusion.condition`) and diffusion process of a full
    study config (geometry, kde and diffusion sections)."""
    size = config["geometry"]["lr_size"] * config["geometry"]["upsample"]
    cfg = config["diffusion"]
    channels = 1 + Condition.from_config(config).channels
    ceiling = kde_ceiling(config["kde"])
    return UNet.from_config(cfg["unet"], size, channels), Diffusion.from_config(cfg, ceiling)


def load_psi(
    path, device: torch.device, condition: str | None = None
) -> tuple[UNet, "Diffusion", dict]:
    """psi saved by `train_psi`: the U-Net on `device` (channels_last, eval mode), the diffusion
    process it was trained with, and the model file's metadata (its `config` builds the
    condition: `Condition.from_config`). `condition`: the diffusion.condition the caller has
    inputs for (ValueError naming the file if psi was trained with another); None: the caller
    can build either."""
    built: dict = {}

    def build(cfg: dict) -> UNet:
        """Inside load_model, so a config this code cannot build names the file."""
        net, built["diffusion"] = build_psi(cfg)
        return net

    net, meta = load_model(path, build)
    trained = meta["config"]["diffusion"]["condition"]
    if condition is not None and trained != condition:
        raise ValueError(
            f"{path}: psi was trained with diffusion.condition {trained!r}, but its inputs here "
            f"are for {condition!r}; retrain psi or use the config it was trained with"
        )
    return net.to(device, memory_format=torch.channels_last), built["diffusion"], meta

"""Camera noise model and the Poisson-approximation likelihood.

x_k = g_k * Poisson(omega_k) + N(o_k, w_k^2) in ADU, with per-pixel gain g (ADU per
photoelectron), offset o (ADU) and readout variance w^2 (ADU^2). A scalar camera is the special
case of constant maps.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln


@dataclass(frozen=True)
class Camera:
    """Per-pixel camera maps, each float32 [H, W]: gain (ADU/e-), offset (ADU), readout_var (ADU^2)."""

    gain: np.ndarray
    offset: np.ndarray
    readout_var: np.ndarray

    def __post_init__(self) -> None:
        shapes = {self.gain.shape, self.offset.shape, self.readout_var.shape}
        if len(shapes) != 1 or len(self.gain.shape) != 2:
            raise ValueError(f"camera maps must share one 2-D shape, got {sorted(shapes)}")
        if not (np.all(self.gain > 0) and np.all(self.readout_var >= 0)):
            raise ValueError("camera gain must be > 0 and readout variance >= 0 everywhere")
        for name in ("gain", "offset", "readout_var"):
            arr = getattr(self, name)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"camera map {name!r} has non-finite values")

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape [H, W] in LR pixels."""
        return self.gain.shape

    @classmethod
    def scalar(cls, shape: tuple[int, int], gain: float, offset: float, readout_var: float):
        """Camera with the same gain, offset and readout variance on every pixel."""
        maps = (np.full(shape, value, dtype=np.float32) for value in (gain, offset, readout_var))
        return cls(*maps)

    @classmethod
    def scmos(
        cls,
        shape: tuple[int, int],
        gain: float,
        offset: float,
        readout_var: float,
        gain_log_std: float,
        offset_std: float,
        readout_var_log_std: float,
        rng: np.random.Generator,
    ):
        """sCMOS camera: log-normal gain and readout variance around the given medians, normal offset."""
        g = gain * np.exp(gain_log_std * rng.standard_normal(shape))
        o = offset + offset_std * rng.standard_normal(shape)
        w2 = readout_var * np.exp(readout_var_log_std * rng.standard_normal(shape))
        return cls(g.astype(np.float32), o.astype(np.float32), w2.astype(np.float32))

    def _maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            self.gain.astype(np.float64),
            self.offset.astype(np.float64),
            self.readout_var.astype(np.float64),
        )

    def sample(self, omega: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw camera images x (ADU, float64) for expected photon counts omega [..., H, W]."""
        g, o, w2 = self._maps()
        photoelectrons = rng.poisson(omega)
        readout = rng.standard_normal(omega.shape)
        return g * photoelectrons + o + np.sqrt(w2) * readout

    def photoelectrons(self, x: np.ndarray) -> np.ndarray:
        """Offset-subtracted, gain-corrected image (x - o)/g in photoelectrons (phi's input)."""
        g, o, _ = self._maps()
        return (np.asarray(x, dtype=np.float64) - o) / g

    def poisson_counts(self, x: np.ndarray, clip: bool = True) -> np.ndarray:
        """Photon-converted counts n = (x - o)/g + w^2/g^2 (Huang et al. 2013), clipped at 0."""
        g, _, w2 = self._maps()
        n = self.photoelectrons(x) + w2 / g**2
        return np.maximum(n, 0.0) if clip else n

    def effective_rate(self, omega: np.ndarray) -> np.ndarray:
        """Rate of the Poisson approximation, omega' = omega + w^2/g^2 (photons)."""
        g, _, w2 = self._maps()
        return np.asarray(omega, dtype=np.float64) + w2 / g**2


def poisson_nll(n: np.ndarray, omega_prime: np.ndarray) -> np.ndarray:
    """Negative log-likelihood sum_k omega'_k - n_k log omega'_k + lgamma(n_k + 1) over [H, W].

    `n` and `omega_prime` broadcast over leading dimensions; the last two axes are summed.
    """
    n = np.asarray(n, dtype=np.float64)
    omega_prime = np.asarray(omega_prime, dtype=np.float64)
    terms = omega_prime - n * np.log(omega_prime) + gammaln(n + 1.0)
    return terms.sum(axis=(-2, -1))

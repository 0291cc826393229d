"""Fisher information and Cramer-Rao lower bound of an isolated emitter.

Under the Poisson approximation pixel k sees `omega'_k = b_k + i0 dE_u dE_v +
w_k^2/g_k^2` photons, and the Fisher information of theta = (u, v, i0) is
`I_ij = sum_k (1/omega'_k) d omega'_k/d theta_i * d omega'_k/d theta_j` (paper A.5). Positions
are in LR pixels (u along rows, v along columns, pixel i covers [i, i+1)); photons are expected
detected photons. Every function is vectorised over emitters: `u`, `v`, `photons` broadcast to a
common shape [...], one isolated emitter per entry, all seen by the same camera.

    var = crlb(u, v, photons, camera, sigma_x)              # [..., 3]: px^2, px^2, photons^2
    std_nm = crlb_std_nm(u, v, photons, camera, sigma_x, 108.3, fit_photons=False)  # [..., 2]
"""

import numpy as np

from diffloc.physics.camera import Camera
from diffloc.physics.psf import expected_counts, pixel_integral_gradients, pixel_integrals

PARAMETERS = ("u", "v", "photons")
_BLOCK = 2048  # emitters per block: bounds memory to ~3 * 8 * _BLOCK * H * W bytes


def rate_gradients(
    u: np.ndarray,
    v: np.ndarray,
    photons: np.ndarray,
    camera: Camera,
    sigma_x: float,
    background: float | np.ndarray = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """omega' [..., H, W] (photons) and its analytic derivatives [..., 3, H, W] by (u, v, i0).

    Derivatives are in photons per LR px for u and v, and per photon (dimensionless) for i0.
    """
    u, v, photons = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (u, v, photons)))
    size = camera.shape[0]
    if camera.shape != (size, size):
        raise ValueError(f"the camera must be square, got maps of shape {camera.shape}")
    omega = expected_counts(
        u[..., None], v[..., None], photons[..., None], size, sigma_x, background
    )
    eu, ev = pixel_integrals(u, size, sigma_x), pixel_integrals(v, size, sigma_x)
    gu, gv = pixel_integral_gradients(u, size, sigma_x), pixel_integral_gradients(v, size, sigma_x)
    i0 = photons[..., None, None]
    grads = np.stack(
        [
            i0 * gu[..., :, None] * ev[..., None, :],
            i0 * eu[..., :, None] * gv[..., None, :],
            eu[..., :, None] * ev[..., None, :],
        ],
        axis=-3,
    )
    return camera.effective_rate(omega), grads


def information_matrix(grads: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Poisson Fisher information [N, d, d], sum_p grads_ip grads_jp weight_p, of N models with
    rate derivatives grads [N, d, P] over P pixels and weights 1/omega' [N, P] (0 where a pixel
    carries no information); units those of grads squared over photons."""
    return np.matmul(grads * weight[:, None, :], grads.transpose(0, 2, 1))


def fisher_information(
    u: np.ndarray,
    v: np.ndarray,
    photons: np.ndarray,
    camera: Camera,
    sigma_x: float,
    background: float | np.ndarray = 0.0,
    fit_photons: bool = True,
) -> np.ndarray:
    """Fisher information [..., d, d] of (u, v, i0) (d = 3) or of (u, v) at known i0 (d = 2).

    Units: 1/px^2 for the position block, 1/photons^2 for i0, 1/(px photons) across. Pixels
    with omega' = 0 (no readout noise, no background, far from the emitter) contribute 0, the
    limit of (d omega')^2 / omega' for a Gaussian tail.
    """
    u, v, photons = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (u, v, photons)))
    shape, d = u.shape, 3 if fit_photons else 2
    flat = [a.reshape(-1) for a in (u, v, photons)]
    out = np.empty((flat[0].size, d, d))
    for start in range(0, out.shape[0], _BLOCK):
        block = slice(start, start + _BLOCK)
        rate, grads = rate_gradients(*(a[block] for a in flat), camera, sigma_x, background)
        grads = grads[:, :d].reshape(grads.shape[0], d, -1)
        rate = rate.reshape(rate.shape[0], -1)
        out[block] = information_matrix(
            grads, np.divide(1.0, rate, out=np.zeros_like(rate), where=rate > 0)
        )
    return out.reshape(*shape, d, d)


def crlb(
    u: np.ndarray,
    v: np.ndarray,
    photons: np.ndarray,
    camera: Camera,
    sigma_x: float,
    background: float | np.ndarray = 0.0,
    fit_photons: bool = True,
) -> np.ndarray:
    """Cramer-Rao bound diag(I^-1) [..., d]: variances of (u, v) in LR px^2 (and of i0 in photons^2).

    With `fit_photons` i0 is a nuisance parameter estimated jointly (d = 3); without it i0 is
    known (d = 2), the setting of an MCMC over (u, v) at known photons.
    """
    info = fisher_information(u, v, photons, camera, sigma_x, background, fit_photons)
    return np.diagonal(np.linalg.inv(info), axis1=-2, axis2=-1).copy()


def crlb_std_nm(
    u: np.ndarray,
    v: np.ndarray,
    photons: np.ndarray,
    camera: Camera,
    sigma_x: float,
    pixel_size_nm: float,
    background: float | np.ndarray = 0.0,
    fit_photons: bool = True,
) -> np.ndarray:
    """sqrt(CRLB) of (u, v) [..., 2] in nm: the smallest possible localisation error per axis."""
    var = crlb(u, v, photons, camera, sigma_x, background, fit_photons)
    return np.sqrt(var[..., :2]) * pixel_size_nm

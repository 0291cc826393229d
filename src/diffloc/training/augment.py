"""Training-batch augmentation by the symmetries of the square (`train.augment`).

The forward model has them: an isotropic Gaussian PSF, pixel i spanning [i, i + 1) on both the
camera and the KDE grid (so a flip maps u -> H - u on both at once), emitters uniform on a
centred disc and camera noise independent and identical per pixel (a scalar camera: an sCMOS
map is fixed to the sensor, so `diffloc.config` refuses `dihedral` with one). Flipping or transposing an image and its
KDE together therefore gives another draw of the same distribution, which the network would
otherwise have to learn eight times.
"""

import numpy as np

from diffloc.training.batches import Arrays

AUGMENTS = ("none", "dihedral")


def dihedral_transform(images: np.ndarray, k: int) -> np.ndarray:
    """Element k (0..7) of the dihedral group of the square on the last two axes of `images`
    [..., H, H]: k & 1 transposes, k & 2 flips the rows, k & 4 flips the columns."""
    out = images
    if k & 1:
        out = np.swapaxes(out, -1, -2)
    if k & 2:
        out = np.flip(out, axis=-2)
    if k & 4:
        out = np.flip(out, axis=-1)
    return out


def dihedral_batch(batch: Arrays, rng: np.random.Generator) -> Arrays:
    """The batch with one random symmetry per image, the same for every array of that image
    (each [B, ..., H, H] with square last axes)."""
    sizes = {a.shape[0] for a in batch.values()}
    if len(sizes) != 1:
        raise ValueError(f"arrays of one batch hold different image counts: {sorted(sizes)}")
    for name, a in batch.items():
        if a.ndim < 3 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"dihedral augmentation needs square images; {name!r} is {a.shape}")
    ops = rng.integers(0, 8, size=sizes.pop())
    out = {name: np.empty_like(a) for name, a in batch.items()}
    for k in np.unique(ops):
        rows = np.flatnonzero(ops == k)
        for name, a in batch.items():
            out[name][rows] = dihedral_transform(a[rows], int(k))
    return out


def augment_batch(batch: Arrays, augment: str, rng: np.random.Generator) -> Arrays:
    """`batch` under the augmentation named `augment` (AUGMENTS); 'none' returns it as is."""
    if augment == "none":
        return batch
    if augment == "dihedral":
        return dihedral_batch(batch, rng)
    raise ValueError(f"train.augment {augment!r}; allowed: {list(AUGMENTS)}")

"""In-memory containers for simulated data: padded emitter scenes and shards of images."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from diffloc.physics.camera import Camera

# Emitter table: one row per emitter; positions in LR pixels from the image corner (pixel i
# covers [i, i+1)) and in nm; u is the first image axis (rows), v the second (columns).
EMITTER_COLUMNS = {
    "image": "int32",  # image index within the shard
    "emitter": "int32",  # emitter index within the image
    "u_px": "float64",
    "v_px": "float64",
    "u_nm": "float64",
    "v_nm": "float64",
    "photons": "float64",  # expected detected photons i0 of this emitter
}


@dataclass(frozen=True)
class Scene:
    """Emitters of N images padded to M per image: u, v in LR px and photons, each [N, M]."""

    u: np.ndarray
    v: np.ndarray
    photons: np.ndarray
    counts: np.ndarray  # [N] number of real emitters; padding slots have photons 0

    @property
    def mask(self) -> np.ndarray:
        """[N, M] True where a slot holds a real emitter."""
        return np.arange(self.u.shape[1]) < self.counts[:, None]

    def to_frame(self, pixel_size_nm: float) -> pd.DataFrame:
        """One row per real emitter (EMITTER_COLUMNS), in image-then-emitter order."""
        image, emitter = np.nonzero(self.mask)
        u, v = self.u[image, emitter], self.v[image, emitter]
        frame = pd.DataFrame(
            {
                "image": image,
                "emitter": emitter,
                "u_px": u,
                "v_px": v,
                "u_nm": u * pixel_size_nm,
                "v_nm": v * pixel_size_nm,
                "photons": self.photons[image, emitter],
            }
        )
        return frame.astype(EMITTER_COLUMNS)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, n_images: int) -> "Scene":
        """Rebuild the padded scene of `n_images` images from an emitter table."""
        image = frame["image"].to_numpy()
        emitter = frame["emitter"].to_numpy()
        counts = np.bincount(image, minlength=n_images)
        m = int(counts.max(initial=0))
        u, v, photons = (np.zeros((n_images, m)) for _ in range(3))
        u[image, emitter] = frame["u_px"].to_numpy()
        v[image, emitter] = frame["v_px"].to_numpy()
        photons[image, emitter] = frame["photons"].to_numpy()
        return cls(u, v, photons, counts)


@dataclass(frozen=True)
class Shard:
    """One shard: camera images x [N, H, W] (ADU), KDEs y [N, sH, sW], camera, emitters, metadata.

    `emitters` is None when only the images were read.
    """

    x: np.ndarray
    y: np.ndarray
    camera: Camera
    emitters: pd.DataFrame | None
    metadata: dict

    @property
    def n_images(self) -> int:
        """Number of images N in the shard."""
        return self.x.shape[0]

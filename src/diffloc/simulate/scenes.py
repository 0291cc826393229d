"""Scene sampling and shard generation, seeded per (split, shard) from the study seed."""

import numpy as np

from diffloc import seeding
from diffloc.config import config_hash
from diffloc.data.shards import Scene, Shard
from diffloc.physics.camera import Camera
from diffloc.physics.kde import kde_images
from diffloc.physics.psf import expected_counts
from diffloc.provenance import versions
from diffloc.runtime import torch_threads

SHARD_FORMAT = "diffloc.shard/1"


def sample_counts(spec: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """Emitters per image [n] from a count distribution (fixed | poisson | uniform, inclusive)."""
    dist = spec["dist"]
    if dist == "fixed":
        return np.full(n, spec["value"], dtype=np.int64)
    if dist == "poisson":
        return rng.poisson(spec["mean"], size=n).astype(np.int64)
    if dist == "uniform":
        return rng.integers(spec["low"], spec["high"], size=n, endpoint=True, dtype=np.int64)
    raise ValueError(f"unknown emitter-count distribution {dist!r}")


def sample_photons(spec: dict, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Photons per emitter (float64) from a distribution (fixed | uniform | loguniform |
    lognormal); loguniform: log(photons) uniform on [log low, log high]."""
    dist = spec["dist"]
    if dist == "fixed":
        return np.full(shape, float(spec["value"]))
    if dist == "uniform":
        return rng.uniform(spec["low"], spec["high"], size=shape)
    if dist == "loguniform":
        return np.exp(rng.uniform(np.log(spec["low"]), np.log(spec["high"]), size=shape))
    if dist == "lognormal":
        return spec["median"] * np.exp(spec["sigma"] * rng.standard_normal(shape))
    raise ValueError(f"unknown photon distribution {dist!r}")


def sample_background(spec: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """Expected background photons per LR pixel, one per image [n] (float64), from a
    distribution (fixed | uniform | loguniform, the photon distributions' parameters)."""
    if spec["dist"] not in ("fixed", "uniform", "loguniform"):
        raise ValueError(f"unknown background distribution {spec['dist']!r}")
    return sample_photons(spec, (n,), rng)


def sample_scene(
    n_images: int,
    centre: float,
    disc_radius: float,
    n_emitters: dict,
    photons: dict,
    rng: np.random.Generator,
) -> Scene:
    """Emitters uniform on a disc of `disc_radius` LR px around (centre, centre)."""
    counts = sample_counts(n_emitters, n_images, rng)
    m = int(counts.max(initial=0))
    radius = disc_radius * np.sqrt(rng.random((n_images, m)))
    angle = 2.0 * np.pi * rng.random((n_images, m))
    brightness = sample_photons(photons, (n_images, m), rng)
    mask = np.arange(m) < counts[:, None]
    u = np.where(mask, centre + radius * np.cos(angle), 0.0)
    v = np.where(mask, centre + radius * np.sin(angle), 0.0)
    return Scene(u, v, np.where(mask, brightness, 0.0), counts)


def make_camera(camera_cfg: dict, lr_size: int, seed: int) -> Camera:
    """Camera of the `camera` config section; sCMOS maps come from the study seed's camera stream."""
    shape = (lr_size, lr_size)
    gain, offset, w2 = camera_cfg["gain"], camera_cfg["offset"], camera_cfg["readout_var"]
    if camera_cfg["preset"] == "scalar":
        return Camera.scalar(shape, gain, offset, w2)
    if camera_cfg["preset"] == "scmos":
        return Camera.scmos(
            shape, gain, offset, w2, **camera_cfg["scmos"], rng=seeding.rng(seed, "camera")
        )
    raise ValueError(f"unknown camera preset {camera_cfg['preset']!r}")


def render(
    scene: Scene,
    camera: Camera,
    cfg: dict,
    rng: np.random.Generator,
    background: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Camera images x [N, H, W] (ADU) and KDEs y [N, sH, sW], both float32, for a scene;
    background: photons per LR pixel of each image [N] (default: psf.background for all)."""
    geo = cfg["geometry"]
    b = cfg["psf"]["background"] if background is None else background[:, None, None]
    omega = expected_counts(
        scene.u,
        scene.v,
        scene.photons,
        geo["lr_size"],
        cfg["psf"]["sigma_x"],
        b,
    )
    x = camera.sample(omega, rng).astype(np.float32)
    y = kde_images(
        scene.u,
        scene.v,
        scene.mask.astype(np.float64),
        geo["lr_size"],
        geo["upsample"],
        cfg["kde"]["sigma_y"],
        cfg["kde"]["normalize"],
    )
    return x, y


def simulate_shard(shard_cfg: dict) -> Shard:
    """Simulate one shard from its config (`diffloc.config.shard_config`); pure in its input.

    With a `scene.background` distribution, each image's background is drawn after the
    emitters (from the same stream) and listed in metadata["background"] (photons per LR
    pixel, by image); without one, psf.background is used and nothing is added."""
    seed, split, shard = shard_cfg["seed"], shard_cfg["split"], shard_cfg["shard"]
    geo, scene_cfg = shard_cfg["geometry"], shard_cfg["scene"]
    key = ("simulate", split, shard)
    rng = seeding.rng(seed, *key)
    with torch_threads(1):
        camera = make_camera(shard_cfg["camera"], geo["lr_size"], seed)
        scene = sample_scene(
            shard_cfg["n_images"],
            geo["lr_size"] / 2.0,
            scene_cfg["disc_radius"],
            scene_cfg["n_emitters"],
            scene_cfg["photons"],
            rng,
        )
        background = None
        if "background" in scene_cfg:
            background = sample_background(scene_cfg["background"], shard_cfg["n_images"], rng)
        x, y = render(scene, camera, shard_cfg, rng, background)
    metadata = {
        "format": SHARD_FORMAT,
        "split": split,
        "shard": shard,
        "n_images": shard_cfg["n_images"],
        "config_hash": config_hash(shard_cfg),
        "seed": seed,
        "seed_key": list(key),
        "config": shard_cfg,
        "versions": versions(),
    }
    if background is not None:
        metadata["background"] = background.tolist()
    return Shard(x, y, camera, scene.to_frame(geo["pixel_size_nm"]), metadata)

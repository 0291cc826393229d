"""The MCMC stage: chunks of isolated-emitter images -> chains, push-forward maps, diagnostics.

A chunk (`diffloc.mcmc.plan`) is sampled from the random stream ("mcmc", split, setting, chunk),
so its outputs depend only on its config slice (`plan.chunk_config`) and its input shards,
never on scheduling. Outputs (`diffloc.data.mcmc`, written atomically):

- chains Parquet: one row per kept draw (`CHAIN_COLUMNS`), metadata under the schema key `diffloc`
- maps NPZ: `mean`, `var`, `std` float32 [N, sH, sW] of the push-forward y(theta), `image` int32 [N]
- diagnostics CSV: one row per image (`diagnostics_frame`)
"""

import math

import numpy as np
import pandas as pd

from diffloc import seeding
from diffloc.config import SHARD_DIGITS, config_hash
from diffloc.data.files import (
    ShardError,
)
from diffloc.data.mcmc import CHAIN_COLUMNS, FORMAT, ChunkResult
from diffloc.data.shards import Shard
from diffloc.mcmc.sampler import (
    Chains,
    Setting,
    diagnostics,
    emitter_data,
    push_forward,
    sample_emitters,
)
from diffloc.physics.camera import Camera
from diffloc.physics.crlb import crlb
from diffloc.provenance import versions


def _select(cfg: dict, shards: dict[str, Shard], paths: dict[str, str]) -> tuple:
    """Images x [N, H, W] (ADU), camera and truth table of the chunk's images, validated."""
    first, stop = cfg["images"]
    size = cfg["shard_size"]
    xs, truths, camera = [], [], None
    for image in range(first, stop):
        shard_id = f"{image // size:0{SHARD_DIGITS}d}"
        shard, local = shards[shard_id], image % size
        where = paths.get(shard_id, shard_id)
        if local >= shard.n_images:
            raise ShardError(f"{where}: has {shard.n_images} images, image {local} is missing")
        if camera is None:
            camera = shard.camera
        elif not all(
            np.array_equal(getattr(camera, m), getattr(shard.camera, m))
            for m in ("gain", "offset", "readout_var")
        ):
            raise ShardError(f"{where}: camera maps differ from the other shards of the chunk")
        rows = shard.emitters[shard.emitters["image"] == local]
        if len(rows) != 1:
            raise ShardError(f"{where}: image {local} has {len(rows)} emitters, expected 1")
        xs.append(shard.x[local])
        truths.append(rows[["u_px", "v_px", "photons"]].to_numpy()[0])
    return np.stack(xs), camera, np.array(truths)


def run_chunk(
    cfg: dict, shards: dict[str, Shard], paths: dict[str, str] | None = None
) -> ChunkResult:
    """Sample, diagnose and push forward one chunk (`chunk_config`); `shards` maps shard id ->
    Shard (`paths` names their files in error messages). Pure in its inputs."""
    missing = sorted(set(cfg["shards"]) - set(shards))
    if missing:
        raise ValueError(f"chunk needs shards {sorted(cfg['shards'])}, missing {missing}")
    x, camera, truth = _select(cfg, shards, paths or {})
    geo, mc, psf = cfg["geometry"], cfg["mcmc"], cfg["psf"]
    setting = Setting.from_config(cfg["setting"])
    key = ("mcmc", cfg["set"], cfg["setting_name"], cfg["chunk"])
    data = emitter_data(x, camera, psf["sigma_x"], psf["background"], mc["window"], truth[:, 2])
    chains = sample_emitters(
        data,
        setting,
        mc["chains"],
        mc["init_spread"],
        mc["fit_photons"],
        seeding.rng(cfg["seed"], *key),
    )
    images = np.arange(*cfg["images"], dtype=np.int32)
    thinned = chains.thinned(mc["thin"])
    u, v = (thinned.draws[..., k].reshape(len(images), -1) for k in (0, 1))
    mean, var = push_forward(
        u,
        v,
        geo["lr_size"],
        geo["upsample"],
        cfg["kde"]["sigma_y"],
        cfg["kde"]["normalize"],
        mc["pushforward_batch"],
    )
    maps = {"mean": mean.astype(np.float32), "var": var.astype(np.float32)}
    maps["std"] = np.sqrt(maps["var"])
    metadata = {
        "format": FORMAT,
        "set": cfg["set"],
        "setting": cfg["setting_name"],
        "chunk": cfg["chunk"],
        "images": cfg["images"],
        "config_hash": config_hash(cfg),
        "seed": cfg["seed"],
        "seed_key": list(key),
        "config": cfg,
        "versions": versions(),
    }
    return ChunkResult(
        _chains_frame(thinned, images, truth[:, 2], mc["thin"]),
        {**maps, "image": images},
        diagnostics_frame(cfg, chains, images, truth, camera),
        metadata,
    )


def _chains_frame(
    chains: Chains, images: np.ndarray, photons: np.ndarray, thin: int
) -> pd.DataFrame:
    """One row per kept draw (CHAIN_COLUMNS), ordered by image, chain, draw."""
    n, c, s, d = chains.draws.shape
    index = np.indices((n, c, s)).reshape(3, -1)
    draws = chains.draws.reshape(-1, d)
    sampled = draws[:, 2] if d == 3 else np.repeat(photons, c * s)
    frame = pd.DataFrame(
        {
            "image": images[index[0]],
            "chain": index[1],
            "draw": index[2] * thin,
            "u_px": draws[:, 0],
            "v_px": draws[:, 1],
            "photons": sampled,
            "nll": chains.nll.reshape(-1),
        }
    )
    return frame.astype(CHAIN_COLUMNS)


def diagnostics_frame(
    cfg: dict, chains: Chains, images: np.ndarray, truth: np.ndarray, camera: Camera
) -> pd.DataFrame:
    """Per image: sampler diagnostics, posterior mean/std (LR px and nm), error of the posterior
    mean and sqrt(CRLB) at the true position (nm; i0 known unless fitted)."""
    nm = cfg["geometry"]["pixel_size_nm"]
    frame = diagnostics(chains).rename(
        columns={f"{s}_{p}": f"{s}_{p}_px" for s in ("mean", "std") for p in ("u", "v")}
    )
    bound = crlb(
        truth[:, 0],
        truth[:, 1],
        truth[:, 2],
        camera,
        cfg["psf"]["sigma_x"],
        cfg["psf"]["background"],
        cfg["mcmc"]["fit_photons"],
    )
    head = pd.DataFrame(
        {
            "set": cfg["set"],
            "setting": cfg["setting_name"],
            "beta": float(cfg["setting"]["beta"]),
            "image": images,
            "photons": truth[:, 2],
            "u_true_px": truth[:, 0],
            "v_true_px": truth[:, 1],
        }
    )
    extra = {}
    for k, p in enumerate(("u", "v")):
        extra[f"std_{p}_nm"] = frame[f"std_{p}_px"] * nm
        extra[f"error_{p}_nm"] = (frame[f"mean_{p}_px"] - truth[:, k]) * nm
        extra[f"crlb_{p}_nm"] = np.sqrt(bound[:, k]) * nm
    if cfg["mcmc"]["fit_photons"]:
        extra["crlb_photons"] = np.sqrt(bound[:, 2])
    return pd.concat([head, frame, pd.DataFrame(extra)], axis=1)


def summarise(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per (setting, split; column `set`): acceptance, worst R-hat and ESS, posterior std
    against sqrt(CRLB) (nm; expected ratio 1/sqrt(beta)) and calibration of the posterior mean."""
    frame = pd.concat(frames, ignore_index=True)
    rows = []
    for (setting, split), group in frame.groupby(["setting", "set"], sort=False):
        std = group[["std_u_nm", "std_v_nm"]].to_numpy()
        bound = group[["crlb_u_nm", "crlb_v_nm"]].to_numpy()
        error = group[["error_u_nm", "error_v_nm"]].to_numpy()
        ratio = (std / bound).ravel()
        rhat = group.filter(like="rhat_").to_numpy()
        ess = group.filter(like="ess_bulk_").to_numpy()
        beta = float(group["beta"].iloc[0])
        rows.append(
            {
                "setting": setting,
                "set": split,
                "beta": beta,
                "photons": float(group["photons"].iloc[0]),
                "n_images": len(group),
                "acceptance": group["acceptance"].mean(),
                "rhat_max": rhat.max(),
                "ess_bulk_min": ess.min(),
                "std_nm": std.mean(),
                "crlb_nm": bound.mean(),
                "std_over_crlb": ratio.mean(),
                "std_over_crlb_se": ratio.std(ddof=1) / math.sqrt(ratio.size),
                "expected_std_over_crlb": 1.0 / math.sqrt(beta),
                "rmse_nm": math.sqrt(np.mean(error**2)),
                "rmse_over_std": math.sqrt(np.mean((error / std) ** 2)),
            }
        )
    return pd.DataFrame(rows)

"""phi's jobs on tiny data: train, infer, localise, photon sweep, targets, Figure 5."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, SCHEMA_PATH, tiny
from diffloc.config import kde_ceiling, load_config, shard_config
from diffloc.data.shards import read_shard, read_yhat
from diffloc.figures.jobs import fig5
from diffloc.localize.jobs import localize_split, phi_targets, photon_sweep
from diffloc.phi.jobs import infer_phi, train_phi
from diffloc.simulate.jobs import simulate


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    config = tiny(load_config(REPO / "config" / "config.yaml", SCHEMA_PATH))
    root = tmp_path_factory.mktemp("phi_stage")
    files = {}
    for split in ("phi_train", "val", "test", "isolated_200", "isolated_1000"):
        files[split] = []
        for shard in range(2 if split == "phi_train" else 1):
            npz, parquet = root / f"{split}_{shard}.npz", root / f"{split}_{shard}.parquet"
            simulate(shard=shard_config(config, split, shard), npz=str(npz), parquet=str(parquet))
            files[split].append((str(npz), str(parquet)))
    phi = config["phi"]
    train_phi(
        train=[f[0] for f in files["phi_train"]],
        train_emitters=[f[1] for f in files["phi_train"]],
        val=[f[0] for f in files["val"]],
        val_emitters=[f[1] for f in files["val"]],
        model=str(root / "phi.pt"),
        log_csv=str(root / "phi.csv"),
        phi=phi,
        seed=config["seed"],
        upsample=4,
        sigma_y=config["kde"]["sigma_y"],
        ceiling=kde_ceiling(config["kde"]),
        checkpoint=str(root / "phi.ckpt"),
        progress=False,
    )
    return config, root, files


def test_training_writes_model_and_log_and_drops_the_checkpoint(stage):
    _, root, _ = stage
    assert (root / "phi.pt").is_file() and not (root / "phi.ckpt").exists()
    log = pd.read_csv(root / "phi.csv")
    assert list(log.columns) == ["step", "train_loss", "val_loss", "lr", "seconds"]
    assert list(log["step"]) == [2, 4] and np.isfinite(log["val_loss"]).all()
    saved = torch.load(root / "phi.pt", weights_only=True)
    assert saved["metadata"]["network"] == "phi" and saved["config"]["upsample"] == 4
    assert saved["metadata"]["sigma_y"] == 3.0


def test_inference_writes_yhat_with_provenance(stage):
    _, root, files = stage
    out = root / "yhat_test.npz"
    infer_phi(
        model=str(root / "phi.pt"),
        npz=[files["test"][0][0]],
        yhat=[str(out)],
        batch_size=4,
        device="cpu",
        threads=1,
    )
    yhat, meta = read_yhat(out)
    shard = read_shard(files["test"][0][0])
    assert yhat.shape == shard.y.shape and yhat.min() >= 0 and yhat.max() <= 1
    assert meta["data_config_hash"] == shard.metadata["config_hash"]
    with pytest.raises(ValueError, match="1 data shards but 2 yhat outputs"):
        infer_phi(
            model=str(root / "phi.pt"),
            npz=[files["test"][0][0]],
            yhat=[str(root / "a.npz"), str(root / "b.npz")],
            batch_size=4,
            device="cpu",
        )
    assert not (root / "a.npz").exists()


def test_localisation_sweep_targets_and_figure(stage):
    config, root, files = stage
    loc_config = {k: config[k] for k in ("localize", "kde", "geometry")}
    metrics = []
    for split in ("test", "isolated_200", "isolated_1000"):
        npz, parquet = files[split][0]
        yhat_path = root / f"yhat_{split}.npz"
        infer_phi(
            model=str(root / "phi.pt"),
            npz=[npz],
            yhat=[str(yhat_path)],
            batch_size=4,
            device="cpu",
            threads=1,
        )
        for source, kde in (("phi", str(yhat_path)), ("oracle", npz)):
            out = root / f"{source}_{split}"
            localize_split(
                kde=[kde],
                npz=[npz],
                parquet=[parquet],
                table=f"{out}.parquet",
                metrics=f"{out}.csv",
                config=loc_config,
                source=source,
                split=split,
                photons=200.0,
                sigma_y=3.0,
            )
            metrics.append(f"{out}.csv")
    oracle = pd.read_csv(root / "oracle_isolated_200.csv")
    assert set(oracle["convention"]) == {"one_to_one", "nearest"}
    assert (oracle["recall"] == 1.0).all() and (oracle["rmse_nm"] < 1.0).all()  # y0 is exact
    table = pd.read_parquet(root / "oracle_test.parquet")
    assert {"image", "shard", "u_nm", "truth", "error_nm"} <= set(table.columns)

    sweep = root / "sweep.csv"
    isolated = ("isolated_200", "isolated_1000")
    photon_sweep(
        tables={s: [str(root / f"phi_{s}.parquet")] for s in isolated},
        npz={s: [f[0] for f in files[s]] for s in isolated},
        parquet={s: [f[1] for f in files[s]] for s in isolated},
        sweep=str(sweep),
        photons={"isolated_200": 200, "isolated_1000": 1000},
        sigma_x=0.92,
        background=0.0,
        pixel_size_nm=108.3,
        sigma_y=3.0,
        detector="log",
    )
    rows = pd.read_csv(sweep)
    assert list(rows["photons"]) == [200, 1000]
    assert (rows["sigma_y_hr"] == 3.0).all() and (rows["detector"] == "log").all()
    assert rows.loc[0, "crlb_nm"] > rows.loc[1, "crlb_nm"]  # more photons, tighter bound
    targets = {**config["phi"]["targets"], "photons": [200, 1000], "recall_photons": [200]}
    phi_targets(
        metrics=metrics,
        sweeps=[str(sweep)],
        localization=str(root / "loc.csv"),
        sweep=str(root / "sweeps.csv"),
        checks=str(root / "targets.csv"),
        targets=targets,
        split="test",
    )
    checks = pd.read_csv(root / "targets.csv")
    assert list(checks["target"]) == [
        "precision",
        "recall_gap",
        "rmse_over_crlb",
        "rmse_over_crlb",
        "isolated_recall",
    ]  # no dense recall target: it is checked at recall_sigma_y (1.5) only
    assert (checks["sigma_y_hr"] == 3.0).all() and (checks["detector"] == "log").all()
    fig5(
        sweep=root / "sweeps.csv",
        localization=root / "loc.csv",
        png=root / "fig5.png",
        pdf=root / "fig5.pdf",
    )
    assert (root / "fig5.png").stat().st_size > 10_000 and (root / "fig5.pdf").is_file()

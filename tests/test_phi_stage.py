"""phi's rule scripts on tiny data: train, infer, localise, photon sweep, targets, Figure 5."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, SCHEMA_PATH, load_script, tiny
from diffloc.config import load_config, shard_config
from diffloc.data.shards import read_shard, read_yhat
from diffloc.localize.detection import detector_settings


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    config = tiny(load_config(REPO / "config" / "config.yaml", SCHEMA_PATH))
    root = tmp_path_factory.mktemp("phi_stage")
    simulate = load_script("simulate_shard")
    files = {}
    for split in ("phi_train", "val", "test", "isolated_200", "isolated_1000"):
        files[split] = []
        for shard in range(2 if split == "phi_train" else 1):
            npz, parquet = root / f"{split}_{shard}.npz", root / f"{split}_{shard}.parquet"
            simulate.run(shard_config(config, split, shard), str(npz), str(parquet))
            files[split].append((str(npz), str(parquet)))
    phi = config["phi"]
    load_script("train_phi").run(
        phi,
        config["seed"],
        4,
        [f[0] for f in files["phi_train"]],
        [f[0] for f in files["val"]],
        str(root / "phi.pt"),
        str(root / "phi.csv"),
        str(root / "phi.ckpt"),
        threads=1,
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


def test_inference_writes_yhat_with_provenance(stage):
    _, root, files = stage
    out = root / "yhat_test.npz"
    load_script("infer_phi").run(str(root / "phi.pt"), files["test"][0][0], str(out), 4, "cpu", 1)
    yhat, meta = read_yhat(out)
    shard = read_shard(files["test"][0][0])
    assert yhat.shape == shard.y.shape and yhat.min() >= 0 and yhat.max() <= 1
    assert meta["data_config_hash"] == shard.metadata["config_hash"]


def test_localisation_sweep_targets_and_figure(stage):
    config, root, files = stage
    loc = load_script("localize_split")
    settings = detector_settings(config)
    metrics = []
    for split in ("test", "isolated_200", "isolated_1000"):
        npz, parquet = files[split][0]
        yhat_path = root / f"yhat_{split}.npz"
        load_script("infer_phi").run(str(root / "phi.pt"), npz, str(yhat_path), 4, "cpu", 1)
        for source, kde in (("phi", str(yhat_path)), ("oracle", npz)):
            out = root / f"{source}_{split}"
            loc.run(
                source,
                split,
                200.0,
                [kde],
                [npz],
                [parquet],
                settings,
                4,
                108.3,
                5.0,
                f"{out}.parquet",
                f"{out}.csv",
            )
            metrics.append(f"{out}.csv")
    oracle = pd.read_csv(root / "oracle_isolated_200.csv")
    assert set(oracle["convention"]) == {"one_to_one", "nearest"}
    assert (oracle["recall"] == 1.0).all() and (oracle["rmse_nm"] < 1.0).all()  # y0 is exact
    table = pd.read_parquet(root / "oracle_test.parquet")
    assert {"image", "shard", "u_nm", "truth", "error_nm"} <= set(table.columns)

    sweep = root / "sweep.csv"
    load_script("photon_sweep").run(
        [200, 1000],
        [str(root / "phi_isolated_200.parquet"), str(root / "phi_isolated_1000.parquet")],
        [files["isolated_200"], files["isolated_1000"]],
        0.92,
        0.0,
        108.3,
        str(sweep),
    )
    rows = pd.read_csv(sweep)
    assert list(rows["photons"]) == [200, 1000]
    assert rows.loc[0, "crlb_nm"] > rows.loc[1, "crlb_nm"]  # more photons, tighter bound
    targets = config["phi"]["targets"]
    load_script("phi_targets").run(
        metrics, str(sweep), targets, "test", str(root / "loc.csv"), str(root / "targets.csv")
    )
    checks = pd.read_csv(root / "targets.csv")
    assert list(checks["target"]) == ["precision", "recall_gap", "rmse_over_crlb"]
    load_script("fig5").run(
        str(sweep), str(root / "loc.csv"), 3.0, str(root / "fig5.png"), str(root / "fig5.pdf")
    )
    assert (root / "fig5.png").stat().st_size > 10_000 and (root / "fig5.pdf").is_file()

"""psi's rule scripts on tiny data: train (with resume), sample posteriors, Figures 3-4, metrics."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, SCHEMA_PATH, load_script, tiny
from diffloc.config import load_config, shard_config
from diffloc.data.posterior import load_posterior
from diffloc.psi.quality import posterior_quality


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    config = tiny(load_config(REPO / "config" / "config.yaml", SCHEMA_PATH))
    root = tmp_path_factory.mktemp("psi_stage")
    simulate, files = load_script("simulate_shard"), {}
    for split in ("phi_train", "psi_train", "val", "test"):
        npz, parquet = root / f"{split}.npz", root / f"{split}.parquet"
        simulate.run(shard_config(config, split, 0), str(npz), str(parquet))
        files[split] = str(npz)
    load_script("train_phi").run(
        config["phi"],
        config["seed"],
        4,
        [files["phi_train"]],
        [files["val"]],
        str(root / "phi.pt"),
        str(root / "phi.csv"),
        str(root / "phi.ckpt"),
        threads=1,
        progress=False,
    )
    yhat = {}
    for split in ("psi_train", "val", "test"):
        yhat[split] = str(root / f"yhat_{split}.npz")
        load_script("infer_phi").run(str(root / "phi.pt"), files[split], yhat[split], 4, "cpu", 1)
    psi_cfg = {k: config[k] for k in ("geometry", "diffusion")}
    train = load_script("train_psi")
    args = (
        psi_cfg,
        config["seed"],
        [yhat["psi_train"]],
        [files["psi_train"]],
        [yhat["val"]],
        [files["val"]],
    )
    train.run(
        *args,
        str(root / "psi.pt"),
        str(root / "psi.csv"),
        str(root / "psi.ckpt"),
        1,
        progress=False,
    )
    return config, root, files, yhat, train, args


def test_training_saves_ema_weights_with_the_schedule(stage):
    config, root, *_ = stage
    saved = torch.load(root / "psi.pt", weights_only=True)
    meta = saved["metadata"]
    assert meta["network"] == "psi" and meta["weights"] == "ema"
    assert 0 <= meta["schedule"]["gamma_T"] < 1e-3  # the default schedule reaches gamma_T ~ 0
    assert saved["config"]["diffusion"] == config["diffusion"]
    assert list(pd.read_csv(root / "psi.csv")["step"]) == [2, 4]
    assert not (root / "psi.ckpt").exists()


def test_killed_training_resumes_to_the_same_weights(stage, tmp_path):
    _, root, _, _, train, args = stage

    def kill(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.run(
            *args,
            str(tmp_path / "p.pt"),
            str(tmp_path / "p.csv"),
            str(tmp_path / "p.ckpt"),
            1,
            False,
            kill,
        )
    assert (tmp_path / "p.ckpt").exists()
    train.run(
        *args, str(tmp_path / "p.pt"), str(tmp_path / "p.csv"), str(tmp_path / "p.ckpt"), 1, False
    )
    a = torch.load(root / "psi.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "p.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_posterior_chunks_figures_and_metrics(stage):
    config, root, files, yhat, *_ = stage
    post = load_script("posterior_chunk")
    diffusion = config["diffusion"]
    out = [str(root / f"post_{c}.npz") for c in range(2)]
    for chunk, (start, stop) in enumerate(((0, 3), (3, 6))):
        post.run(
            str(root / "psi.pt"),
            "test",
            chunk,
            start,
            stop,
            [yhat["test"]],
            diffusion["sampler"],
            diffusion["summary"],
            "cpu",
            config["seed"],
            out[chunk],
            1,
            progress=False,
        )
    summary, meta = load_posterior(out[1])
    k = diffusion["sampler"]["k"]
    assert summary["mean"].shape == (3, 80, 80) and meta["k"] == k and meta["images"] == [3, 6]
    assert summary["samples"].shape[1] == diffusion["summary"]["raw_samples"]
    again = str(root / "again.npz")
    post.run(
        str(root / "psi.pt"),
        "test",
        1,
        3,
        6,
        [yhat["test"]],
        diffusion["sampler"],
        diffusion["summary"],
        "cpu",
        config["seed"],
        again,
        1,
        progress=False,
    )
    assert open(again, "rb").read() == open(out[1], "rb").read()  # reruns are bit-identical

    load_script("fig3").run(
        str(root / "psi.pt"),
        files["test"],
        yhat["test"],
        0,
        diffusion["sampler"],
        config["seed"],
        str(root / "fig3.png"),
        str(root / "fig3.pdf"),
    )
    load_script("fig4").run(
        out, [files["test"]], [yhat["test"]], 4, str(root / "fig4.png"), str(root / "fig4.pdf")
    )
    for name in ("fig3", "fig4"):
        assert (root / f"{name}.png").stat().st_size > 10_000 and (root / f"{name}.pdf").is_file()
    load_script("psi_metrics").run(
        out, [files["test"]], [yhat["test"]], 0.05, 1.1, str(root / "psi.csv")
    )
    row = pd.read_csv(root / "psi.csv").iloc[0]
    assert row["n_images"] == 6 and row["passed"] == (row["mse_ratio"] <= 1.1)


def test_posterior_quality_on_a_hand_made_case():
    y0 = np.zeros((1, 2, 2))
    y0[0, 0, 0] = 1.0
    yhat = y0 + 0.2  # error 0.2 everywhere
    mean = y0.copy()
    mean[0, 1, 1] = 0.1  # one wrong pixel
    std = np.array([[[0.3, 0.0], [0.0, 0.1]]])
    q = posterior_quality(y0, yhat, mean, std, floor=0.05)
    assert q["mse_phi"] == pytest.approx(0.04) and q["mse_posterior_mean"] == pytest.approx(0.0025)
    assert q["mse_ratio"] == pytest.approx(0.0625)
    assert q["support_fraction"] == 0.5  # (0, 0) by the truth, (1, 1) by the mean
    assert q["std_support"] == pytest.approx(0.2) and q["std_background"] == 0.0
    assert q["std_concentration"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="share one"):
        posterior_quality(y0, yhat[:, :1], mean, std, 0.05)

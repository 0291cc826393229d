"""psi's jobs on tiny data: train (with resume), sample posteriors, Figures 3-4, metrics."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, SCHEMA_PATH, tiny
from diffloc.config import kde_ceiling, load_config, shard_config
from diffloc.data.files import ModelFileError
from diffloc.data.posterior import load_posterior
from diffloc.figures.jobs import fig3, fig4
from diffloc.phi.jobs import infer_phi, train_phi
from diffloc.psi.diffusion import load_psi
from diffloc.psi.jobs import posterior, psi_metrics, train_psi
from diffloc.psi.quality import posterior_quality
from diffloc.simulate.jobs import simulate


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    config = tiny(load_config(REPO / "config" / "config.yaml", SCHEMA_PATH))
    root = tmp_path_factory.mktemp("psi_stage")
    files = {}
    for split in ("phi_train", "psi_train", "val", "test"):
        npz, parquet = root / f"{split}.npz", root / f"{split}.parquet"
        simulate(shard=shard_config(config, split, 0), npz=str(npz), parquet=str(parquet))
        files[split] = str(npz)
    train_phi(
        train=[files["phi_train"]],
        train_emitters=[files["phi_train"].replace(".npz", ".parquet")],
        val=[files["val"]],
        val_emitters=[files["val"].replace(".npz", ".parquet")],
        model=str(root / "phi.pt"),
        log_csv=str(root / "phi.csv"),
        phi=config["phi"],
        seed=config["seed"],
        upsample=4,
        sigma_y=config["kde"]["sigma_y"],
        ceiling=kde_ceiling(config["kde"]),
        checkpoint=str(root / "phi.ckpt"),
        progress=False,
    )
    yhat = {}
    for split in ("psi_train", "val", "test"):
        yhat[split] = str(root / f"yhat_{split}.npz")
        infer_phi(
            model=str(root / "phi.pt"),
            npz=[files[split]],
            yhat=[yhat[split]],
            batch_size=4,
            device="cpu",
            threads=1,
        )
    inputs = {
        "train_yhat": [yhat["psi_train"]],
        "train_npz": [files["psi_train"]],
        "val_yhat": [yhat["val"]],
        "val_npz": [files["val"]],
        "psi": {k: config[k] for k in ("geometry", "kde", "diffusion")},
        "seed": config["seed"],
    }
    train_psi(
        **inputs,
        model=str(root / "psi.pt"),
        log_csv=str(root / "psi.csv"),
        checkpoint=str(root / "psi.ckpt"),
        progress=False,
    )
    return config, root, files, yhat, inputs


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
    _, root, _, _, inputs = stage
    outputs = {
        "model": str(tmp_path / "p.pt"),
        "log_csv": str(tmp_path / "p.csv"),
        "checkpoint": str(tmp_path / "p.ckpt"),
    }

    def kill(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_psi(**inputs, **outputs, progress=False, on_step=kill)
    assert (tmp_path / "p.ckpt").exists()
    train_psi(**inputs, **outputs, progress=False)
    a = torch.load(root / "psi.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "p.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_posterior_chunks_figures_and_metrics(stage):
    config, root, files, yhat, _ = stage
    diffusion = config["diffusion"]

    def sample(chunk, images, out):
        posterior(
            model=str(root / "psi.pt"),
            yhat=[yhat["test"]],
            npz=[files["test"]],
            condition=diffusion["condition"],
            posterior=out,
            split="test",
            chunk=chunk,
            images=images,
            sampler=diffusion["sampler"],
            summary=diffusion["summary"],
            device="cpu",
            seed=config["seed"],
            progress=False,
        )

    out = [str(root / f"post_{c}.npz") for c in range(2)]
    for chunk, images in enumerate(([0, 3], [3, 6])):
        sample(chunk, images, out[chunk])
    summary, meta = load_posterior(out[1])
    k = diffusion["sampler"]["k"]
    assert summary["mean"].shape == (3, 80, 80) and meta["k"] == k and meta["images"] == [3, 6]
    assert summary["samples"].shape[1] == diffusion["summary"]["raw_samples"]
    again = str(root / "again.npz")
    sample(1, [3, 6], again)
    assert open(again, "rb").read() == open(out[1], "rb").read()  # reruns are bit-identical

    fig3(
        model=root / "psi.pt",
        npz=files["test"],
        yhat=yhat["test"],
        png=root / "fig3.png",
        pdf=root / "fig3.pdf",
        image=0,
        sampler=diffusion["sampler"],
        seed=config["seed"],
    )
    fig4(
        posterior=out,
        npz=[files["test"]],
        yhat=[yhat["test"]],
        png=root / "fig4.png",
        pdf=root / "fig4.pdf",
        n_images=4,
    )
    for name in ("fig3", "fig4"):
        assert (root / f"{name}.png").stat().st_size > 10_000 and (root / f"{name}.pdf").is_file()
    psi_metrics(
        posterior=out,
        npz=[files["test"]],
        yhat=[yhat["test"]],
        metrics=str(root / "psi.csv"),
        floor=0.05,
        max_mse_ratio=1.1,
    )
    row = pd.read_csv(root / "psi.csv").iloc[0]
    assert row["n_images"] == 6 and row["passed"] == (row["mse_ratio"] <= 1.1)


def test_psi_of_either_condition_trains_samples_and_refuses_the_other_ones_inputs(stage, tmp_path):
    """psi conditioned on the condition the stage's default did not use (yhat: 2 input channels,
    yhat_x: yhat and the camera image, 3) trains, samples posteriors and Figure 3; a model is
    never used with the inputs of the other condition."""
    config, root, files, yhat, inputs = stage
    default = config["diffusion"]["condition"]
    other = {"yhat": "yhat_x", "yhat_x": "yhat"}[default]
    npz = {"yhat": [], "yhat_x": [files["test"]]}
    psi = copy.deepcopy(inputs["psi"])
    psi["diffusion"]["condition"] = other
    psi["diffusion"]["train"]["steps"] = 2
    model = tmp_path / "psi_other.pt"
    train_psi(
        **{**inputs, "psi": psi},
        model=str(model),
        log_csv=str(tmp_path / "psi_other.csv"),
        checkpoint=str(tmp_path / "psi_other.ckpt"),
        progress=False,
    )
    saved = torch.load(model, weights_only=True)
    assert saved["config"]["diffusion"]["condition"] == other
    patch = psi["diffusion"]["unet"]["patch"]
    channels = {"yhat": 2, "yhat_x": 3}[other]
    assert saved["state_dict"]["conv_in.weight"].shape[1] == channels * patch**2
    diffusion = config["diffusion"]
    job = {
        "yhat": [yhat["test"]],
        "split": "test",
        "chunk": 0,
        "images": [1, 3],
        "sampler": diffusion["sampler"],
        "summary": diffusion["summary"],
        "device": "cpu",
        "seed": config["seed"],
        "progress": False,
    }
    out = tmp_path / "post.npz"
    posterior(model=str(model), npz=npz[other], condition=other, posterior=out, **job)
    summary, meta = load_posterior(out)
    assert summary["mean"].shape == (2, 80, 80) and meta["condition"] == other
    assert np.isfinite(summary["std"]).all()
    bad = tmp_path / "bad.npz"
    with pytest.raises(
        ValueError, match=rf"psi\.pt: psi was trained with diffusion\.condition '{default}'"
    ):
        posterior(model=str(root / "psi.pt"), npz=npz[other], condition=other, posterior=bad, **job)
    with pytest.raises(
        ValueError, match=rf"psi_other\.pt: .* '{other}', but its inputs here are for '{default}'"
    ):
        posterior(model=str(model), npz=npz[default], condition=default, posterior=bad, **job)
    assert not bad.exists()
    fig3(
        model=model,
        npz=files["test"],
        yhat=yhat["test"],
        png=tmp_path / "fig3.png",
        pdf=tmp_path / "fig3.pdf",
        image=0,
        sampler=diffusion["sampler"],
        seed=config["seed"],
    )
    assert (tmp_path / "fig3.png").stat().st_size > 10_000


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


def test_psi_trained_before_target_scale_existed_is_refused_naming_the_file(stage, tmp_path):
    """A psi file whose config predates diffusion.target_scale cannot say how its samples map
    to KDEs: load_psi stops with the file's name and the rebuild hint, not a KeyError."""
    _, root, *_ = stage
    saved = torch.load(root / "psi.pt", weights_only=True)
    del saved["config"]["diffusion"]["target_scale"]
    old = tmp_path / "old_psi.pt"
    torch.save(saved, old)
    with pytest.raises(
        ModelFileError, match=r"old_psi\.pt: not a valid diffloc model file.*target_scale"
    ):
        load_psi(old, torch.device("cpu"))


def test_cropped_training_runs_on_crops_and_changes_the_weights(stage, tmp_path):
    """With diffusion.train_crop the network sees crops (training and validation losses stay
    finite) and ends with other weights than the same seed on whole KDEs."""
    _, root, _, _, inputs = stage
    psi = copy.deepcopy(inputs["psi"])
    psi["diffusion"]["train_crop"] = 40
    train_psi(
        **{**inputs, "psi": psi},
        model=str(tmp_path / "crop.pt"),
        log_csv=str(tmp_path / "crop.csv"),
        checkpoint=str(tmp_path / "crop.ckpt"),
        progress=False,
    )
    log = pd.read_csv(tmp_path / "crop.csv")
    assert np.isfinite(log[["train_loss", "val_loss"]].to_numpy()).all()
    whole = torch.load(root / "psi.pt", weights_only=True)["state_dict"]
    cropped = torch.load(tmp_path / "crop.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(whole[k], cropped[k]) for k in whole)

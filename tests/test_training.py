"""The shared training loop: schedule, exact resume after a kill, logs, safe model files."""

import csv
import pickle

import numpy as np
import pytest
import torch

from diffloc.data.files import ModelFileError
from diffloc.data.models import load_model, save_model
from diffloc.phi.network import Phi, phi_loss
from diffloc.runtime import resolve_device
from diffloc.training.batches import BatchStream, ShardSource, sequential_batches
from diffloc.training.loop import TrainSettings, learning_rate, train


def _settings(**kw):
    base = dict(
        steps=10,
        batch_size=4,
        lr=1e-2,
        warmup_steps=2,
        weight_decay=0.0,
        grad_clip=1.0,
        val_every=4,
        checkpoint_every=3,
        ema_decay=0.0,
        device="cpu",
        cuda_bf16=False,
        threads=1,
        augment="none",
    )
    return TrainSettings(**{**base, **kw})


def _sources():
    rng = np.random.default_rng(0)

    def shard(n):
        photons = rng.poisson(5.0, size=(n, 8, 8)).astype(np.float32)
        y = np.repeat(np.repeat(photons, 4, 1), 4, 2) / 20.0
        return ShardSource(n, lambda p=photons, y=y: {"photons": p, "y": y.astype(np.float32)})

    return [shard(6), shard(5)]


def _run(tmp_path, settings, on_step=None, tag="a"):
    torch.manual_seed(0)
    model = Phi(4, 2, [1, 2])
    sources = _sources()
    return train(
        model,
        phi_loss,
        BatchStream(sources, settings.batch_size, 7, ("test",)),
        lambda: sequential_batches(sources, 4),
        settings,
        seed=7,
        key=("test",),
        checkpoint=tmp_path / f"{tag}.ckpt",
        log_csv=tmp_path / f"{tag}.csv",
        fingerprint="fp",
        progress=False,
        on_step=on_step,
    )


def test_learning_rate_warms_up_then_decays_to_zero():
    s = _settings(steps=100, warmup_steps=10, lr=1.0)
    assert learning_rate(0, s) == pytest.approx(0.1)
    assert learning_rate(9, s) == pytest.approx(1.0)
    assert learning_rate(10, s) == pytest.approx(1.0)
    assert learning_rate(55, s) == pytest.approx(0.5)  # half-way through the cosine
    assert learning_rate(100, s) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("ema", "augment"), [(0.0, "none"), (0.9, "none"), (0.0, "dihedral")])
def test_killed_run_resumes_to_identical_weights(tmp_path, ema, augment):
    settings = _settings(ema_decay=ema, augment=augment)
    full = _run(tmp_path, settings, tag="full")

    def kill(step):
        if step == 7:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, settings, on_step=kill, tag="resumed")
    assert (tmp_path / "resumed.ckpt").exists()
    resumed = _run(tmp_path, settings, tag="resumed")
    for a, b in zip(
        full.inference_model.state_dict().values(),
        resumed.inference_model.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    rows = lambda tag: list(csv.DictReader(open(tmp_path / f"{tag}.csv")))  # noqa: E731
    full_rows, resumed_rows = rows("full"), rows("resumed")
    assert [r["step"] for r in full_rows] == ["4", "8", "10"]
    for a, b in zip(full_rows, resumed_rows, strict=True):
        assert {k: a[k] for k in ("step", "train_loss", "val_loss", "lr")} == {
            k: b[k] for k in ("step", "train_loss", "val_loss", "lr")
        }


def test_a_resume_that_skipped_the_checkpoint_would_differ(tmp_path):
    full = _run(tmp_path, _settings(), tag="full")
    shorter = _run(tmp_path, _settings(steps=9), tag="short")
    a = next(iter(full.model.state_dict().values()))
    b = next(iter(shorter.model.state_dict().values()))
    assert not torch.equal(a, b)


def test_augmentation_changes_the_training_run(tmp_path):
    plain = _run(tmp_path, _settings(), tag="plain")
    flipped = _run(tmp_path, _settings(augment="dihedral"), tag="flipped")
    a = next(iter(plain.model.state_dict().values()))
    b = next(iter(flipped.model.state_dict().values()))
    assert not torch.equal(a, b)


def test_checkpoint_of_another_run_is_ignored(tmp_path, caplog):
    settings = _settings()

    def kill(step):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, settings, on_step=kill, tag="x")
    torch.manual_seed(0)
    sources = _sources()
    result = train(
        Phi(4, 2, [1, 2]),
        phi_loss,
        BatchStream(sources, 4, 7, ("test",)),
        lambda: sequential_batches(sources, 4),
        settings,
        seed=7,
        key=("test",),
        checkpoint=tmp_path / "x.ckpt",
        log_csv=tmp_path / "x.csv",
        fingerprint="another config",
        progress=False,
    )
    assert "ignoring checkpoint" in caplog.text
    assert [r["step"] for r in result.rows] == [4, 8, 10]


def test_checkpoint_of_other_code_is_ignored(tmp_path, caplog, monkeypatch):
    """A checkpoint written by other diffloc source code (same config and data) is not resumed:
    the rerun trains from step 1; with the same code it resumes after the checkpoint."""
    import diffloc.training.loop as loop

    def kill(step):
        if step == 4:
            raise KeyboardInterrupt

    steps = []
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, _settings(), on_step=kill, tag="x")
    code = loop.source_fingerprint
    monkeypatch.setattr(loop, "source_fingerprint", lambda: "other code")
    _run(tmp_path, _settings(), on_step=steps.append, tag="x")
    assert "written by other diffloc code" in caplog.text and steps[0] == 1
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, _settings(), on_step=kill, tag="y")
    monkeypatch.setattr(loop, "source_fingerprint", code)
    steps[:] = []
    caplog.clear()
    _run(tmp_path, _settings(), on_step=steps.append, tag="y")
    assert "written by other diffloc code" in caplog.text and steps[0] == 1
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, _settings(), on_step=kill, tag="z")
    steps[:] = []
    _run(tmp_path, _settings(), on_step=steps.append, tag="z")
    assert steps[0] == 4  # checkpoint at step 3 (checkpoint_every 3), same code: resumed


def test_training_reduces_the_validation_loss(tmp_path):
    result = _run(tmp_path, _settings(steps=60, val_every=10, checkpoint_every=100, lr=3e-2))
    losses = [r["val_loss"] for r in result.rows]
    assert losses[-1] < 0.5 * losses[0]


def test_cuda_without_a_gpu_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_model_files_round_trip_and_reject_code(tmp_path):
    torch.manual_seed(1)
    model = Phi(4, 2, [1, 2])
    build = lambda cfg: Phi(cfg["width"], cfg["hr_width"], cfg["dilations"])  # noqa: E731
    save_model(tmp_path / "m.pt", model, {"width": 4, "hr_width": 2, "dilations": [1, 2]}, {"a": 1})
    loaded, meta = load_model(tmp_path / "m.pt", build)
    assert meta == {"a": 1}
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"state_dict": Evil(), "config": {}, "metadata": {}}, handle)
    with pytest.raises(
        ModelFileError, match=r"(?s)evil\.pt: not a valid diffloc model file.*rerun snakemake"
    ):
        load_model(tmp_path / "evil.pt", build)
    assert not marker.exists()
    with pytest.raises(ModelFileError, match=r"missing\.pt: model file is missing"):
        load_model(tmp_path / "missing.pt", build)


def test_model_files_are_byte_identical_for_identical_weights(tmp_path):
    torch.manual_seed(1)
    model = Phi(4, 2, [1, 2])
    for name in ("a.pt", "b.pt"):
        save_model(tmp_path / name, model, {"width": 4}, {"seed": 1})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_training_threads_come_from_the_settings_not_the_caller(tmp_path):
    """The caller's torch thread count (what --cores gave the job) does not reach training."""
    seen = []
    runs = []
    for outer, tag in ((1, "one"), (2, "two")):
        torch.set_num_threads(outer)
        runs.append(
            _run(
                tmp_path,
                _settings(steps=6, threads=2),
                lambda s: seen.append(torch.get_num_threads()),
                tag,
            )
        )
        assert torch.get_num_threads() == outer  # restored afterwards
    assert set(seen) == {2}
    for a, b in zip(
        runs[0].model.state_dict().values(), runs[1].model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)

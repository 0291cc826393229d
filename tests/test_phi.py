"""phi: shapes, output range, loss on the pre-activation output, receptive field, inference."""

import numpy as np
import pytest
import torch

from diffloc.config import kde_ceiling
from diffloc.data.files import ModelFileError
from diffloc.data.models import load_model, save_model
from diffloc.phi.network import Phi, build_phi, load_phi_model, phi_loss, predict_kde


def _model(**kw):
    torch.manual_seed(0)
    return Phi(**{"width": 8, "hr_width": 4, "dilations": [1, 2, 4, 8, 16], **kw})


def test_shapes_and_output_range():
    model = _model().eval()
    x = torch.randn(3, 1, 20, 20) * 10
    assert model(x).shape == (3, 1, 80, 80)
    yhat = model.predict(x)
    assert yhat.min() >= 0 and yhat.max() <= 1


def test_channels_last_gives_the_same_output():
    model = _model().eval()
    x = torch.randn(2, 1, 20, 20)
    a = model(x)
    b = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("head", ["resize_conv", "pixel_shuffle"])
@pytest.mark.parametrize("dilations", [[1], [1, 2], [1, 2, 4, 8, 16]])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_predict_is_the_clamped_forward(head, dilations, layout):
    """predict's in-place context gives forward's output (clamped), in either memory layout."""
    model = _model(head=head, dilations=dilations).eval().to(memory_format=layout)
    for m in model.modules():  # BatchNorm statistics away from the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = (torch.rand(3, 1, 24, 20) * 40).contiguous(memory_format=layout)
    with torch.inference_mode():
        model.out.bias -= model(x).median()  # outputs on both sides of the clamp's 0
        expected = model.clamp(model(x))
    got = model.predict(x)
    assert 0 < (got == 0).float().mean() < 1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hr_width", [1, 2, 8])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_folded_head_is_the_4x_output_convolution(hr_width, layout):
    """fold_head (the 4x 3x3 output convolution run at LR on the depth-to-space input) gives the
    convolution written out at 4x: each HR pixel the bias plus the 3 x 3 neighbourhood of the
    activated depth-to-space map (zero beyond the image) times the kernel, at every pixel
    including the image border (non-square frames, random weights)."""
    torch.manual_seed(hr_width)
    model = Phi(6, hr_width, [1, 2], head="pixel_shuffle", ceiling=1e6).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    model = model.to(memory_format=layout)
    x = (torch.rand(2, 1, 7, 5) * 30).contiguous(memory_format=layout)
    with torch.inference_mode():
        h = model._context_in_place(x)
        hr = torch.nn.functional.leaky_relu(
            torch.nn.functional.pixel_shuffle(model.shuffle(h), 4), 0.2
        )
        padded = torch.nn.functional.pad(hr, (1, 1, 1, 1))
        w = model.out.weight[0]
        expected = model.out.bias[0] + sum(
            w[c, dy, dx] * padded[:, c, dy : dy + 28, dx : dx + 20]
            for c in range(hr_width)
            for dy in range(3)
            for dx in range(3)
        )
        got = model.predict(x, fold_head=True)[:, 0]
        plain = model.predict(x)[:, 0]
    assert got.shape == (2, 28, 20) and expected.abs().max() > 10
    torch.testing.assert_close(got, expected.clamp(0, 1e6), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got, plain, rtol=1e-5, atol=1e-4)


def test_loss_is_taken_before_the_clamp():
    model = _model()
    with torch.no_grad():
        model.out.bias.fill_(-5.0)  # every output far below 0: the clamp would kill the gradient
    batch = {"photons": torch.randn(2, 1, 20, 20), "y": torch.rand(2, 1, 80, 80)}
    phi_loss(model, batch, torch.Generator()).backward()
    assert model.out.bias.grad.abs().item() > 0


def test_dilated_context_sees_the_whole_image():
    model = _model().eval()
    x = torch.zeros(1, 1, 20, 20)
    base = model(x)
    x[0, 0, 0, 0] = 50.0  # one bright corner pixel
    changed = (model(x) - base).abs()[0, 0]
    assert changed[-4:, -4:].max() > 0  # the opposite corner responds


def test_config_builds_the_configured_widths():
    cfg = {"width": 6, "hr_width": 3, "dilations": [1, 2], "activation": "relu"}
    model = build_phi(cfg, 4)
    assert model.context[0][0].out_channels == 6 and len(model.context) == 2
    assert model.refine[0][0].out_channels == 3
    with pytest.raises(ValueError, match="4x"):
        build_phi(cfg, 2)
    with pytest.raises(ValueError, match="activation"):
        build_phi({**cfg, "activation": "tanh"}, 4)


def test_prediction_is_clamped_to_the_kde_ceiling():
    """yhat lies in [0, ceiling]: 1 under kde.normalize max, kde.ceiling molecules under peak."""
    cfg = {"width": 4, "hr_width": 2, "dilations": [1], "activation": "relu"}
    for ceiling in (1.0, 5.0):
        model = load_phi_model({**cfg, "upsample": 4, "ceiling": ceiling}).eval()
        torch.nn.init.constant_(model.out.bias, 100.0)  # pre-activation far above any ceiling
        torch.nn.init.zeros_(model.out.weight)
        out = model.predict(torch.zeros(1, 1, 20, 20))
        assert torch.equal(out, torch.full_like(out, ceiling))
    assert kde_ceiling({"normalize": "max", "ceiling": 5.0}) == 1.0
    assert kde_ceiling({"normalize": "peak", "ceiling": 5.0}) == 5.0


def test_predict_kde_batches_and_matches_one_pass():
    model = _model().eval()
    photons = np.random.default_rng(0).poisson(3.0, (7, 20, 20)).astype(np.float32)
    a = predict_kde(model, photons, 3, torch.device("cpu"))
    b = predict_kde(model, photons, 7, torch.device("cpu"))
    assert a.shape == (7, 80, 80) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_phi_file_without_its_kde_ceiling_is_refused(tmp_path):
    """Files from before the ceiling was recorded are refused, naming the file, not guessed at."""
    cfg = {"width": 4, "hr_width": 2, "dilations": [1], "activation": "relu", "upsample": 4}
    save_model(tmp_path / "old.pt", build_phi(cfg, 4), cfg, {"network": "phi"})
    with pytest.raises(ModelFileError, match=r"old\.pt: not a valid diffloc model file.*ceiling"):
        load_model(tmp_path / "old.pt", load_phi_model)
    save_model(tmp_path / "new.pt", build_phi(cfg, 4), {**cfg, "ceiling": 1.0}, {})
    assert load_model(tmp_path / "new.pt", load_phi_model)[0].clamp.max_val == 1.0

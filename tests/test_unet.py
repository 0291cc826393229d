"""The psi U-Net: shapes (odd sizes too), channels_last, time and condition inputs, attention
placement, dropout reproducibility, trainability and size."""

import pytest
import torch

from diffloc.psi.unet import Attention, UNet, level_sizes

PAPER_LIKE = dict(
    channels=8,
    multipliers=[1, 2, 4, 8, 8],
    res_blocks=2,
    attention_resolutions=[20, 10],
    attention_heads=2,
    norm_groups=4,
    dropout=0.0,
    patch=1,
    image_size=80,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def randomize_output(net: UNet, seed: int = 0) -> UNet:
    """Give the zero-initialised output conv random weights, so the output depends on the input."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.conv_out.weight.copy_(0.1 * torch.randn(net.conv_out.weight.shape, generator=gen))
    return net


def inputs(b: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.cat(
        [
            torch.randn((b, 1, size, size), generator=gen),
            torch.rand((b, 1, size, size), generator=gen),
        ],
        1,
    )
    return x, torch.rand((b,), generator=gen)


def attention_sizes(net: UNet, x: torch.Tensor, t: torch.Tensor) -> list[int]:
    """Side lengths of the feature maps every Attention module sees in one forward pass."""
    seen = []
    hooks = [
        m.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[-1]))
        for m in net.modules()
        if isinstance(m, Attention)
    ]
    net(x, t)
    for h in hooks:
        h.remove()
    return seen


def test_default_config_net_shapes_and_init(default_config):
    unet_cfg = default_config["diffusion"]["unet"]
    net = UNet.from_config(unet_cfg, 80).eval()
    x, t = inputs(1, 80)
    out = net(x, t)
    assert out.shape == (1, 1, 80, 80)
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised output layer
    n_params = sum(p.numel() for p in net.parameters())
    assert 1e5 < n_params < 1e6, n_params  # CPU-sized: ~0.28 M parameters
    sizes = level_sizes(80, unet_cfg["patch"], len(unet_cfg["multipliers"]))
    seen = attention_sizes(net, x, t)
    # configured levels attend in each down block and each up block; the middle block at the bottom
    expected = {s: (2 * unet_cfg["res_blocks"] + 1) for s in unet_cfg["attention_resolutions"]}
    expected[sizes[-1]] = expected.get(sizes[-1], 0) + 1
    assert {s: seen.count(s) for s in set(seen)} == expected


def test_paper_like_net_reaches_5x5_and_attends_at_20_and_10():
    net = randomize_output(UNet(**PAPER_LIKE)).eval()
    assert net.sizes == [80, 40, 20, 10, 5]
    x, t = inputs(1, 80)
    seen = attention_sizes(net, x, t)
    assert sorted(set(seen)) == [5, 10, 20]
    assert seen.count(20) == 5 and seen.count(10) == 5 and seen.count(5) == 1
    assert net(x, t).shape == (1, 1, 80, 80)


def test_paper_scale_parameter_count():
    with torch.device("meta"):
        net = UNet(**{**PAPER_LIKE, "channels": 64, "norm_groups": 32, "attention_heads": 1})
    n_params = sum(p.numel() for p in net.parameters())
    assert 9e7 < n_params < 1.1e8, n_params  # SR3-64 [1, 2, 4, 8, 8]: about 1e8


def test_odd_sizes_round_trip():
    net = randomize_output(
        UNet(
            **{
                **PAPER_LIKE,
                "multipliers": [1, 1, 1, 1],
                "attention_resolutions": [9, 5],
                "image_size": 36,
            }
        )
    ).eval()
    assert net.sizes == [36, 18, 9, 5]
    x, t = inputs(2, 36)
    assert sorted(set(attention_sizes(net, x, t))) == [5, 9]
    out = net(x, t)
    assert out.shape == (2, 1, 36, 36) and torch.isfinite(out).all()


@pytest.mark.parametrize("patch", [1, 2])
def test_channels_last_gives_the_same_output(patch):
    cfg = {
        **PAPER_LIKE,
        "multipliers": [1, 2, 2],
        "attention_resolutions": [32 // patch // 2],
        "patch": patch,
        "image_size": 32,
    }
    net = randomize_output(UNet(**cfg)).eval()
    x, t = inputs(2, 32)
    with torch.inference_mode():
        ref = net(x, t)
        net_cl = net.to(memory_format=torch.channels_last)
        out = net_cl(x.contiguous(memory_format=torch.channels_last), t)
    assert net_cl.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_output_depends_on_time_and_condition():
    net = randomize_output(
        UNet(
            **{**PAPER_LIKE, "multipliers": [1, 2], "attention_resolutions": [8], "image_size": 16}
        )
    ).eval()
    x, t = inputs(2, 16)
    base = net(x, t)
    scale = base.abs().mean()
    assert (
        net(x, torch.full_like(t, 0.9)) - net(x, torch.full_like(t, 0.1))
    ).abs().mean() > 0.01 * scale
    x2 = x.clone()
    x2[:, 1] = 1 - x2[:, 1]
    assert (net(x2, t) - base).abs().mean() > 0.01 * scale
    # rows are independent: one row's output does not depend on the other rows of the batch
    torch.testing.assert_close(net(x[:1], t[:1]), base[:1], atol=1e-5, rtol=1e-4)


def test_dropout_masks_come_from_the_generator():
    net = randomize_output(
        UNet(**{**PAPER_LIKE, "multipliers": [1, 2], "attention_resolutions": [], "dropout": 0.5})
    )
    x, t = inputs(2, 16)
    net.train()
    a = net(x, t, torch.Generator().manual_seed(1))
    b = net(x, t, torch.Generator().manual_seed(1))
    c = net(x, t, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    net.eval()
    assert torch.equal(
        net(x, t, torch.Generator().manual_seed(1)), net(x, t, torch.Generator().manual_seed(2))
    )


def test_a_few_adam_steps_fit_a_fixed_batch():
    torch.manual_seed(0)
    net = UNet(
        **{
            **PAPER_LIKE,
            "multipliers": [1, 2],
            "res_blocks": 1,
            "attention_resolutions": [8],
            "image_size": 16,
        }
    )
    x, t = inputs(4, 16)
    target = torch.sin(x[:, 1:] * 3)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    losses = []
    for _ in range(30):
        loss = (net(x, t) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_input_and_settings_fail_fast():
    net = UNet(**{**PAPER_LIKE, "multipliers": [1, 2], "attention_resolutions": []})
    x, t = inputs(2, 16)
    with pytest.raises(ValueError, match=r"\[B, 2, H, W\]"):
        net(x[:, :1], t)
    with pytest.raises(ValueError, match="t must have shape"):
        net(x, t[:1])
    with pytest.raises(ValueError, match=r"attention resolutions \[16\] are never reached"):
        UNet(**{**PAPER_LIKE, "attention_resolutions": [16]})
    with pytest.raises(ValueError, match="norm_groups"):
        UNet(**{**PAPER_LIKE, "norm_groups": 3})
    with pytest.raises(ValueError, match="not divisible by patch"):
        UNet(**{**PAPER_LIKE, "patch": 3})
    patched = UNet(**{**PAPER_LIKE, "multipliers": [1, 2], "attention_resolutions": [], "patch": 2})
    with pytest.raises(ValueError, match="not divisible by 2"):
        patched(*inputs(1, 15))

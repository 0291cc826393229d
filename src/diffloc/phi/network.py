"""phi: DeepSTORM-like network from a camera image (photons) to a 4x super-resolved KDE."""

import numpy as np
import torch
from torch import nn


def _act(kind: str) -> nn.Module:
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if kind == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {kind!r}; allowed: leaky_relu, relu")


class ConvBlock(nn.Sequential):
    """3x3 convolution (optionally dilated), activation, BatchNorm."""

    def __init__(self, c_in: int, c_out: int, activation: str, dilation: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation),
            _act(activation),
            nn.BatchNorm2d(c_out),
        )


HEADS = ("resize_conv", "pixel_shuffle")


class Phi(nn.Module):
    """KDE regressor: photons [B, 1, H, W] -> pre-activation KDE logits [B, 1, 4H, 4W].

    Context module at LR resolution (dilated residual blocks that each see the input again),
    then a 4x upsampling head (`head`):

    - `resize_conv`: two nearest-neighbour 2x resize-convolutions, three refinement blocks at
      4x and a 1x1 output convolution (hr_width channels at 2x and 4x; DeepSTORM-like).
    - `pixel_shuffle`: one LR 3x3 convolution to 16 hr_width channels, depth-to-space to
      hr_width channels at 4x (Shi et al. 2016), activation, a 3x3 output convolution. No
      convolution runs at 2x and only the output one at 4x: about 5-10x fewer FLOPs per frame.

    `forward` returns the pre-activation output (the training loss is computed on it);
    `predict` applies HardTanh(0, ceiling), the KDE estimate yhat (ceiling: `kde_ceiling`, 1 for
    kde.normalize: max).
    """

    def __init__(
        self,
        width: int,
        hr_width: int,
        dilations: list[int],
        activation: str = "leaky_relu",
        upsample: int = 4,
        ceiling: float = 1.0,
        head: str = "resize_conv",
    ):
        super().__init__()
        if upsample != 4:
            raise ValueError(f"phi upsamples 4x, got upsample={upsample}")
        if head not in HEADS:
            raise ValueError(f"unknown phi head {head!r}; allowed: {', '.join(HEADS)}")
        self.head = head
        self.upsample = upsample
        self.input_norm = nn.BatchNorm2d(1)
        self.context = nn.ModuleList(
            [ConvBlock(1, width, activation, dilations[0])]
            + [ConvBlock(width + 1, width, activation, d) for d in dilations[1:]]
        )
        if head == "resize_conv":
            self.up = nn.ModuleList(
                [ConvBlock(width, hr_width, activation), ConvBlock(hr_width, hr_width, activation)]
            )
            self.refine = nn.Sequential(
                *(ConvBlock(hr_width, hr_width, activation) for _ in range(3))
            )
            self.out = nn.Conv2d(hr_width, 1, 1)
        else:
            self.shuffle = nn.Conv2d(width, upsample**2 * hr_width, 3, padding=1)
            self.shuffle_act = _act(activation)
            self.out = nn.Conv2d(hr_width, 1, 3, padding=1)
        self.clamp = nn.Hardtanh(0.0, ceiling)

    def forward(self, photons: torch.Tensor) -> torch.Tensor:
        """Pre-activation KDE estimate [B, 1, 4H, 4W] from photon images [B, 1, H, W]."""
        x = self.input_norm(photons)
        h = self.context[0](x)
        for block in self.context[1:]:
            h = h + block(torch.cat([h, x], dim=1))
        return self._head(h)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        """Pre-activation KDE estimate [B, 1, 4H, 4W] from context features [B, width, H, W]."""
        if self.head == "pixel_shuffle":
            return self.out(
                self.shuffle_act(nn.functional.pixel_shuffle(self.shuffle(h), self.upsample))
            )
        for block in self.up:
            h = block(nn.functional.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(self.refine(h))

    def _context_in_place(self, photons: torch.Tensor) -> torch.Tensor:
        """`forward`'s context features [B, width, H, W] without autograd: every block reads
        [h, x] from one buffer in which h is updated in place, so no block concatenates or
        copies between memory layouts (the same sums in the same order as `forward`)."""
        x = self.input_norm(photons)
        if len(self.context) == 1:
            return self.context[0](x)
        width = self.context[0][0].out_channels
        layout = (
            torch.channels_last
            if self.context[-1][0].weight.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        b, _, h, w = x.shape
        both = torch.empty((b, width + 1, h, w), dtype=x.dtype, device=x.device)
        both = both.contiguous(memory_format=layout)
        both[:, width:] = x
        features = both[:, :width]
        features.copy_(self.context[0](x))
        for block in self.context[1:-1]:
            features.add_(block(both))
        return features + self.context[-1](both)  # out of place: a contiguous result

    def folded_output(self) -> tuple[torch.Tensor, torch.Tensor]:
        """pixel_shuffle head: the 4x output convolution as an LR one (weight [16, 16 hr_width,
        3, 3], bias [16]) whose 16 channels are the output's 4 x 4 sub-pixels (channel 4 a + b:
        row 4 i + a, column 4 j + b). The activation is elementwise, so it commutes with the
        depth-to-space; HR pixel 4 i + a + dy - 1 (dy in 0..2) lies in LR row i + floor((a + dy
        - 1) / 4) at sub-row (a + dy - 1) mod 4, i.e. depth-to-space input channel
        c 16 + 4 sub-row + sub-column of HR channel c. Zero padding at 4x is zero padding at LR."""
        weight = self.out.weight[0]  # [hr_width, 3, 3]
        hr = weight.shape[0]
        a, b, dy, dx, c = (
            t.reshape(-1)
            for t in torch.meshgrid(
                *(torch.arange(n, device=weight.device) for n in (4, 4, 3, 3, hr)), indexing="ij"
            )
        )
        rows, cols = a + dy - 1, b + dx - 1  # HR offsets within the LR cell, -1 .. 4
        ky, kx = (
            torch.div(rows, 4, rounding_mode="floor") + 1,
            torch.div(cols, 4, rounding_mode="floor") + 1,
        )
        index = (4 * a + b, 16 * c + 4 * (rows % 4) + cols % 4, ky, kx)
        folded = torch.zeros(16, 16 * hr, 3, 3, dtype=weight.dtype, device=weight.device)
        folded.index_put_(index, weight[c, dy, dx], accumulate=True)
        return folded, self.out.bias.repeat(16)

    @torch.inference_mode()
    def predict(self, photons: torch.Tensor, fold_head: bool = False) -> torch.Tensor:
        """KDE estimate yhat in [0, ceiling], [B, 1, 4H, 4W] (HardTanh; eval mode expected):
        `forward` clamped, its context computed in place (`_context_in_place`). fold_head: with
        a pixel_shuffle head the 4x output convolution runs at LR (`folded_output`) before a
        depth-to-space of one channel, ~2x faster for the head; the same sums in another order
        (differences ~1e-7 KDE units). A resize_conv head has nothing to fold and ignores it."""
        h = self._context_in_place(photons)
        if not fold_head or self.head != "pixel_shuffle":
            return self.clamp(self._head(h))
        weight, bias = self.folded_output()
        if h.is_contiguous(memory_format=torch.channels_last):
            weight = weight.contiguous(memory_format=torch.channels_last)
        sub = nn.functional.conv2d(self.shuffle_act(self.shuffle(h)), weight, bias, padding=1)
        return self.clamp(nn.functional.pixel_shuffle(sub.contiguous(), self.upsample))


def build_phi(cfg: dict, upsample: int, ceiling: float = 1.0) -> Phi:
    """Phi from the `phi.model` config section; yhat is clamped to [0, ceiling] (KDE units).
    A model config without `head` is from before the key existed, when resize_conv was the only
    head."""
    return Phi(
        cfg["width"],
        cfg["hr_width"],
        list(cfg["dilations"]),
        cfg["activation"],
        upsample,
        ceiling,
        cfg.get("head", "resize_conv"),
    )


def load_phi_model(cfg: dict) -> Phi:
    """Phi from the model config a phi file stores (`phi.model` plus upsample and ceiling)."""
    return build_phi(cfg, cfg["upsample"], cfg["ceiling"])


def phi_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator
) -> torch.Tensor:
    """Mean squared error of the pre-activation output to the KDE target."""
    del generator  # phi's loss draws nothing at random
    return nn.functional.mse_loss(model(batch["photons"]), batch["y"])


def predict_kde(
    model: Phi,
    photons: np.ndarray,
    batch_size: int,
    device: torch.device,
    fold_head: bool = False,
) -> np.ndarray:
    """yhat float32 [N, sH, sW] in [0, ceiling] for photon images [N, H, W], in batches
    (fold_head: see `Phi.predict`)."""
    model = model.to(device, memory_format=torch.channels_last).eval()
    n, h, w = photons.shape
    out = np.empty((n, model.upsample * h, model.upsample * w), np.float32)
    for start in range(0, n, batch_size):
        chunk = torch.from_numpy(
            np.ascontiguousarray(photons[start : start + batch_size], np.float32)
        )
        chunk = chunk.to(device).unsqueeze(1).contiguous(memory_format=torch.channels_last)
        torch.from_numpy(out[start : start + len(chunk)]).copy_(
            model.predict(chunk, fold_head)[:, 0]
        )
    return out

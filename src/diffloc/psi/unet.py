"""SR3-style conditional U-Net psi: input concat(y_t, c) [B, 1 + C, H, W], output [B, 1, H, W].

The condition c is yhat (C = 1, paper) or yhat and the camera image's photon channel (C = 2),
`diffloc.data.condition`; `in_channels` = 1 + C.

Levels run at H/patch, H/(2 patch), ...; each level has `res_blocks` residual blocks (GroupNorm,
SiLU, time-embedding injection, dropout) on the way down and `res_blocks + 1` on the way up,
self-attention where the feature map's side length is in `attention_resolutions`, and the middle
block always attends at the lowest level (as in DDPM / SR3). Odd sizes are handled: stride-2
convolutions round up (5 -> 3) and upsampling resizes to the matching skip tensor exactly.
`patch > 1` folds patch x patch pixels into channels first (pixel unshuffle), a CPU economy.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

TIME_SCALE = 1000.0  # diffusion time t/T in [0, 1] is embedded as a position in [0, 1000]


def level_sizes(image_size: int, patch: int, n_levels: int) -> list[int]:
    """Feature-map side length at each U-Net level (level 0 = image_size / patch)."""
    if image_size % patch:
        raise ValueError(f"image size {image_size} is not divisible by patch {patch}")
    sizes = [image_size // patch]
    for _ in range(n_levels - 1):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoidal embedding [B, dim] of diffusion times t in [0, 1] (shape [B])."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = TIME_SCALE * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def _dropout(h: torch.Tensor, p: float, training: bool, generator: torch.Generator | None):
    """Inverted dropout whose mask comes from `generator` (global RNG when None)."""
    if not training or p == 0.0:
        return h
    if generator is None:
        return F.dropout(h, p, training=True)
    keep = torch.rand(h.shape, generator=generator, device=generator.device) >= p
    return h * keep.to(device=h.device, dtype=h.dtype) / (1.0 - p)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + time embedding, GroupNorm-SiLU-dropout-conv, residual connection."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.t_proj = nn.Linear(t_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.dropout = dropout

    def forward(self, x: torch.Tensor, temb: torch.Tensor, generator=None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.t_proj(F.silu(temb))[:, :, None, None]
        h = F.silu(self.norm2(h))
        h = self.conv2(_dropout(h, self.dropout, self.training, generator))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over all pixels of a feature map, with a residual connection."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention: {channels} channels not divisible by {heads} heads")
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # [B, heads, HW, c/heads]
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out.contiguous(memory_format=_format_of(x)))


def _format_of(x: torch.Tensor) -> torch.memory_format:
    """channels_last if `x` is stored that way, else contiguous."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class UNet(nn.Module):
    """Conditional U-Net: forward(x [B, in_channels, H, W], t [B] in [0, 1]) -> [B, 1, H, W]."""

    def __init__(
        self,
        *,
        channels: int,
        multipliers: Sequence[int],
        res_blocks: int,
        attention_resolutions: Sequence[int],
        attention_heads: int,
        norm_groups: int,
        dropout: float,
        patch: int,
        image_size: int,
        in_channels: int = 2,
        out_channels: int = 1,
    ):
        super().__init__()
        if channels % 2 or channels < 2:
            raise ValueError(f"base width must be even and >= 2, got {channels}")
        if not multipliers or res_blocks < 1 or patch < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"invalid U-Net settings: multipliers {list(multipliers)}, res_blocks "
                f"{res_blocks}, patch {patch}, dropout {dropout}"
            )
        widths = [channels * m for m in multipliers]
        for w in (channels, *widths):
            if w % norm_groups:
                raise ValueError(f"width {w} is not divisible by norm_groups {norm_groups}")
        self.sizes = level_sizes(image_size, patch, len(multipliers))
        unreachable = sorted(set(attention_resolutions) - set(self.sizes))
        if unreachable:
            raise ValueError(
                f"attention resolutions {unreachable} are never reached; the U-Net levels "
                f"have sizes {self.sizes} (image {image_size}, patch {patch})"
            )
        self.image_size, self.patch = image_size, patch
        self.in_channels, self.out_channels = in_channels, out_channels
        self.base = channels
        t_dim = 4 * channels
        self.time_mlp = nn.Sequential(
            nn.Linear(channels, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim)
        )
        self.conv_in = nn.Conv2d(in_channels * patch**2, channels, 3, padding=1)

        def block(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, t_dim, norm_groups, dropout)

        def attn(size: int, width: int) -> nn.Module:
            if size in attention_resolutions:
                return Attention(width, attention_heads, norm_groups)
            return nn.Identity()

        self.down = nn.ModuleList()
        skips, ch = [channels], channels
        for level, (width, size) in enumerate(zip(widths, self.sizes, strict=True)):
            for _ in range(res_blocks):
                self.down.append(nn.ModuleList([block(ch, width), attn(size, width)]))
                ch = width
                skips.append(ch)
            if level < len(widths) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid = nn.ModuleList(
            [block(ch, ch), Attention(ch, attention_heads, norm_groups), block(ch, ch)]
        )
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            width, size = widths[level], self.sizes[level]
            for _ in range(res_blocks + 1):
                self.up.append(nn.ModuleList([block(ch + skips.pop(), width), attn(size, width)]))
                ch = width
            if level > 0:
                self.up.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.norm_out = nn.GroupNorm(norm_groups, ch)
        self.conv_out = nn.Conv2d(ch, out_channels * patch**2, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # an untrained net predicts 0 (DDPM practice)
        nn.init.zeros_(self.conv_out.bias)

    @classmethod
    def from_config(cls, unet: dict, image_size: int, in_channels: int = 2) -> "UNet":
        """Build from the `diffusion.unet` config section for image_size x image_size inputs of
        `in_channels` channels (y_t and the condition)."""
        return cls(
            channels=unet["channels"],
            multipliers=unet["multipliers"],
            res_blocks=unet["res_blocks"],
            attention_resolutions=unet["attention_resolutions"],
            attention_heads=unet["attention_heads"],
            norm_groups=unet["norm_groups"],
            dropout=unet["dropout"],
            patch=unet["patch"],
            image_size=image_size,
            in_channels=in_channels,
        )

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Output [B, 1, H, W] for input x [B, in_channels, H, W] at diffusion times t [B] in [0, 1].

        `generator` draws the dropout masks in training mode (the global RNG when None).
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"U-Net input must be [B, {self.in_channels}, H, W], got {list(x.shape)}"
            )
        if x.shape[-2] % self.patch or x.shape[-1] % self.patch:
            raise ValueError(f"U-Net input size {list(x.shape[-2:])} not divisible by {self.patch}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape [{x.shape[0]}], got {list(t.shape)}")
        fmt = _format_of(x)
        temb = self.time_mlp(timestep_embedding(t, self.base))
        h = F.pixel_unshuffle(x, self.patch) if self.patch > 1 else x
        h = self.conv_in(h.contiguous(memory_format=fmt))
        hs = [h]
        for layer in self.down:
            if isinstance(layer, nn.Conv2d):
                h = layer(h)
            else:
                h = layer[1](layer[0](h, temb, generator))
            hs.append(h)
        h = self.mid[0](h, temb, generator)
        h = self.mid[2](self.mid[1](h), temb, generator)
        for layer in self.up:
            if isinstance(layer, nn.Conv2d):  # upsample to the next skip's size, then conv
                h = layer(F.interpolate(h, size=hs[-1].shape[-2:], mode="nearest"))
            else:
                h = torch.cat([h, hs.pop()], dim=1)
                h = layer[1](layer[0](h, temb, generator))
        h = self.conv_out(F.silu(self.norm_out(h)))
        return F.pixel_shuffle(h, self.patch) if self.patch > 1 else h

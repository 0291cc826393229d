"""Random square crops of psi's training pairs (the U-Net is fully convolutional; the crop
grid is `diffloc.config.crop_step`)."""

import torch


def random_crops(
    y: torch.Tensor, cond: torch.Tensor, size: int, step: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One size x size window per row of y [B, 1, H, W] and cond [B, C, H, W], at offsets that are
    multiples of `step` HR px drawn uniformly from `generator`; the same window for y and cond.
    train_psi crops the validation batches too (with their fixed generators), so its training
    and validation losses are per-pixel means over the same crop size."""
    b, _, h, w = y.shape
    if cond.shape[0] != b or cond.shape[-2:] != y.shape[-2:]:
        raise ValueError(f"y {list(y.shape)} and condition {list(cond.shape)} do not pair up")
    if size > min(h, w) or size % step or (h - size) % step or (w - size) % step:
        raise ValueError(f"crop {size} px does not fit {h} x {w} px on a {step} px grid")
    choices = torch.tensor([(h - size) // step + 1, (w - size) // step + 1])
    draws = torch.rand((b, 2), generator=generator, device=generator.device).cpu()
    offsets = (draws * choices).long().clamp_max(choices - 1) * step  # [B, 2]
    span = torch.arange(size)
    rows = (offsets[:, 0, None] + span).to(y.device)[:, None, :, None]
    cols = (offsets[:, 1, None] + span).to(y.device)[:, None, None, :]
    batch = torch.arange(b, device=y.device)[:, None, None, None]

    def window(a: torch.Tensor) -> torch.Tensor:
        channels = torch.arange(a.shape[1], device=a.device)[None, :, None, None]
        return a[batch, channels, rows, cols].contiguous(memory_format=torch.channels_last)

    return window(y), window(cond)

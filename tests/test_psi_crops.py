"""Random crops of psi's training pairs: windows, grid, uniform offsets, config checks."""

import pytest
import torch
from scipy import stats

from diffloc.config import ConfigError, crop_step, validate_config
from diffloc.psi.crops import random_crops


def coordinates(b: int, c: int, size: int) -> torch.Tensor:
    """[B, C, size, size] whose value encodes (row, column, channel, image) uniquely."""
    r = torch.arange(size, dtype=torch.float64)
    grid = 1000 * r[:, None] + r[None, :]
    channel = 1e6 * torch.arange(c, dtype=torch.float64)[:, None, None]
    return grid + channel + 1e7 * torch.arange(b, dtype=torch.float64)[:, None, None, None]


def test_crop_step_is_lr_pixels_and_unet_cells():
    def step(upsample, patch, levels):
        return crop_step({"upsample": upsample}, {"patch": patch, "multipliers": [1] * levels})

    assert step(4, 2, 3) == 8  # default: 4 HR px per LR px, patch 2, levels 40/20/10
    assert step(4, 1, 1) == 4
    assert step(3, 2, 2) == 12


def test_crops_are_the_same_grid_aligned_window_of_y_and_condition():
    b, size, crop, step = 64, 80, 40, 8
    y, cond = coordinates(b, 1, size), coordinates(b, 3, size)
    yc, cc = random_crops(y, cond, crop, step, torch.Generator().manual_seed(0))
    assert yc.shape == (b, 1, crop, crop) and cc.shape == (b, 3, crop, crop)
    rows = (yc[:, 0, 0, 0] % 1e6 // 1000).long()
    cols = (yc[:, 0, 0, 0] % 1000).long()
    assert torch.all(rows % step == 0) and torch.all(cols % step == 0)
    for i in range(b):
        r, c = int(rows[i]), int(cols[i])
        assert torch.equal(yc[i], y[i, :, r : r + crop, c : c + crop])
        assert torch.equal(cc[i], cond[i, :, r : r + crop, c : c + crop])


def test_crop_offsets_are_uniform_and_seeded():
    b, size, crop, step = 6000, 80, 40, 8
    y = coordinates(b, 1, size)
    yc, _ = random_crops(y, y, crop, step, torch.Generator().manual_seed(1))
    rows = (yc[:, 0, 0, 0] % 1e6 // 1000).long() // step
    cols = (yc[:, 0, 0, 0] % 1000).long() // step
    for offsets in (rows, cols):
        counts = torch.bincount(offsets, minlength=6)
        assert len(counts) == 6  # 0, 8, ..., 40
        assert stats.chisquare(counts.numpy()).pvalue > 1e-4
    again, _ = random_crops(y, y, crop, step, torch.Generator().manual_seed(1))
    assert torch.equal(again, yc)


def test_crop_that_does_not_fit_is_refused():
    y = torch.zeros(2, 1, 80, 80)
    for crop in (44, 88):
        with pytest.raises(ValueError, match=f"crop {crop} px does not fit"):
            random_crops(y, y, crop, 8, torch.Generator())


@pytest.mark.parametrize("crop", [12, 44, 88])
def test_bad_train_crop_names_the_key(default_config, schema, crop):
    default_config["diffusion"]["train_crop"] = crop
    with pytest.raises(
        ConfigError, match=r"'diffusion\.train_crop' \(\d+\) must be 0 or a multiple of 8"
    ):
        validate_config(default_config, schema)


def test_good_train_crop_is_accepted(default_config, schema):
    for crop in (0, 40, 80):
        default_config["diffusion"]["train_crop"] = crop
        validate_config(default_config, schema)

"""make_grid and save_image against torchvision's algorithm, written again here in PyTorch."""

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import kernelab as kl
from kernelab.vision.utils import make_grid, save_image


def reference_grid(
    batch, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0
):
    """torchvision's make_grid, step by step on a torch tensor (B, C, H, W)."""
    t = batch.clone()
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.size(1) == 1:
        t = torch.cat((t, t, t), 1)
    if normalize:
        images = list(t) if scale_each else [t]
        for img in images:
            low, high = value_range if value_range is not None else (img.min(), img.max())
            low, high = float(low), float(high)
            img.clamp_(min=low, max=high).sub_(low).div_(max(high - low, 1e-5))
    if t.size(0) == 1:
        return t.squeeze(0)
    count = t.size(0)
    cols = min(nrow, count)
    rows = int(math.ceil(count / cols))
    h, w = t.size(2) + padding, t.size(3) + padding
    grid = t.new_full((t.size(1), h * rows + padding, w * cols + padding), pad_value)
    for k in range(count):
        y, x = divmod(k, cols)
        grid.narrow(1, y * h + padding, h - padding).narrow(2, x * w + padding, w - padding).copy_(
            t[k]
        )
    return grid


@given(
    count=st.integers(1, 11),
    channels=st.sampled_from([1, 3]),
    nrow=st.integers(1, 9),
    padding=st.integers(0, 3),
    normalize=st.booleans(),
    value_range=st.sampled_from([None, (-0.5, 0.5)]),
    scale_each=st.booleans(),
    pad_value=st.sampled_from([0, 0.5, 1]),
)
def test_make_grid_matches_torchvisions_algorithm(
    count, channels, nrow, padding, normalize, value_range, scale_each, pad_value
):
    x = np.random.default_rng(count * 10 + channels).normal(size=(count, channels, 4, 5))
    x = x.astype(np.float32)
    options = dict(
        nrow=nrow,
        padding=padding,
        normalize=normalize,
        value_range=value_range,
        scale_each=scale_each,
        pad_value=pad_value,
    )
    out = make_grid(kl.Tensor(x), **options)
    expected = reference_grid(torch.from_numpy(x), **options)
    assert isinstance(out, kl.Tensor) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6, atol=1e-7)


def test_make_grid_shapes_inputs_and_no_side_effects():
    x = np.random.default_rng(0).random((10, 3, 6, 7)).astype(np.float32)
    before = x.copy()
    grid = make_grid(kl.Tensor(x), nrow=4, padding=1, normalize=True)
    assert grid.shape == (3, 3 * 7 + 1, 4 * 8 + 1)
    np.testing.assert_array_equal(x, before)
    as_list = make_grid([kl.Tensor(image) for image in x], nrow=4, padding=1, normalize=True)
    np.testing.assert_array_equal(as_list.numpy(), grid.numpy())
    assert make_grid(kl.Tensor(x[0, 0])).shape == (3, 6, 7)  # one (H, W) image
    with pytest.raises(TypeError, match="Tensor or a list of Tensors"):
        make_grid(x)


def test_save_image_rounds_to_the_nearest_level(tmp_path):
    x = np.random.default_rng(1).random((4, 3, 5, 5)).astype(np.float32)
    path = tmp_path / "grid.png"
    save_image(kl.Tensor(x), path, nrow=2, padding=1)
    expected = reference_grid(torch.from_numpy(x), nrow=2, padding=1)
    expected = expected.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), expected.numpy())
    stream = io.BytesIO()
    save_image(kl.Tensor(x[0, :1]), stream, format="png")
    stream.seek(0)
    assert Image.open(stream).size == (5, 5)

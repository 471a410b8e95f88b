"""kernelab.vision.transforms against hand-computed values, Pillow and PyTorch."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import kernelab as kl
from kernelab.vision import transforms
from kernelab.vision.transforms import functional as TF

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rgb(h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_to_tensor_scales_uint8_and_moves_channels_first():
    pixels = rgb()
    for pic in (pixels, Image.fromarray(pixels)):
        out = transforms.ToTensor()(pic)
        assert isinstance(out, kl.Tensor) and out.dtype == np.float32 and out.shape == (3, 5, 7)
        expected = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)
        np.testing.assert_array_equal(out.numpy(), expected.numpy())
    grey = transforms.ToTensor()(Image.fromarray(pixels[:, :, 0]))
    assert grey.shape == (1, 5, 7) and grey.numpy().max() <= 1
    floats = transforms.ToTensor()(np.full((2, 3), 7.5, np.float64))  # not scaled, as torch
    assert (
        floats.shape == (1, 2, 3) and floats.dtype == np.float64 and floats.numpy()[0, 0, 0] == 7.5
    )
    bits = transforms.ToTensor()(Image.fromarray(pixels[:, :, 0] > 127))
    np.testing.assert_array_equal(bits.numpy()[0], pixels[:, :, 0] > 127)
    with pytest.raises(TypeError, match="expected a PIL image or a NumPy array"):
        transforms.ToTensor()(kl.zeros(3, 4, 4))


def test_pil_to_tensor_and_back():
    pixels = rgb()
    out = transforms.PILToTensor()(Image.fromarray(pixels))
    assert out.dtype == np.uint8 and np.array_equal(out.numpy(), pixels.transpose(2, 0, 1))
    back = transforms.ToPILImage()(transforms.ToTensor()(Image.fromarray(pixels)))
    assert back.mode == "RGB"
    # x / 255 * 255 truncated may land one level below x, as torchvision's byte() does
    assert np.abs(np.asarray(back).astype(int) - pixels).max() <= 1


def test_normalize_per_channel_matches_the_formula():
    x = kl.Tensor(np.random.default_rng(1).random((3, 4, 5), dtype=np.float32))
    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)
    out = transforms.Normalize(mean, std)(x)
    t = torch.from_numpy(x.numpy())
    expected = (t - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
    assert out.dtype == np.float32
    one = transforms.Normalize((0.1307,), (0.3081,))(x)  # one value for every channel
    np.testing.assert_allclose(one.numpy(), (x.numpy() - 0.1307) / 0.3081, rtol=1e-5)
    with pytest.raises(TypeError, match="float tensor"):
        transforms.Normalize((0.5,), (0.5,))(kl.zeros(1, 2, 2, dtype=kl.uint8))
    transforms.Normalize(mean, std, inplace=True)(x)
    np.testing.assert_allclose(x.numpy(), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    ("padding_mode", "torch_mode"),
    [("constant", "constant"), ("edge", "replicate"), ("reflect", "reflect")],
)
@pytest.mark.parametrize("padding", [1, (2, 1), (1, 0, 3, 2)])
def test_pad_matches_torch(padding, padding_mode, torch_mode):
    x = np.random.default_rng(2).random((2, 3, 5, 6)).astype(np.float32)
    left, top, right, bottom = _ltrb(padding)
    expected = torch.nn.functional.pad(
        torch.from_numpy(x), (left, right, top, bottom), mode=torch_mode
    )
    out = transforms.Pad(padding, padding_mode=padding_mode)(kl.Tensor(x))
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


def _ltrb(padding):
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    return padding


def test_pad_symmetric_fill_and_pil():
    row = np.array([[1, 2, 3]], np.uint8)
    assert TF.pad(row, (2, 0), padding_mode="symmetric").tolist() == [[2, 1, 1, 2, 3, 3, 2]]
    image = Image.fromarray(rgb(2, 2))
    out = transforms.Pad(1, fill=(10, 20, 30))(image)
    assert out.size == (4, 4) and out.mode == "RGB"
    assert np.asarray(out)[0, 0].tolist() == [10, 20, 30]
    np.testing.assert_array_equal(np.asarray(out)[1:3, 1:3], rgb(2, 2))
    palette = Image.fromarray(rgb(6, 6)).convert("P")
    crop = transforms.CenterCrop(2)(palette)
    assert crop.mode == "P"
    assert crop.convert("RGB").getpixel((0, 0)) == palette.convert("RGB").getpixel((2, 2))
    with pytest.raises(ValueError, match="padding_mode"):
        transforms.Pad(1, padding_mode="wrap")
    with pytest.raises(ValueError, match=r"Pad: expected padding as an int >= 0"):
        transforms.Pad((1, 2, 3))
    with pytest.raises(ValueError, match=r"RandomCrop: expected padding"):
        transforms.RandomCrop(3, padding=-1)


def test_random_crop_is_a_window_of_the_padded_image_and_reproducible():
    pixels = rgb(8, 8)
    padded = np.pad(pixels, ((4, 4), (4, 4), (0, 0)))
    crop = transforms.RandomCrop(8, padding=4)
    kl.manual_seed(0)
    first = [np.asarray(crop(Image.fromarray(pixels))) for _ in range(20)]
    kl.manual_seed(0)
    again = [np.asarray(crop(Image.fromarray(pixels))) for _ in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    windows = {
        (i, j)
        for i in range(9)
        for j in range(9)
        for out in first
        if np.array_equal(out, padded[i : i + 8, j : j + 8])
    }
    assert len(windows) > 5  # random places, each a true window
    assert transforms.RandomCrop(8)(pixels) is not None
    assert transforms.RandomCrop((3, 10), pad_if_needed=True)(pixels).shape == (3, 10, 3)
    with pytest.raises(ValueError, match="crop size"):
        transforms.RandomCrop(9)(pixels)


def test_random_flips():
    x = kl.Tensor(np.arange(12, dtype=np.float32).reshape(1, 3, 4))
    np.testing.assert_array_equal(
        transforms.RandomHorizontalFlip(1.0)(x).numpy(), x.numpy()[..., ::-1]
    )
    np.testing.assert_array_equal(transforms.RandomVerticalFlip(1.0)(x).numpy(), x.numpy()[:, ::-1])
    assert transforms.RandomHorizontalFlip(0.0)(x) is x
    kl.manual_seed(1)
    flipped = sum(transforms.RandomHorizontalFlip()(x) is not x for _ in range(400))
    assert 160 < flipped < 240
    image = Image.fromarray(rgb())
    assert np.array_equal(np.asarray(transforms.RandomHorizontalFlip(1.0)(image)), rgb()[:, ::-1])


@given(
    h=st.integers(2, 12),
    w=st.integers(2, 12),
    oh=st.integers(2, 12),  # PyTorch's antialiased kernel goes wrong for an output side of 1
    ow=st.integers(2, 12),
    antialias=st.booleans(),
)
def test_resize_tensor_matches_torch_interpolate(h, w, oh, ow, antialias):
    x = np.random.default_rng(h * 100 + w).random((2, h, w)).astype(np.float64)
    out = TF.resize(kl.Tensor(x), [oh, ow], antialias=antialias)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x)[None],
        size=(oh, ow),
        mode="bilinear",
        align_corners=False,
        antialias=antialias,
    )[0]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-9, atol=1e-12)
    nearest = TF.resize(kl.Tensor(x), [oh, ow], transforms.InterpolationMode.NEAREST)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=(oh, ow))[0]
    np.testing.assert_array_equal(nearest.numpy(), expected.numpy())


@given(h=st.integers(1, 12), w=st.integers(1, 12), oh=st.integers(1, 12), ow=st.integers(1, 12))
def test_resize_tensor_matches_pillows_float_bilinear(h, w, oh, ow):
    x = np.random.default_rng(h * 100 + w).random((h, w)).astype(np.float32)
    out = TF.resize(kl.Tensor(x[None]), [oh, ow])
    reference = Image.fromarray(x).resize((ow, oh), Image.Resampling.BILINEAR)  # mode "F"
    np.testing.assert_allclose(out.numpy()[0], np.asarray(reference), rtol=1e-5, atol=1e-6)


def test_resize_uint8_rounds_and_pil_uses_pillow():
    pixels = rgb(9, 6)
    out = transforms.Resize((4, 5))(kl.Tensor(pixels.transpose(2, 0, 1).copy()))
    expected = (
        torch.nn.functional.interpolate(
            torch.from_numpy(pixels.transpose(2, 0, 1)).float()[None],
            size=(4, 5),
            mode="bilinear",
            antialias=True,
        )[0]
        .round()
        .to(torch.uint8)
    )
    assert out.dtype == np.uint8
    assert np.abs(out.numpy().astype(int) - expected.numpy()).max() <= 1
    as_array = TF.resize(pixels, (4, 5))  # an array (H, W, C), as without Pillow
    np.testing.assert_array_equal(as_array, out.numpy().transpose(1, 2, 0))
    image = transforms.Resize(3)(Image.fromarray(pixels))  # shorter side (w=6) -> 3
    assert image.size == (3, 4)  # (width, height): 9 * 3 / 6 = 4.5, truncated
    reference = Image.fromarray(pixels).resize((3, 4), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(np.asarray(image), np.asarray(reference))
    assert TF.resized_size(20, 40, 10) == (10, 20) and TF.resized_size(40, 20, 10) == (20, 10)
    assert TF.resized_size(20, 40, 10, max_size=15) == (7, 15)
    with pytest.raises(TypeError, match="Resize: expected size an int or"):
        transforms.Resize((1, 2, 3))
    same = Image.fromarray(pixels)
    assert transforms.Resize((9, 6))(same) is same


def test_center_crop_hand_computed():
    x = np.arange(5 * 6).reshape(5, 6)
    out = transforms.CenterCrop(3)(x)
    # top = round((5 - 3) / 2) = 1, left = round((6 - 3) / 2) = round(1.5) = 2
    np.testing.assert_array_equal(out, x[1:4, 2:5])
    big = transforms.CenterCrop((7, 9))(x)
    # padded by (left 1, top 1, right 2, bottom 1): the odd pixel goes right and bottom
    assert big.shape == (7, 9) and np.array_equal(big[1:6, 1:7], x)
    assert big[0].sum() == 0 and big[:, 7:].sum() == 0
    t = transforms.CenterCrop(2)(kl.Tensor(np.arange(16.0).reshape(1, 4, 4)))
    np.testing.assert_array_equal(t.numpy(), [[[5, 6], [9, 10]]])


def test_grayscale():
    pixels = rgb()
    image = transforms.Grayscale()(Image.fromarray(pixels))
    assert image.mode == "L"
    np.testing.assert_array_equal(
        np.asarray(image), np.asarray(Image.fromarray(pixels).convert("L"))
    )
    as_array = transforms.Grayscale()(pixels)  # without Pillow's image: Pillow's formula
    np.testing.assert_array_equal(as_array, np.asarray(image))
    three = transforms.Grayscale(3)(Image.fromarray(pixels))
    assert three.mode == "RGB" and np.ptp(np.asarray(three), axis=2).max() == 0
    x = kl.Tensor(pixels.transpose(2, 0, 1).astype(np.float32) / 255)
    out = transforms.Grayscale(num_output_channels=3)(x)
    r, g, b = torch.from_numpy(x.numpy())
    expected = (0.2989 * r + 0.587 * g + 0.114 * b).expand(3, -1, -1)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)


def test_compose_lambda_and_repr():
    pipeline = transforms.Compose(
        [transforms.ToTensor(), transforms.Lambda(lambda t: t * 2), transforms.Normalize([1], [2])]
    )
    out = pipeline(np.full((2, 2), 255, np.uint8))
    np.testing.assert_allclose(out.numpy(), np.full((1, 2, 2), 0.5))
    assert "Normalize(mean=[1], std=[2])" in repr(pipeline)
    with pytest.raises(TypeError, match="callable"):
        transforms.Lambda(3)

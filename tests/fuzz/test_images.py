"""Image files: truncated, corrupt, bombs, odd modes (16-bit, palette, alpha) end in a
ValueError naming the file; more than MAX_IMAGE_PIXELS is refused before decoding."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kernelab import cli, data
from kernelab.kernels import filtering
from kernelab.vision import transforms as T
from kernelab.vision.folder import pil_loader

from .outcome import assert_clear, cut, flip

# Pillow warns about the corrupt metadata these inputs are made of; the error is what counts
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

Image = pytest.importorskip("PIL.Image")

MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK", "PA"]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO"]
READERS = {
    "grey": lambda path: data.read_image(path),
    "colour": lambda path: data.read_image(path, 8, channels=3),
    "mnist": lambda path: data.model_pixels(path, (1, 28, 28)),
    "filter": filtering.read_image,
    "ImageFolder": pil_loader,
}


def encode(mode: str, size: tuple[int, int], fmt: str, seed: int) -> bytes | None:
    """An image file of ``mode`` and ``size`` in ``fmt``, or None if Pillow cannot write it."""
    rng = np.random.default_rng(seed)
    image = Image.new(mode, size)
    image.putdata([int(v) for v in rng.integers(0, 255, size[0] * size[1])])
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return buffer.getvalue()


def read_or_refuse(folder, body: bytes, reader: str) -> None:
    path = folder / "fuzz.img"
    path.write_bytes(body)
    try:
        READERS[reader](path)
    except ValueError as error:
        assert_clear(error, str(path))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("images")


images = st.builds(
    encode,
    st.sampled_from(MODES),
    st.tuples(st.integers(1, 40), st.integers(1, 40)),
    st.sampled_from(FORMATS),
    st.integers(0, 9),
).filter(lambda body: body is not None)
readers = st.sampled_from(sorted(READERS))
flips = st.lists(st.tuples(st.integers(0, 10**5), st.integers(1, 255)), min_size=1, max_size=6)


@given(body=images, reader=readers)
def test_every_mode_and_format(folder, body, reader):
    read_or_refuse(folder, body, reader)


@given(body=images, where=st.integers(-400, 400), reader=readers)
def test_truncated(folder, body, where, reader):
    read_or_refuse(folder, cut(body, where), reader)


@given(body=images, flips=flips, reader=readers)
def test_byte_flips(folder, body, flips, reader):
    read_or_refuse(folder, flip(body, flips), reader)


def png_declaring(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` with a valid CRC, and one row."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + width * max(1, bit_depth // 8)) if width < 10**6 else b"")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@given(
    width=st.integers(1, 2**31 - 1),
    height=st.integers(1, 2**31 - 1),
    depth=st.sampled_from([(8, 0), (16, 0), (8, 2), (8, 6), (1, 0), (8, 3)]),
    reader=readers,
)
@example(width=7072, height=7072, depth=(1, 0), reader="grey")
@example(width=100_000, height=100_000, depth=(8, 0), reader="ImageFolder")
def test_declared_sizes_and_bombs(folder, width, height, depth, reader):
    read_or_refuse(folder, png_declaring(width, height, *depth), reader)


def test_a_real_bomb_is_refused_from_its_header(folder):
    """A 50 MP picture compresses to kilobytes; it is refused before its pixels are decoded."""
    path = folder / "bomb.png"
    side = int(data.MAX_IMAGE_PIXELS**0.5) + 1
    Image.new("1", (side, side)).save(path)
    assert path.stat().st_size < 100_000
    for reader in READERS.values():
        with pytest.raises(data.ImageTooLarge, match=f"{side}x{side} pixels") as caught:
            reader(path)
        assert_clear(caught.value, str(path))


@pytest.mark.parametrize("mode", ["I;16", "P", "RGBA", "LA", "1"])
def test_16_bit_palette_and_alpha_images_are_read(folder, mode):
    path = folder / f"odd-{mode.replace(';', '')}.png"
    Image.new(mode, (30, 20)).save(path)
    assert data.read_image(path).shape == (20, 30)
    assert data.read_image(path, channels=3).shape == (3, 20, 30)
    assert data.model_pixels(path, (1, 28, 28)).shape == (1, 28, 28)


@pytest.mark.parametrize("kind", ["bomb", "truncated", "not an image", "missing"])
def test_predict_says_one_line_per_bad_image(fuzz_run, folder, capsys, kind):
    """``kernelab predict`` reads images through the same opener: one line, no traceback."""
    path = folder / f"predict-{kind.replace(' ', '-')}.png"
    if kind == "bomb":
        path.write_bytes(png_declaring(100_000, 100_000))
    elif kind == "truncated":
        path.write_bytes(encode("L", (30, 30), "PNG", 0)[:60])
    elif kind == "not an image":
        path.write_bytes(b"%PDF-1.4 not a picture")
    assert cli.main(["predict", str(fuzz_run), str(path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert_clear(ValueError(lines[0]), str(path))


TRANSFORMS = {
    "ToTensor": T.ToTensor(),
    "PILToTensor": T.PILToTensor(),
    "Grayscale": T.Grayscale(),
    "Resize": T.Resize(7),
    "CenterCrop": T.CenterCrop(5),
    "pipeline": T.Compose([T.Resize((9, 9)), T.ToTensor(), T.Normalize((0.5,), (0.5,))]),
}


@given(
    mode=st.sampled_from(MODES + ["YCbCr", "HSV", "LAB"]),
    size=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    name=st.sampled_from(sorted(TRANSFORMS)),
)
def test_vision_transforms_on_pil_images_of_any_mode(mode, size, name):
    """The PIL path of the vision transforms: a tensor, or one line: a ValueError (a mode
    Pillow cannot convert) or, as torchvision, a TypeError (Normalize of integer pixels)."""
    try:
        TRANSFORMS[name](Image.new(mode, size))
    except (ValueError, TypeError) as error:
        assert_clear(error)

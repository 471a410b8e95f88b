"""What every fuzzed input must end in: success, or the target's documented error with one
printable line under 300 characters that names the file or field."""

from __future__ import annotations

MAX_MESSAGE = 300


def assert_clear(error: BaseException, *names: str) -> None:
    """``error``'s message is one printable line, short, and mentions one of ``names``."""
    text = str(error)
    assert text, f"{type(error).__name__} with an empty message"
    assert "\n" not in text and text.isprintable(), f"not one printable line: {text!r}"
    assert len(text) < MAX_MESSAGE, f"{len(text)} characters: {text[:400]!r}"
    assert not names or any(str(n) in text for n in names), f"names none of {names}: {text!r}"


def flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    """``data`` with the byte at each ``position % len`` xor-ed with a non-zero ``mask``."""
    out = bytearray(data)
    for position, mask in flips:
        if out:
            out[position % len(out)] ^= mask
    return bytes(out)


def cut(data: bytes, where: int) -> bytes:
    """``data`` truncated: ``where`` counts from the start if >= 0, else from the end."""
    return data[:where] if where >= 0 else data[: max(0, len(data) + where)]

"""What a kernel does to frequencies: the magnitude of its 2-D DFT, and a one-word class.

A kernel ``w`` (kH, kW) applied to an image multiplies the image's spectrum by the kernel's
frequency response H(f) = DFT(w). Its magnitude |H| says which spatial frequencies pass:
a blur keeps slow variations (low frequencies), an edge detector keeps fast ones. Correlation
and convolution have the same |H| (flipping a kernel only conjugates H), so everything here
holds for CNN layers as for classic filtering.

Frequencies are measured in cycles per pixel, f in [-1/2, 1/2) per axis, and as the
*normalised radius* ρ = |f| / (1/2): ρ = 0 is DC (a constant image), ρ = 1 is the Nyquist
frequency along an axis (a pattern alternating every pixel), and the corners of the grid
reach ρ = √2.

The classification rule (:func:`classify`), on the magnitude M sampled on a size x size grid:

1. **all-pass/other** when the magnitude is flat: min M >= 1/2 · max M (the identity has
   min = max; a Gaussian so narrow it is nearly the identity also lands here). A kernel of
   zeros is also "all-pass/other".
2. Otherwise two numbers decide: the *DC gain* ``dc = M(0) / max M`` and the *spectral
   centroid* ``ρ̄ = Σ ρ·M² / Σ M²``, the energy-weighted mean radius over the whole grid
   (white noise, i.e. a flat spectrum, has ρ̄ ≈ 0.77).

   - DC passes (dc >= 1/2) and ρ̄ < 2/3: **low-pass**
   - DC passes (dc >= 1/2) and ρ̄ >= 2/3: **all-pass/other**
   - DC blocked (dc < 1/2) and ρ̄ >= 2/3: **high-pass**
   - DC blocked (dc < 1/2) and ρ̄ < 2/3: **band-pass**

   A filter that blocks DC and puts its energy in the upper third of the band is high-pass;
   one that blocks DC but keeps its energy lower down has a pass band that falls off at both
   ends: band-pass. DC gain and the peak are relative: the sharpening kernel
   [[0, -1, 0], [-1, 5, -1], [0, -1, 0]] passes DC at gain 1 but its highest frequencies at
   gain 9, so it counts as high-pass; a kernel that keeps DC at half its peak gain or more yet
   puts its energy high up is none of the three.

Consequences (checked in ``tests/test_frequency.py``): Gaussian and box filters are low-pass at
every size; the 3x3 Laplacians (ρ̄ ≈ 0.9–1.0), identity minus a blur, and Sobel's 3x3
cross-derivative d²/dxdy (ρ̄ ≈ 0.73) are high-pass; Gabor kernels with a wavelength near half
the kernel size (7x7 and up; at 5x5 that wavelength is 2.5 pixels, near Nyquist, and the
Gabor is high-pass) and differences of Gaussians are band-pass. **Sobel x is band-pass** (ρ̄ ≈ 0.57
at 3x3, lower at 5x5 and 7x7): its derivative row [-1, 0, 1] has response 2|sin 2πf|, zero at
DC *and* at Nyquist, and its smoothing column [1, 2, 1] removes high vertical frequencies —
a smoothed derivative. Larger Sobel-style kernels (5x5 cross-derivative, OpenCV's 5x5 and 7x7
Laplacian apertures, Laplacian of Gaussian) carry more smoothing and are band-pass too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("low-pass", "high-pass", "band-pass", "all-pass/other")
FLAT = 0.5  # min/max of the magnitude at or above which a kernel counts as all-pass
DC_PASSES = 0.5  # DC gain (relative to the peak) at or above which DC counts as passed
HIGH = 2 / 3  # spectral centroid at or above which the energy sits in the upper band


def frequency_response(kernel: np.ndarray, size: int = 32) -> np.ndarray:
    """Magnitude of the zero-padded 2-D DFT of a kernel, fftshifted so the centre is DC.

    Shape:
        kernel (kH, kW), or (C, kH, kW) for a kernel as deep as its input; output
        (size, size). Entry ``[size // 2, size // 2]`` is DC (the sum of the weights); the
        frequency of entry (i, j) is ((i - size // 2) / size, (j - size // 2) / size) cycles
        per pixel.

    For a deep kernel the result is sqrt(Σ_c |H_c|²): the gain each frequency gets when every
    input channel carries independent white noise. Where the kernel sits in the padded grid
    only changes the phase, never the magnitude.
    """
    w = np.asarray(kernel, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(
            f"frequency_response: expected a kernel (kH, kW) or (C, kH, kW), "
            f"received shape {np.shape(kernel)}"
        )
    if not isinstance(size, (int, np.integer)) or size < max(w.shape[1:]):
        raise ValueError(
            f"frequency_response: expected size >= the kernel's {w.shape[1]}x{w.shape[2]}, "
            f"received size={size!r}"
        )
    spectrum = np.fft.fft2(w, s=(size, size))  # (C, size, size), zero-padded bottom/right
    magnitude = np.sqrt((np.abs(spectrum) ** 2).sum(axis=0))
    return np.fft.fftshift(magnitude)


def radius(size: int) -> np.ndarray:
    """Normalised radial frequency ρ = |f| / (1/2) of every entry of a ``size`` grid."""
    f = np.fft.fftshift(np.fft.fftfreq(size))
    return np.hypot(f[:, None], f[None, :]) / 0.5


@dataclass(frozen=True)
class Response:
    """The numbers :func:`classify` decides on, and the class they give."""

    dc_gain: float  # M(0) / max M
    flatness: float  # min M / max M
    centroid: float  # Σ ρ·M² / Σ M²
    kind: str


def describe(magnitude: np.ndarray) -> Response:
    """DC gain, flatness, spectral centroid and class of an fftshifted magnitude (size, size).

    See the module docstring for the rule.
    """
    m = np.asarray(magnitude, dtype=np.float64)
    size = m.shape[0]
    peak = float(m.max())
    if peak <= 1e-12 * max(1.0, float(np.abs(m).sum())):  # a kernel of zeros passes nothing
        return Response(0.0, 0.0, 0.0, "all-pass/other")
    dc, flatness = float(m[size // 2, size // 2] / peak), float(m.min() / peak)
    energy = m**2
    centroid = float((radius(size) * energy).sum() / energy.sum())
    if flatness >= FLAT:
        kind = "all-pass/other"
    elif dc >= DC_PASSES:
        kind = "low-pass" if centroid < HIGH else "all-pass/other"
    else:
        kind = "high-pass" if centroid >= HIGH else "band-pass"
    return Response(dc, flatness, centroid, kind)


def classify(kernel: np.ndarray, size: int = 32) -> str:
    """The frequency class of a kernel: low-pass, high-pass, band-pass or all-pass/other.

    The rule is in the module docstring.

    Shape: kernel (kH, kW) or (C, kH, kW).
    """
    return describe(frequency_response(kernel, size)).kind


def classify_layer(weight, size: int = 32) -> list[Response]:
    """One :class:`Response` per kernel of a layer's weight (C_out, C_in/groups, kH, kW)."""
    w = np.asarray(getattr(weight, "array", weight), dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(
            f"classify_layer: expected a weight (C_out, C_in/groups, kH, kW), "
            f"received shape {w.shape}"
        )
    return [describe(frequency_response(kernel, size)) for kernel in w]


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → "0–2, 5, 7–8"."""
    parts, start = [], None
    for position, index in enumerate(indices):
        if start is None:
            start = index
        if position + 1 == len(indices) or indices[position + 1] != index + 1:
            parts.append(str(start) if start == index else f"{start}–{index}")
            start = None
    return ", ".join(parts)


def frequency_table(conv_weight, size: int = 32, details: bool = True) -> str:
    """The kernels of a layer grouped by frequency class, as a Markdown table.

    The first table has one row per class: how many kernels and which (output-channel
    indices). With ``details``, a second table lists every kernel's DC gain, spectral
    centroid and class. Shape: conv_weight (C_out, C_in/groups, kH, kW), array or tensor.
    """
    responses = classify_layer(conv_weight, size)
    lines = ["| class | count | kernels |", "|---|---:|---|"]
    for kind in CLASSES:
        members = [i for i, r in enumerate(responses) if r.kind == kind]
        lines.append(f"| {kind} | {len(members)} | {_ranges(members) or '–'} |")
    if details:
        lines += ["", "| kernel | class | DC gain | centroid ρ̄ |", "|---:|---|---:|---:|"]
        lines += [
            f"| {i} | {r.kind} | {r.dc_gain:.2f} | {r.centroid:.2f} |"
            for i, r in enumerate(responses)
        ]
    return "\n".join(lines) + "\n"

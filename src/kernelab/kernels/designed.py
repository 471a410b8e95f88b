"""Hand-designed kernels: the classic image filters, as float64 (kH, kW) arrays.

Every kernel here is meant for *correlation*, which is what a CNN layer (and ``F.conv2d``)
computes: ``out[i, j] = sum(kernel * patch centred at (i, j))``. Signs are stated for that use;
rows run down the image (y grows downward) and columns to the right, as in OpenCV and
scikit-image. ``size`` is an int or a ``(kH, kW)`` pair wherever the definition allows
non-square kernels. The caller casts to the dtype it needs.

:func:`get_kernel` turns a command-line spec such as ``gaussian:7:1.5`` into a kernel.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np

Size = int | tuple[int, int]


def _pair(size: Size, name: str) -> tuple[int, int]:
    """``(kH, kW)`` from an int or a pair, each at least 1."""
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(k, (int, np.integer)) and k >= 1 for k in pair):
        raise ValueError(f"{name}: expected size as a positive int or (kH, kW), received {size!r}")
    return int(pair[0]), int(pair[1])


def _odd_pair(size: Size, name: str, smallest: int = 3) -> tuple[int, int]:
    """``(kH, kW)`` for kernels that need a centre tap: odd and at least ``smallest``."""
    kh, kw = _pair(size, name)
    if kh % 2 == 0 or kw % 2 == 0 or min(kh, kw) < smallest:
        raise ValueError(
            f"{name}: expected odd sizes >= {smallest} (3, 5, 7, ...), received {size!r}"
        )
    return kh, kw


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Centred (y, x) coordinates, shape (kH, 1) and (1, kW); half-integers for even sizes."""
    kh, kw = shape
    y = np.arange(kh, dtype=np.float64)[:, None] - (kh - 1) / 2
    x = np.arange(kw, dtype=np.float64)[None, :] - (kw - 1) / 2
    return y, x


def _binomial(n: int) -> np.ndarray:
    """Row ``n - 1`` of Pascal's triangle: the n-tap binomial smoothing, e.g. [1, 2, 1]."""
    return np.array([math.comb(n - 1, k) for k in range(n)], dtype=np.float64)


def _derivative(n: int, order: int = 1) -> np.ndarray:
    """The n-tap Sobel derivative: [-1, 0, 1] (or [1, -2, 1]) smoothed by a binomial."""
    base = np.array([-1.0, 0.0, 1.0]) if order == 1 else np.array([1.0, -2.0, 1.0])
    return np.convolve(base, _binomial(n - 2))


def _positive(value: float, what: str, name: str) -> float:
    """A width in pixels: at least 0.001 (far narrower than a pixel already gives a delta;
    narrower still, its square underflows and the kernel would be NaN)."""
    if not value >= 1e-3:
        raise ValueError(f"{name}: expected {what} >= 0.001, received {value!r}")
    return float(value)


def identity(size: Size = 3) -> np.ndarray:
    """A single 1 at the centre tap (row kH // 2, column kW // 2, as ``init.dirac_``)."""
    kh, kw = _pair(size, "identity")
    out = np.zeros((kh, kw))
    out[kh // 2, kw // 2] = 1.0
    return out


def box(size: Size = 3) -> np.ndarray:
    """The mean filter: every tap 1 / (kH·kW)."""
    kh, kw = _pair(size, "box")
    return np.full((kh, kw), 1.0 / (kh * kw))


def gaussian(size: Size = 3, sigma: float | tuple[float, float] | None = None) -> np.ndarray:
    """A sampled Gaussian exp(-(x²/2σx² + y²/2σy²)), normalised to sum 1.

    ``sigma`` is a float or ``(σy, σx)``; None takes OpenCV's ``getGaussianKernel`` default
    per axis, σ = 0.3·((k − 1)/2 − 1) + 0.8, which suits a kernel of k taps.
    """
    shape = _pair(size, "gaussian")
    if sigma is None:
        sigmas = tuple(0.3 * ((k - 1) / 2 - 1) + 0.8 for k in shape)
    else:
        sigmas = (sigma, sigma) if np.isscalar(sigma) else tuple(sigma)
    sy, sx = (_positive(s, "sigma", "gaussian") for s in sigmas)
    y, x = _grid(shape)
    out = np.exp(-(x**2) / (2 * sx**2) - y**2 / (2 * sy**2))
    return out / out.sum()


def sobel_x(size: Size = 3) -> np.ndarray:
    """Sobel derivative along x: positive where intensity increases to the right.

    3x3 is [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]. Larger (odd) sizes use the standard
    construction OpenCV uses: outer(binomial smoothing of kH taps, derivative of kW taps),
    the derivative being [-1, 0, 1] convolved with a binomial, e.g. [-1, -2, 0, 2, 1].
    """
    kh, kw = _odd_pair(size, "sobel_x")
    return np.outer(_binomial(kh), _derivative(kw))


def sobel_y(size: Size = 3) -> np.ndarray:
    """Sobel derivative along y: positive where intensity increases downward (rows grow)."""
    kh, kw = _odd_pair(size, "sobel_y")
    return np.outer(_derivative(kh), _binomial(kw))


def scharr_x() -> np.ndarray:
    """Scharr derivative along x (3x3 only): positive for intensity increasing to the right."""
    return np.array([[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]])


def scharr_y() -> np.ndarray:
    """Scharr derivative along y (3x3 only): positive for intensity increasing downward."""
    return scharr_x().T.copy()


def prewitt_x(size: Size = 3) -> np.ndarray:
    """Prewitt derivative along x: positive for intensity increasing to the right.

    Every row is the ramp [-k//2, ..., 0, ..., k//2], e.g. [-1, 0, 1] at 3x3 and
    [-2, -1, 0, 1, 2] at 5x5 (the usual larger Prewitt); rows are not smoothed.
    """
    kh, kw = _odd_pair(size, "prewitt_x")
    return np.outer(np.ones(kh), np.arange(kw, dtype=np.float64) - kw // 2)


def prewitt_y(size: Size = 3) -> np.ndarray:
    """Prewitt derivative along y: positive for intensity increasing downward."""
    kh, kw = _odd_pair(size, "prewitt_y")
    return np.outer(np.arange(kh, dtype=np.float64) - kh // 2, np.ones(kw))


def laplacian(neighbours: int = 4, size: Size = 3) -> np.ndarray:
    """The discrete Laplacian ∇², centre negative, zero-sum (OpenCV's sign).

    3x3: the 4-neighbour [[0, 1, 0], [1, -4, 1], [0, 1, 0]] or the 8-neighbour stencil
    (all ones, centre -8). Odd sizes >= 5 give OpenCV's ``Laplacian(ksize=k)`` aperture,
    d²/dx² + d²/dy² of Sobel kernels: outer(binomial, [1, -2, 1] * binomial) + transpose;
    ``neighbours`` only selects between the two 3x3 stencils.
    """
    if neighbours not in (4, 8):
        raise ValueError(f"laplacian: expected neighbours 4 or 8, received {neighbours!r}")
    kh, kw = _odd_pair(size, "laplacian")
    if (kh, kw) == (3, 3):
        if neighbours == 4:
            return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        out = np.ones((3, 3))
        out[1, 1] = -8.0
        return out
    if neighbours == 8:
        raise ValueError(f"laplacian: the 8-neighbour stencil is 3x3 only, received size {size!r}")
    return np.outer(_binomial(kh), _derivative(kw, 2)) + np.outer(_derivative(kh, 2), _binomial(kw))


def laplacian_of_gaussian(size: Size, sigma: float) -> np.ndarray:
    """∇²G sampled: -(1/πσ⁴)(1 - r²/2σ²)·exp(-r²/2σ²), minus its mean so it sums to zero.

    Centre negative like :func:`laplacian`; removing the mean makes flat regions give
    exactly 0 despite the truncation to kH x kW taps.
    """
    sigma = _positive(sigma, "sigma", "laplacian_of_gaussian")
    y, x = _grid(_pair(size, "laplacian_of_gaussian"))
    r2 = (x**2 + y**2) / (2 * sigma**2)
    out = -(1 - r2) * np.exp(-r2) / (math.pi * sigma**4)
    return out - out.mean()


def difference_of_gaussians(size: Size, sigma1: float, sigma2: float) -> np.ndarray:
    """``gaussian(size, sigma1) - gaussian(size, sigma2)``: zero-sum, a band-pass filter.

    With sigma1 < sigma2 the centre is positive (an on-centre, off-surround cell), and the
    kernel approximates -∇²G; sigma2 ≈ 1.6·sigma1 is Marr and Hildreth's choice.
    """
    return gaussian(size, sigma1) - gaussian(size, sigma2)


def sharpen() -> np.ndarray:
    """3x3 sharpening: identity plus the negated 4-neighbour Laplacian (sums to 1)."""
    return np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])


def emboss() -> np.ndarray:
    """3x3 emboss (GIMP's): lights surfaces facing the bottom-right, sums to 1."""
    return np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


def gabor(
    size: Size,
    theta: float = 0.0,
    sigma: float | None = None,
    lambd: float | None = None,
    psi: float = 0.0,
    gamma: float = 0.5,
) -> np.ndarray:
    """The real Gabor kernel, with OpenCV's ``getGaborKernel`` formula and orientation.

    v(x, y) = exp(-(x'² + γ²y'²) / 2σ²) · cos(2π x'/λ + ψ), x' = x cosθ + y sinθ,
    y' = -x sinθ + y cosθ. Like OpenCV, v(x, y) is stored at row cy − y, column cx − x
    (the array is v point-reflected about the centre), so for odd sizes the result equals
    ``cv2.getGaborKernel((kW, kH), sigma, theta, lambd, gamma, psi)``. Note the argument
    order differs from OpenCV's and ``size`` is (kH, kW) where OpenCV's ksize is (width,
    height); even sizes use half-integer offsets where OpenCV would return k + 1 taps.

    Orientation: θ is the angle of the stripes' normal, from +x (right) toward +y (down, so
    clockwise as displayed). θ = 0 gives vertical stripes (the wave runs along x; it responds
    to vertical edges and bars), θ = π/2 horizontal ones. ψ = 0 (our default; OpenCV's is π/2)
    is the even, symmetric kernel. None for ``lambd`` takes max(2, k/2) with k = min(kH, kW),
    and for ``sigma`` takes 0.56·λ (a bandwidth of one octave).
    """
    shape = _pair(size, "gabor")
    if lambd is None:
        lambd = max(2.0, min(shape) / 2)
    lambd = _positive(lambd, "lambd", "gabor")
    sigma = _positive(0.56 * lambd if sigma is None else sigma, "sigma", "gabor")
    gamma = _positive(gamma, "gamma", "gabor")
    y, x = _grid(shape)
    y, x = -y, -x  # OpenCV writes v(x, y) at (cy - y, cx - x)
    c, s = math.cos(theta), math.sin(theta)
    xr, yr = x * c + y * s, -x * s + y * c
    envelope = np.exp(-(xr**2) / (2 * sigma**2) - yr**2 * gamma**2 / (2 * sigma**2))
    return envelope * np.cos(2 * math.pi * xr / lambd + psi)


_KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "identity": identity,
    "box": box,
    "gaussian": gaussian,
    "sobel-x": sobel_x,
    "sobel-y": sobel_y,
    "scharr-x": scharr_x,
    "scharr-y": scharr_y,
    "prewitt-x": prewitt_x,
    "prewitt-y": prewitt_y,
    "laplacian": laplacian,
    "log": laplacian_of_gaussian,
    "dog": difference_of_gaussians,
    "sharpen": sharpen,
    "emboss": emboss,
    "gabor": gabor,
}
KERNELS: list[str] = list(_KERNELS)

# Limits of a spec, checked before anything is built: a 255x255 kernel is 65,025 values
# (larger than any image it would filter here), and no parameter needs a magnitude past 1e6.
MAX_KERNEL_SIZE = 255
MAX_SPEC_NUMBER = 1e6


def _parse_size(text: str) -> Size:
    """``7`` or ``7x5`` (kH x kW), each side in 1..MAX_KERNEL_SIZE."""
    parts = text.lower().split("x")
    if len(parts) > 2:
        raise ValueError(text)
    sizes = tuple(_bounded(int(p), 1, MAX_KERNEL_SIZE) for p in parts)
    return sizes[0] if len(sizes) == 1 else sizes


def _parse_count(text: str) -> int:
    return _bounded(int(text), 1, MAX_KERNEL_SIZE)


def _parse_number(text: str) -> float:
    return _bounded(float(text), -MAX_SPEC_NUMBER, MAX_SPEC_NUMBER)


def _bounded(value, low, high):
    """``value`` if in [low, high]; NaN fails the comparison and is refused too."""
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low:g}..{high:g}")
    return value


def _listed(names, width: int = 180) -> str:
    """The names, as many as fit in about ``width`` characters, then how many in all."""
    text = ", ".join(names)
    if len(text) <= width:
        return text
    return f"{text[:width].rpartition(', ')[0]}, ... ({len(names)} in all)"


def spec_usage(name: str, fn: Callable, skip: int = 0) -> str:
    """``gaussian:size[:sigma]``: how a spec for ``fn`` is written, from its signature."""
    text, optional = name, 0
    for param in list(inspect.signature(fn).parameters.values())[skip:]:
        if param.default is inspect.Parameter.empty:
            text += f":{param.name}"
        else:
            text += f"[:{param.name}"
            optional += 1
    return text + "]" * optional


def parse_spec(spec: str, registry: dict[str, Callable], kind: str, skip: int = 0):
    """Split ``name:arg:arg`` into the registered function and its parsed arguments.

    Arguments named ``size`` read ``7`` or ``7x5``, ``neighbours`` and ``groups`` read ints,
    everything else floats, each within the limits above. ``skip`` leading parameters are
    filled by the caller.
    """
    name, *texts = spec.strip().split(":")
    key = name.strip().lower()
    key = next(
        (k for k in (key, key.replace("_", "-"), key.replace("-", "_")) if k in registry), ""
    )
    if not key:
        raise ValueError(f"unknown {kind} {name[:40]!r}; expected one of: {_listed(registry)}")
    fn = registry[key]
    params = list(inspect.signature(fn).parameters)[skip:]
    form = spec_usage(key, fn, skip)
    if len(texts) > len(params):
        raise ValueError(f"{kind} {spec[:60]!r}: too many parameters; expected {form}")
    args = []
    for param, text in zip(params, texts, strict=False):
        parse = {"size": _parse_size, "neighbours": _parse_count, "groups": _parse_count}.get(
            param, _parse_number
        )
        try:
            args.append(parse(text))
        except ValueError:
            what = {
                _parse_size: f"a size like 7 or 7x5 (at most {MAX_KERNEL_SIZE})",
                _parse_count: f"a whole number in 1..{MAX_KERNEL_SIZE}",
            }.get(parse, f"a number within ±{MAX_SPEC_NUMBER:,.0f}")
            raise ValueError(
                f"{kind} {spec[:60]!r}: {param} must be {what}, received {text[:20]!r}; "
                f"expected {form}"
            ) from None
    rest = list(inspect.signature(fn).parameters.values())[skip + len(args) :]
    if any(p.default is inspect.Parameter.empty for p in rest):
        raise ValueError(f"{kind} {spec[:60]!r}: missing parameters; expected {form}")
    return fn, args


def get_kernel(spec: str) -> np.ndarray:
    """The kernel a spec names: ``name[:arg[:arg ...]]``, arguments in the function's order.

    Examples: ``sobel-x``, ``sobel-x:5``, ``box:3``, ``gaussian:7:1.5``, ``gaussian:7x5``,
    ``gabor:7:0.785`` (size, θ in radians), ``laplacian``, ``laplacian:8``, ``log:9:1.4``
    (size, σ), ``dog:9:1:2`` (size, σ1, σ2). Names: see :data:`KERNELS`; ``_`` may replace
    ``-``. A bad spec is a ``ValueError`` that lists the valid names or the expected form.
    """
    fn, args = parse_spec(spec, _KERNELS, "kernel")
    try:
        return fn(*args)
    except ValueError as error:  # the parameters do not suit each other (sobel-x:4)
        raise ValueError(f"kernel {spec[:60]!r}: {error}") from None


def kernel_spec_size(spec: str) -> tuple[int, int]:
    """The (kH, kW) a kernel spec builds, read from the spec without building it."""
    fn, args = parse_spec(spec, _KERNELS, "kernel")
    names = list(inspect.signature(fn).parameters)
    if "size" not in names:
        return fn(*args).shape  # a fixed, small kernel (sharpen, emboss)
    index = names.index("size")
    size = args[index] if index < len(args) else inspect.signature(fn).parameters["size"].default
    return (size, size) if isinstance(size, int) else tuple(size)

"""Kernel science: what a kernel is, how it starts, what it may be, and what it does.

- ``designed``: hand-designed kernels (Sobel, Gaussian, Laplacian, Gabor, ...), re-exported
  here so ``kernelab.kernels.sobel_x()`` reads as it says;
- ``init``: initialisers with ``torch.nn.init``'s names, LeCun's, and ``kernel_`` for a bank
  of hand-designed kernels; ``initializers``: every initialiser by its command-line name;
- ``constraints``: symmetric kernels as a parametrisation with fewer free parameters;
- ``frequency``: the frequency response of a kernel (low-, high-, band-pass);
- ``filtering``: classic image filtering with one kernel;
- ``summary``: a model's shapes, parameters, MACs and receptive fields;
- ``viz``: pictures of kernels, feature maps and spectra (matplotlib).
"""

from .designed import (
    KERNELS,
    Size,
    box,
    difference_of_gaussians,
    emboss,
    gabor,
    gaussian,
    get_kernel,
    identity,
    kernel_spec_size,
    laplacian,
    laplacian_of_gaussian,
    parse_spec,
    prewitt_x,
    prewitt_y,
    scharr_x,
    scharr_y,
    sharpen,
    sobel_x,
    sobel_y,
    spec_usage,
)

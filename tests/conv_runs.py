"""Helpers for tests of one convolution algorithm (``conv_algorithms`` and its compiled
twins): run its forward and backward as ``Conv2d`` does, and PyTorch's answer for the same."""

import types

import numpy as np
import torch
from gradcheck import assert_rel_close

from kernelab.functional.conv import input_gradient, pad


def run(algorithm, x, w, b, geometry, needs=(True, True, True), seed=0):
    """Forward and backward of ``algorithm`` on (N, C, H, W) arrays, as ``Conv2d`` runs it:
    y (N, C_out, OH, OW), gx (N, C_in, H, W) or None, gw or None, and the gy used."""
    ctx = types.SimpleNamespace(needs_input_grad=needs)
    xc = x.transpose(1, 0, 2, 3)  # (C_in, N, H, W)
    if not getattr(algorithm, "unpadded_input", False):
        xc = pad(xc, geometry.padding)  # (C_in, N, Hp, Wp), a view or a copy
    y = algorithm.forward(ctx, xc, w, b, geometry)  # (C_out, N, OH, OW)
    gy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    gxp, gw = algorithm.backward(ctx, gy)
    gx = None if gxp is None else input_gradient(gxp, geometry, x.shape[2:])
    return y.transpose(1, 0, 2, 3), gx, gw, gy.transpose(1, 0, 2, 3)


def torch_reference(x, w, b, geometry, gy):
    """y, gx, gw from PyTorch (explicit padding first, so asymmetric padding works)."""
    (top, bottom), (left, right) = geometry.padding
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b)
    xpt = torch.nn.functional.pad(xt, (left, right, top, bottom))
    y = torch.nn.functional.conv2d(
        xpt, wt, bt, geometry.stride, 0, geometry.dilation, geometry.groups
    )
    y.backward(torch.tensor(np.ascontiguousarray(gy)))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


def check_only_asked_gradients(algorithm, x, w, geometry, needs) -> None:
    """``needs`` asks for the input or the kernel gradient alone: only that one comes back,
    and it matches PyTorch's (float64 inputs)."""
    _, gx, gw, gy = run(algorithm, x, w, None, geometry, needs)
    _, tgx, tgw = torch_reference(x, w, None, geometry, gy)
    assert (gx is None) != needs[0] and (gw is None) != needs[1]
    if needs[0]:
        assert_rel_close(gx, tgx, 1e-9, "input gradient")
    else:
        assert_rel_close(gw, tgw, 1e-9, "kernel gradient")

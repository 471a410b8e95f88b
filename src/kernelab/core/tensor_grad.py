"""The Tensor's gradient side, with PyTorch's semantics.

- ``grad`` is a Tensor (or None) that backward adds into, in place once it exists; it can be
  assigned None or a tensor of the tensor's shape and dtype.
- ``data`` is the tensor's values outside the graph: a new tensor sharing its memory, so
  ``p.data.normal_()`` or ``p.data -= lr * p.grad.data`` write into ``p``.
- kernelab's own code reaches the NumPy array directly as ``tensor.array`` (no Tensor per
  access), and a gradient's as ``tensor.grad.array``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import autograd
from ..autograd import Node, is_tensor, wrap


class GradMethods:
    """``grad``, ``data``, ``backward``, ``retain_grad``, ``detach``, ``requires_grad_`` ..."""

    array: np.ndarray
    node: Node | None
    requires_grad: bool
    retains_grad = False
    _grad = None
    _post_accumulate_hooks: tuple | list = ()
    grad_hooks: tuple | list = ()  # register_hook's, read by the backward pass

    @property
    def is_leaf(self) -> bool:
        return self.node is None

    @property
    def grad_fn(self) -> Node | None:
        return self.node

    @property
    def data(self):
        """The values outside the graph: a tensor sharing this one's memory."""
        return wrap(self.array)

    @data.setter
    def data(self, value) -> None:
        if not is_tensor(value):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        self.array = value.array

    @property
    def grad(self):
        """The gradient backward computed for this leaf (a Tensor), None before the first."""
        if self.node is not None and not self.retains_grad and self._grad is None:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed: "
                "backward does not fill it; call .retain_grad() on it first if you want it",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not is_tensor(value):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type "
                    f"{type(value).__name__}"
                )
            if value.array.shape != self.array.shape:
                raise RuntimeError(
                    f"attempting to assign a gradient of size {list(value.array.shape)} to a "
                    f"tensor of size {list(self.array.shape)}; they must be the same size"
                )
            if value.array.dtype != self.array.dtype:
                raise RuntimeError(
                    f"attempting to assign a gradient of dtype {value.array.dtype} to a "
                    f"tensor of dtype {self.array.dtype}; they must match"
                )
        self._grad = value

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Add the gradient of this tensor into ``.grad`` of every leaf that requires one."""
        if create_graph:
            raise NotImplementedError(
                "backward(create_graph=True): kernelab computes first-order gradients only"
            )
        autograd.backward(self, gradient, retain_graph=retain_graph, inputs=inputs)

    def accumulate_grad(self, grad: np.ndarray, owned: bool = False) -> None:
        """Add ``grad`` into ``.grad`` (in place after the first time); backward calls it, then
        the hooks. The first gradient is copied unless ``owned`` (nothing else holds it) and
        already of this tensor's dtype; a copy is laid out as the tensor is (as PyTorch's
        AccumulateGrad lays it out), not as the gradient was (a convolution's kernel gradient
        is a transposed view), so the optimiser reads it as one run of memory."""
        if self._grad is None:
            keep = owned and grad.dtype == self.array.dtype and grad.flags.writeable
            if not keep:
                copy = np.empty_like(self.array)
                np.copyto(copy, grad, casting="unsafe")
                grad = copy
            self._grad = wrap(grad)
        else:
            np.add(self._grad.array, grad, out=self._grad.array, casting="same_kind")
        for hook in self._post_accumulate_hooks:
            hook(self)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Any], None]) -> None:
        """Call ``hook(tensor)`` each time backward adds into this leaf's gradient."""
        if not self._post_accumulate_hooks:
            self._post_accumulate_hooks = []
        self._post_accumulate_hooks.append(hook)

    def register_hook(self, hook: Callable[[Any], Any]) -> RemovableHandle:
        """Call ``hook(grad)`` each time this tensor's gradient is computed, before it is used;
        a tensor it returns replaces the gradient. ``.remove()`` on the result takes it off."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        self.grad_hooks = [*self.grad_hooks, hook]
        return RemovableHandle(self, hook)

    def retain_grad(self) -> None:
        """Keep this inner tensor's gradient in ``.grad`` after backward (leaves always do)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.node is not None:
            self.retains_grad = True

    def detach(self):
        """The same values outside the graph, sharing memory."""
        return wrap(self.array)

    def detach_(self):
        """Cut this tensor out of the graph: it becomes a leaf that requires no gradient."""
        self.node = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True):
        if not requires_grad and self.node is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; use detach() to "
                "use a tensor computed by the graph outside it"
            )
        if requires_grad and self.array.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad
        return self


class RemovableHandle:
    """What ``register_hook`` returns: ``remove()`` takes the hook off its tensor."""

    def __init__(self, tensor: Any, hook: Callable):
        self.tensor, self.hook = tensor, hook

    def remove(self) -> None:
        self.tensor.grad_hooks = [h for h in self.tensor.grad_hooks if h is not self.hook]

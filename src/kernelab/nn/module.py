"""Module and Parameter: layers hold parameters and sub-layers, and nothing else."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..autograd import unwrap
from ..core.devices import check_device
from ..core.dtypes import get_default_dtype
from ..core.errors import ShapeError
from ..core.rng import as_generator
from ..core.tensor import Tensor


class Parameter(Tensor):
    """A tensor a module learns: it requires a gradient unless told otherwise."""

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(np.asarray(unwrap(data)), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model, with PyTorch's interface.

    Assigning a :class:`Parameter` or a ``Module`` to an attribute registers it, so
    ``parameters()``, ``state_dict()`` and ``train()``/``eval()`` reach it.
    """

    # The HTML a notebook shows for a model, or None: set by kernelab.kernels.summary (its
    # summary table), which builds on this module and so cannot be imported by it.
    notebook_view: ClassVar[Callable[[Module], str | None] | None] = None

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.forward(*args, **kwargs)
        except (ShapeError, TypeError, ValueError, IndexError) as error:
            # Bad input (shape, dtype, value): the innermost layer names itself, once.
            if getattr(error, "layer", None) is None and error.args:
                error.layer = self._short_repr()
                error.args = (f"{error.layer}: {error.args[0]}",) + error.args[1:]
            raise

    # ---- registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("call super().__init__() before assigning to a Module")
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        for registry in ("_parameters", "_modules", "_buffers"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, value: Any, persistent: bool = True) -> None:
        """State that is saved but not learned, e.g. batch norm's running statistics."""
        self.__dict__.pop(name, None)
        self._buffers[name] = None if value is None else Tensor(np.asarray(unwrap(value)))
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._modules[name] = module

    # ---- traversal
    def named_modules(self, prefix: str = "", memo: set | None = None) -> Iterator:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, prefix: str, recurse: bool) -> Iterator:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator:
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn: Callable[[Module], None]) -> Module:
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter; frozen kernels are never updated."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad.array[...] = 0

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Accepts a device ("cpu") and/or a floating dtype, as PyTorch's ``Module.to``."""
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)  # a copy to the CPU is always synchronous
        for arg in list(args) + list(kwargs.values()):
            if isinstance(arg, np.dtype) or (isinstance(arg, type) and issubclass(arg, np.generic)):
                dtype = arg
            elif arg is not None:
                check_device(arg)
        if dtype is not None:
            self._cast(np.dtype(dtype))
        return self

    def _cast(self, dtype: np.dtype) -> None:
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.array.dtype.kind == "f":
                tensor.array = tensor.array.astype(dtype)
                tensor.grad = None

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def cpu(self) -> Module:
        return self

    def cuda(self, device: Any = None) -> Module:
        check_device("cuda" if device is None else f"cuda:{device}")
        return self

    # ---- state
    def state_dict(self, prefix: str = "") -> OrderedDict:
        """Parameters and persistent buffers by PyTorch's dotted names; values share memory."""
        state: OrderedDict = OrderedDict()
        for module_prefix, module in self.named_modules(prefix.rstrip(".")):
            dot = f"{module_prefix}." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    state[dot + name] = param.detach()
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    state[dot + name] = buffer.detach()
        return state

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values in place, checking every shape; accepts tensors or NumPy arrays."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = np.asarray(unwrap(state_dict[key]))
            if value.shape != target.shape:
                raise ShapeError(
                    f"{type(self).__name__}.load_state_dict: '{key}' expected shape "
                    f"{tuple(target.shape)}, got {value.shape}"
                )
            np.copyto(target.array, value, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # ---- text
    def extra_repr(self) -> str:
        return ""

    def _short_repr(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self) -> str:
        children = [f"({name}): {child!r}" for name, child in self._modules.items()]
        if not children:
            return self._short_repr()
        body = "\n".join("  " + line for text in children for line in text.splitlines())
        return f"{type(self).__name__}(\n{body}\n)"

    def _repr_html_(self) -> str | None:
        """What a notebook shows for a model: :attr:`notebook_view` of it, the summary table
        (``kl.summary(model, shape)`` shows it for another input shape). None leaves the
        text form."""
        view = Module.notebook_view
        return None if view is None else view(self)


def new_parameter(shape: tuple[int, ...], bound: float, dtype, generator) -> Parameter:
    """A parameter drawn from U(−bound, bound): PyTorch's default for conv and dense layers."""
    dtype = np.dtype(dtype or get_default_dtype())
    values = as_generator(generator).uniform(-bound, bound, size=shape).astype(dtype)
    return Parameter(values)

"""ONNX exchange: export a model by tracing one forward pass; load an ONNX graph as a Module.

``export(model, example_input, path)`` writes standard ONNX (opset 13 and later) that
onnxruntime and other engines run with any batch size; ``load(path)`` returns a
:class:`GraphModule` whose weights are Parameters, so an imported network runs, trains,
fine-tunes and freezes like any kernelab model. Both need the ``onnx`` package.
"""

from .common import ONNXError
from .export import export
from .load import GraphModule, load

__all__ = ["GraphModule", "ONNXError", "export", "load"]

"""The engine's core, as PyTorch's top level has it: the Tensor, its ``Size`` and how it
prints, dtypes and creation functions, the ``torch.*`` functions, random generators, devices,
threads, errors and ``save``/``load``. The ops themselves live in ``kernelab.functional``, the
graph in ``kernelab.autograd``."""

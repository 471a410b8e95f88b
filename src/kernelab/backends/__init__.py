"""``torch.backends``: ``mps.is_available()`` answers False; ``cudnn`` settings are accepted
(``cudnn.benchmark = False``, ``cudnn.deterministic = True``) and change nothing.
``kernels`` is kernelab's own: the switch between compiled and NumPy kernels."""

from . import cudnn, kernels, mps

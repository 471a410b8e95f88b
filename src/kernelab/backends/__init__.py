"""``torch.backends``: ``mps.is_available()`` answers False; ``cudnn`` settings are accepted
(``cudnn.benchmark = False``, ``cudnn.deterministic = True``) and change nothing."""

from . import cudnn, mps

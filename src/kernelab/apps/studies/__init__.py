"""Experiments on kernels (``kernelab study NAME``): each trains a handful of small networks over
several seeds and writes a Markdown report with tables and PNG plots.

====================  ========================================================================
``kernel-size``       2x2 … 7x7 kernels, and two stacked 3x3 against one 5x5
``symmetry``          every kernel symmetry against unconstrained kernels (SymNet's setting)
``init``              constant, zeros, normal, uniform, Glorot, He, Sobel and Gabor starts
``kernel-vs-image``   kernels growing to the input's size (the layer becomes a dense one)
``depth-multiplier``  depthwise convolution with C_out = C_in·K against a full convolution
====================  ========================================================================

The parts: ``catalog.py`` (the studies), ``study.py`` (what a study declares), ``runner.py``
(training the runs), ``report.py`` (the Markdown and plots), ``experiment.py`` (the modes, and
:func:`run_study`, which runs a study by name).
"""

from .catalog import STUDIES
from .experiment import MODES, run_study
from .runner import Config, Recipe, Row, StudyData, load_study_data, run_all, train_one
from .study import Study

__all__ = [
    "MODES",
    "STUDIES",
    "Config",
    "Recipe",
    "Row",
    "Study",
    "StudyData",
    "load_study_data",
    "run_all",
    "run_study",
    "train_one",
]

"""kernelab's benchmark suite: kernelab beside PyTorch CPU in the same process run.

Run it with ``python bench/run.py`` (``--quick`` for a two-minute pass). See ``run.py``.
"""

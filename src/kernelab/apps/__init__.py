"""Applications built on the engine: runs (a trained model and its config), training,
architecture specs, kernel timelines (recorded while training) and their animation,
transfer learning, studies, the ``explain`` web page, ``inspect`` reports and porting
PyTorch scripts. Nothing here parses a command line; ``kernelab.cli``
does that."""

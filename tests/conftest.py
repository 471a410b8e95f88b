"""Shared test settings: modest hypothesis budgets, no leaked default dtype, and PyTorch on
one thread for the modules that compare with it. Shared helpers are modules beside this one
(``mnist_files.py``), since test modules cannot import a conftest by name."""

import pytest
from hypothesis import settings

import kernelab as kl

settings.register_profile("kernelab", max_examples=40, deadline=None, derandomize=True)
# A longer, random search for a bug hunt: pytest --hypothesis-profile=stress
settings.register_profile("stress", max_examples=400, deadline=None, derandomize=False)
# The fuzzing suite's long run: pytest tests/fuzz --hypothesis-profile=fuzz-long
settings.register_profile("fuzz-long", max_examples=4000, deadline=None, derandomize=False)
settings.load_profile("kernelab")


@pytest.fixture(autouse=True)
def _restore_default_dtype():
    yield
    kl.set_default_dtype(kl.float32)


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread while a module compares tiny arrays with it: threads only add
    overhead there, on a machine whose cores other work shares."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(params=kl.backends.kernels.PATHS)
def kernel_path(request):
    """Run a test once on the compiled kernels and once on the NumPy reference."""
    with kl.backends.kernels.using(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def shared_passes(monkeypatch):
    """Memory-bound passes shared at two threads whatever this machine's memory measured
    (``core/team.py``'s ``measure``, which test_team checks itself), so that every test
    that runs them checks the shared path."""
    try:
        from kernelab.core import team
    except ImportError:  # no numba here, so no teams
        return
    monkeypatch.setattr(team, "SHARE", True)


@pytest.fixture(params=[1, 2])
def threads(request):
    """Run a test at one and at two threads (``kl.set_num_threads``), then restore the count."""
    previous = kl.get_num_threads()
    kl.set_num_threads(request.param)
    yield request.param
    kl.set_num_threads(previous)

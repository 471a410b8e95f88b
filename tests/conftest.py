"""Shared test settings: modest hypothesis budgets, and no test leaks a default dtype."""

import pytest
from hypothesis import settings

import kernelab as kl

settings.register_profile("kernelab", max_examples=40, deadline=None, derandomize=True)
# A longer, random search for a bug hunt: pytest --hypothesis-profile=stress
settings.register_profile("stress", max_examples=400, deadline=None, derandomize=False)
settings.load_profile("kernelab")


@pytest.fixture(autouse=True)
def _restore_default_dtype():
    yield
    kl.set_default_dtype(kl.float32)

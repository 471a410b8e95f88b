"""Shared test settings: modest hypothesis budgets, and no test leaks a default dtype."""

import pytest
from hypothesis import settings

import kernelab as kl

settings.register_profile("kernelab", max_examples=40, deadline=None, derandomize=True)
settings.load_profile("kernelab")


@pytest.fixture(autouse=True)
def _restore_default_dtype():
    yield
    kl.set_default_dtype(kl.float32)

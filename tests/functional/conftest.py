"""Every test here runs on both kernel paths, compiled and NumPy."""

import pytest


@pytest.fixture(autouse=True)
def _on_both_kernel_paths(kernel_path):
    yield

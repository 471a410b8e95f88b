"""The allocator tuning ``core/threads.py`` applies on import, in fresh processes."""

import os
import subprocess
import sys

import pytest

# As a training step does: makes eight arrays of 6 MiB (a layer's output each), frees them all,
# and again; prints the page faults of the third round: none when freed memory is kept,
# thousands when glibc gave the freed heap back to the kernel.
SECOND_ALLOCATION_FAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "kernelab":
    import kernelab
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for round in range(3):
    before = faults()
    arrays = [np.ones(3 << 19, np.float32) for _ in range(8)]
    del arrays
print(faults() - before)
"""


def second_allocation_faults(importing: str, **env) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    run = subprocess.run(
        [sys.executable, "-c", SECOND_ALLOCATION_FAULTS, importing],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_arrays_are_reused_without_page_faults():
    assert second_allocation_faults("numpy") > 3000  # what the tuning is for
    assert second_allocation_faults("kernelab") < 300


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_malloc_settings_in_the_environment_win():
    assert second_allocation_faults("kernelab", MALLOC_ARENA_MAX="4") > 3000

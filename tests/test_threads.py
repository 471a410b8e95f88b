"""``core/threads.py``: the allocator tuning it applies on import (in fresh processes), and
BLAS on one thread inside a block (``functional/products.py`` says where)."""

import os
import subprocess
import sys
import threading

import pytest
import threadpoolctl

import kernelab as kl
from kernelab.core.threads import one_blas_thread

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


def blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}


def test_one_blas_thread_limits_blas_inside_the_block_only():
    before = max(blas_threads())
    kl.set_num_threads(2)
    try:
        with one_blas_thread():
            inside = blas_threads()
        after = blas_threads()
    finally:
        kl.set_num_threads(before)
    assert inside == {1}
    assert after == {2}


def in_a_thread(work):
    """Run ``work`` on a new thread and return what it returned."""
    result = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def test_set_num_threads_and_a_block_take_effect_from_any_thread():
    """A web page's training thread and a convolution's workers ask for BLAS threads too:
    what they ask for holds, though the main thread set the count first."""
    before = max(blas_threads())
    kl.set_num_threads(2)
    try:

        def one_inside_a_block():
            with one_blas_thread():
                return blas_threads()

        assert in_a_thread(one_inside_a_block) == {1}
        assert blas_threads() == {2}
        in_a_thread(lambda: kl.set_num_threads(1))
        assert blas_threads() == {1}
    finally:
        kl.set_num_threads(before)


def test_a_block_open_in_another_thread_keeps_blas_on_one_thread():
    """The first block to open sets one thread, the last to close sets back the count (or
    what set_num_threads asked for meanwhile): one thread's block never ends another's."""
    before = max(blas_threads())
    kl.set_num_threads(2)
    opened, close = threading.Event(), threading.Event()

    def hold_a_block():
        with one_blas_thread():
            opened.set()
            close.wait(timeout=10)

    holder = threading.Thread(target=hold_a_block)
    try:
        holder.start()
        opened.wait(timeout=10)
        with one_blas_thread():
            pass
        assert blas_threads() == {1}  # the other thread's block is still open
        assert kl.get_num_threads() == 2
        kl.set_num_threads(3)
        assert blas_threads() == {1}
        close.set()
        holder.join()
        assert blas_threads() == {3}
    finally:
        close.set()
        holder.join()
        kl.set_num_threads(before)


def test_the_convolution_pool_has_the_asked_threads_before_any_compiled_kernel_ran():
    """A fresh process whose first layers run products only (no compiled kernel loads numba)
    still shares them between the threads asked for."""
    code = (
        "import kernelab as kl; kl.set_num_threads(2)\n"
        "from kernelab.functional import conv_compiled\n"
        "print(conv_compiled.threads())\n"
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "2", out.stderr

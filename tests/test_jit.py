"""The switch between compiled and NumPy kernels, the fallback without numba, and threads."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import kernelab as kl
from kernelab.core import jit


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k != "KERNELAB_KERNELS"}
    environment = {**inherited, **env}  # the default path unless the test says otherwise
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def test_import_compiles_nothing_and_loads_no_numba():
    done = run_python("import sys, kernelab; print('numba' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_cached_kernels_load_without_numba_s_registries_and_compiles_skip_scipy(tmp_path):
    code = """
        import sys
        import numpy as np
        import kernelab as kl
        import kernelab.nn.functional as F
        if kl.backends.kernels.current() != "numba":
            print("skip")
            raise SystemExit
        F.relu(kl.randn(2, 3, 8, 8))
        print("numba.cpython.unicode" in sys.modules, "scipy.linalg" in sys.modules)
        import numba
        from numba.np import arraymath
        try:
            import scipy.linalg.cython_blas
            blas = True
        except ImportError:
            blas = False
        print(arraymath._HAVE_BLAS == blas)

        @numba.njit
        def products(a, b):
            return np.dot(a, b), np.correlate(a[0], b[0])

        a, b = np.random.default_rng(0).random((2, 4, 4))
        dot, correlation = products(a, b)
        print(np.allclose(dot, a @ b), np.allclose(correlation, np.correlate(a[0], b[0])))
        """
    cold = run_python(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert cold.returncode == 0, cold.stderr
    if cold.stdout.strip() == "skip":
        pytest.skip("numba is not the kernel path here")
    # compiling loaded the registries (a module of one of them), not SciPy's linear algebra
    assert cold.stdout.split() == ["True", "False", "True", "True", "True"]
    warm = run_python(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.split() == ["False", "False", "True", "True", "True"]


HIDE_NUMBA = """
    import sys
    class HideNumba:
        def find_spec(self, name, path=None, target=None):
            if name == "numba" or name.startswith("numba."):
                raise ImportError("No module named 'numba'")
    sys.meta_path.insert(0, HideNumba())
"""


def test_without_numba_says_so_once_and_runs_on_numpy():
    done = run_python(
        HIDE_NUMBA
        + """
    import numpy as np
    import kernelab as kl
    import kernelab.nn.functional as F
    x = kl.randn(2, 3, 8, 8, requires_grad=True)
    w = kl.randn(4, 3, 3, 3, requires_grad=True)
    F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2).sum().backward()
    F.conv2d(x, w).sum().backward()
    print(kl.backends.kernels.current(), x.grad.shape)
    """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["numpy", "kernelab.Size([2,", "3,", "8,", "8])"]
    lines = done.stderr.strip().splitlines()
    expected = "kernelab: numba unavailable (No module named 'numba'); running on NumPy kernels"
    assert lines == [expected]


def test_environment_selects_numpy():
    done = run_python(
        "import kernelab as kl; print(kl.backends.kernels.current())", KERNELAB_KERNELS="numpy"
    )
    assert done.stdout.strip() == "numpy", done.stderr


def test_unknown_path_is_a_clear_error():
    with pytest.raises(ValueError, match="expected one of numba, numpy, got 'cuda'"):
        kl.backends.kernels.use("cuda")


def test_using_restores_the_previous_choice():
    before = kl.backends.kernels.chosen()
    with kl.backends.kernels.using("numpy"):
        assert kl.backends.kernels.current() == "numpy"
    assert kl.backends.kernels.chosen() == before


def test_set_num_threads_sets_numba_and_blas():
    previous = kl.get_num_threads()
    try:
        kl.set_num_threads(1)
        assert jit.numba_module() is not None
        assert jit.get_threads() == 1
        assert kl.get_num_threads() == 1
    finally:
        kl.set_num_threads(previous)


def test_a_kernel_compiles_on_first_call_only():
    from numba import prange

    @jit.kernel(parallel=True)
    def total(a):
        s = 0.0
        for i in prange(a.size):
            s += a[i]
        return s

    assert total.compiled is None
    assert total(np.arange(10.0)) == 45.0
    assert total.compiled is not None


def test_twin_is_none_on_the_numpy_path():
    with kl.backends.kernels.using("numpy"):
        assert jit.twin(".pool_compiled", "kernelab.functional") is None


def test_a_forked_child_and_concurrent_threads_run_compiled_kernels():
    done = run_python(
        """
    import os
    import kernelab as kl
    import kernelab.nn.functional as F
    x = kl.randn(2, 3, 8, 8)
    F.max_pool2d(F.relu(x), 2)
    first = kl.backends.kernels.current()
    pid = os.fork()
    if pid == 0:
        F.max_pool2d(F.relu(x), 2)
        print("child", kl.backends.kernels.current(), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    from concurrent.futures import ThreadPoolExecutor
    def work(_):
        for _ in range(50):
            F.max_pool2d(F.relu(x), 2)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    print("parent", first, kl.backends.kernels.current())
    """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["child", "numba", "parent", "numba", "numba"]


def test_a_cold_cache_says_once_that_it_compiles_and_a_warm_one_says_nothing(tmp_path):
    code = """
    import kernelab as kl
    import kernelab.nn.functional as F
    x = kl.randn(2, 3, 8, 8, requires_grad=True)
    F.max_pool2d(F.relu(x), 2).sum().backward()
    """
    notice = "kernelab: compiling kernels for this machine (once; cached)"
    cold = run_python(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.strip().splitlines() == [notice]
    warm = run_python(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert warm.returncode == 0 and warm.stderr == "", warm.stderr


GENERATED = """
    import numpy as np
    from kernelab.core import jit
    source = "def twice(x):\\n    for i in range(x.shape[0]):\\n        x[i] *= 2\\n"
    kernel = jit.kernel_from_source("twice", source)
    x = np.ones(3)
    kernel(x)
    print(x.sum(), sum(kernel.compiled.stats.cache_hits.values()))
"""


def test_generated_kernels_are_cached_on_disk(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    first, second = run_python(GENERATED, **env), run_python(GENERATED, **env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split() == ["6.0", "0"]  # compiled
    assert second.stdout.split() == ["6.0", "1"]  # loaded from the cache


def test_generated_kernels_run_uncached_without_a_cache_directory(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    done = run_python(GENERATED, NUMBA_CACHE_DIR="", XDG_CACHE_HOME=str(blocked))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6.0", "0"]


LOAD_ONLY = """
    import numpy as np
    from kernelab.core import jit
    source = "def twice(x):\\n    for i in range(x.shape[0]):\\n        x[i] *= 2\\n"
    kernel = jit.kernel_from_source("twice", source)
    x = np.ones(3)
    print(kernel.load_cached((x,)), len(kernel.compiled.overloads))
    kernel(x)
"""


def test_load_cached_loads_a_cached_kernel_and_never_compiles(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    cold, warm = run_python(LOAD_ONLY, **env), run_python(LOAD_ONLY, **env)
    assert cold.returncode == 0 and warm.returncode == 0, cold.stderr + warm.stderr
    assert cold.stdout.split() == ["False", "0"]  # not compiled by the question
    assert warm.stdout.split() == ["True", "1"]  # compiled by the call, loaded here


BACKGROUND = """
    import numpy as np
    from kernelab.core import jit
    source = "def twice(x):\\n    for i in range(x.shape[0]):\\n        x[i] *= 2\\n"
    kernel = jit.kernel_from_source("twice", source)
    x = np.ones(3)
    if kernel.load_cached((x,)):
        print("cached", len(kernel.compiled.overloads))
    else:
        print(jit.compile_in_background(kernel, (x,)), jit.compile_in_background(kernel, (x,)))
        print(len(kernel.compiled.overloads))
"""


def test_compile_in_background_fills_the_cache_once(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    done = run_python(BACKGROUND, **env)
    assert done.returncode == 0, done.stderr
    # started once (the second call finds its lock), nothing compiled in this process
    assert done.stdout.split() == ["True", "False", "0"]
    for _ in range(600):
        if not list(tmp_path.rglob("*.compiling")):
            break
        time.sleep(0.1)
    again = run_python(BACKGROUND, **env)
    assert again.stdout.split() == ["cached", "1"], again.stderr


def test_fingerprints_tell_apart_what_numba_types_apart():
    numba = pytest.importorskip("numba")
    matrix = np.arange(12.0).reshape(3, 4)
    frozen = matrix.copy()
    frozen.flags.writeable = False
    values = [
        matrix, matrix.T, matrix[:, ::2], frozen, matrix.astype(np.float32), matrix[0],
        matrix[:, 0], np.float64(1), np.float32(1), 1, 1.0, True, (1, 2), (1, 2, 3), np.zeros(0),
    ]  # fmt: skip
    for a in values:
        for b in values:
            if jit.fingerprint((a,)) == jit.fingerprint((b,)):
                assert numba.typeof(a) == numba.typeof(b), (a, b)


VECTORISED_ONCE = """
    import numpy as np
    from kernelab.core import jit
    source = "def twice(x):\\n    for i in range(x.shape[0]):\\n        x[i] *= 2\\n"
    kernel = jit.kernel_from_source("twice", source)
    compiled = []
    check = kernel.compile_vectorised
    kernel.compile_vectorised = lambda args: compiled.append(1) or check(args)
    x = np.ones(6)
    for a in (x, x, x[::2], x[::2], x.astype(np.float32), x):
        kernel(a)
    print(len(compiled), len(kernel.compiled.overloads))
"""


def test_a_generated_kernel_checks_each_new_argument_type_once(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    done = run_python(VECTORISED_ONCE, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3"]  # three types, each compiled vectorised once


def test_the_vector_width_is_the_target_s(monkeypatch):
    from numba.core import config

    targets = [("+avx2,+avx512f", None, 512), ("+avx2,-avx512f", None, 256)]
    targets += [("+sse2", None, 256), (None, "generic", 256)]
    try:
        for features, name, bits in targets:
            monkeypatch.setattr(config, "CPU_FEATURES", features)
            monkeypatch.setattr(config, "CPU_NAME", name)
            jit.vector_bits.cache_clear()
            assert jit.vector_bits() == bits
    finally:
        monkeypatch.undo()
        jit.vector_bits.cache_clear()

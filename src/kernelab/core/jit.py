"""Compiled kernels: the one switch between numba's compiled twins and the NumPy reference.

Every op keeps a NumPy forward and backward as the readable reference; where a compiled twin
exists beside it (``functional/pool_compiled.py`` beside ``pool.py``), the op asks :func:`twin`
for it, which answers None when the NumPy path runs. The compiled path runs unless
``KERNELAB_KERNELS=numpy`` is set, ``use("numpy")`` was called (``kl.backends.kernels``), or
numba cannot be imported on this platform — then kernelab says so once, in one line, and runs
on NumPy.

Nothing is compiled at import: :func:`kernel` wraps a function so that numba (itself imported
only then) compiles it on its first call, with an on-disk cache so a later process loads the
machine code instead of compiling again. Once first calls have taken more than a second in
all (compilations: loads from the cache take milliseconds), one line says so, once per
process. A kernel too slow to compile in the middle of a run (the generated direct
convolutions, 5-17 s each) can be asked whether it is cached (:meth:`Kernel.load_cached`, which
never compiles) and else compiled by a background process for the next run
(:func:`compile_in_background`), while this one takes another path.

numba runs ``prange`` loops on its "workqueue" threading layer (unless
``NUMBA_THREADING_LAYER`` says otherwise): its idle threads sleep instead of spinning, so they
leave the cores to BLAS, and it survives ``fork``. It does not take concurrent launches, so
parallel kernels are called one at a time across Python threads (each is short and uses every
core anyway). The passes bound by memory (activations, global average pooling, dropout) are
one-thread kernels run by ``core/team.py`` instead: the calling thread and helpers that spin
between passes, which a launch on sleeping workers would first have to wake.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

from . import numba_light

PATHS = ("numba", "numpy")
_COMPILE_NOTICE_AFTER = 1.0  # seconds of first calls in all; cache loads take far less
# a background compilation's lock file older than this is taken to be left by a killed one
_STALE_LOCK_SECONDS = 600

_numba = None  # the module, once imported; False when it cannot be
_choice = None
_threads = None  # the count asked for by set_threads before numba was imported
_lock = threading.RLock()
_noticed = False
_first_calls_seconds = 0.0  # time spent in first calls (compiling or loading) so far
_launch = threading.Lock()  # one parallel kernel at a time: the workqueue layer needs it


def _check(name: str) -> str:
    if name not in PATHS:
        raise ValueError(f"kernels: expected one of {', '.join(PATHS)}, got {name!r}")
    return name


def use(name: str) -> None:
    """Run the compiled kernels ("numba") or the NumPy reference ("numpy") from now on."""
    global _choice
    _choice = _check(name)


def chosen() -> str:
    """The path asked for: ``use``'s argument, else ``KERNELAB_KERNELS``, else "numba"."""
    if _choice is None:
        use(os.environ.get("KERNELAB_KERNELS", "numba").strip().lower() or "numba")
    return _choice


@contextlib.contextmanager
def using(name: str):
    """Run the kernels of one path inside a ``with`` block (tests compare the two this way)."""
    global _choice
    previous = chosen()
    use(name)
    try:
        yield
    finally:
        _choice = previous


def numba_module():
    """numba, imported on first need; None where it cannot be (said once, in one line)."""
    global _numba
    if _numba is None:
        with _lock:
            if _numba is None:
                _numba = _import_numba()
    return _numba or None


def _import_numba():
    try:
        import numba
    except Exception as error:  # no wheel for this platform, or a broken install
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"kernelab: numba unavailable ({reason}); running on NumPy kernels", file=sys.stderr)
        return False
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    if _threads is not None:
        numba.set_num_threads(min(_threads, numba.config.NUMBA_NUM_THREADS))
    numba_light.skip_scipy_in_array_math()
    return numba


def active() -> bool:
    """True when ops run their compiled twins."""
    return chosen() == "numba" and numba_module() is not None


def twin(name: str, package: str):
    """The compiled twin module ``name`` of an op family, or None on the NumPy path.

    Imported on first need, so numba is imported only when a compiled kernel runs.
    """
    return imported(name, package) if active() else None


@functools.cache
def imported(name: str, package: str):
    """``importlib.import_module``, remembered: ops ask for their twin on every call."""
    return importlib.import_module(name, package)


def current() -> str:
    """The path that actually runs: "numba", or "numpy" when chosen or when numba is missing."""
    return "numba" if active() else "numpy"


def set_threads(n: int) -> None:
    """Give numba's thread pool ``n`` threads (at most the cores it started with)."""
    global _threads
    _threads = n
    if _numba:
        _numba.set_num_threads(min(n, _numba.config.NUMBA_NUM_THREADS))


def get_threads() -> int | None:
    """numba's thread count in this thread, None when numba is not loaded."""
    return _numba.get_num_threads() if _numba else None


def kernel(parallel: bool = False, fastmath=False):
    """Decorator: compile with numba on first call (cached on disk, GIL released).

    ``parallel`` lets ``numba.prange`` loops run on the pool of :func:`set_threads`.
    """

    def wrap(function):
        return Kernel(function, parallel, fastmath)

    return wrap


@functools.cache
def vector_bits() -> int:
    """The width of the vector registers numba compiles for: 512 where the target has
    AVX-512 (32 such registers), else 256 (AVX2's 16). Generated kernels size their blocks of
    accumulators by it: blocks sized for AVX-512 spilled on an AVX2 machine (AMD Zen 3), where
    a 3x3 forward took 4.0x PyTorch's time. ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``, when
    set, are the target."""
    from llvmlite import binding
    from numba.core import config

    if config.CPU_FEATURES is not None:
        return 512 if "+avx512f" in config.CPU_FEATURES.split(",") else 256
    if config.CPU_NAME is not None and config.CPU_NAME != "host":
        return 256  # a named, portable target: sized for the narrower registers
    return 512 if binding.get_host_cpu_features().get("avx512f") else 256


def kernel_from_source(name: str, source: str, parallel: bool = False, fastmath=False):
    """A :class:`Kernel` for the function ``name`` defined by generated Python ``source``.

    The source may read the global ``CACHE``: whether its functions can be cached on disk.

    The source is written once to a file of the cache directory named by its hash, and
    imported from there: numba caches machine code only for functions that have a source
    file. Where no cache directory can be written it is compiled from the string, uncached.
    Compiled by :meth:`Kernel.compile_vectorised`: generated kernels hold their accumulators
    in scalars and need LLVM's straight-line vectoriser to pack them into vector registers.
    """
    # the way it is compiled is part of the source: numba's cache knows only the source
    source = f"# compiled with the SLP vectoriser, {vector_bits()}-bit vectors preferred\n{source}"
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    module_name = f"kernelab_generated_{name}_{digest}"
    try:
        path = os.path.join(_generated_directory(), module_name + ".py")
        if not os.path.exists(path):  # never rewritten: numba's cache checks its time stamp
            partial = f"{path}.{os.getpid()}.{threading.get_ident()}"
            with open(partial, "w") as file:
                file.write(source)
            os.replace(partial, path)
        function = _load_generated(name, path)
    except OSError:
        scope: dict = {"CACHE": False}
        exec(compile(source, f"<generated {module_name}>", "exec"), scope)
        return Kernel(scope[name], parallel, fastmath, vectorise=True, cache=False)
    kernel = Kernel(function, parallel, fastmath, vectorise=True)
    kernel.path = path
    return kernel


def _load_generated(name: str, path: str):
    """The function ``name`` of the generated module in ``path``, imported with CACHE on."""
    module_name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    module.CACHE = True
    sys.modules[module_name] = module  # numba's cache finds the function's globals here
    spec.loader.exec_module(module)
    return getattr(module, name)


def compile_in_background(kernel: Kernel, args) -> bool:
    """Start a process that compiles the generated ``kernel`` for these arguments' types into
    numba's on-disk cache, and return at once: True if one was started.

    For kernels whose cold compilation takes long: this process goes on without them (see
    :meth:`Kernel.load_cached`), the next one loads them. One compilation per kernel and
    signature at a time, across processes: a lock file beside the source, which the child
    removes when done (or when it fails); one left by a killed child counts after
    ``_STALE_LOCK_SECONDS``. The child runs only on cycles nothing else wants (``SCHED_IDLE``,
    else the lowest priority), in this process's session (:func:`start_process`): under
    Linux's autogroup scheduling a new session would be a group of its own, which the
    scheduler shares the cores with as an equal whatever its priority. Children compile one
    at a time (a lock on the directory). Nothing is started for a kernel without a source
    file (no cache directory was writable), nor where no process can be started.
    """
    if kernel.path is None:
        return False
    numba = numba_module()
    types = [_argument_spec(numba, a) for a in args]
    digest = hashlib.sha1(json.dumps(types).encode()).hexdigest()[:12]
    lock = f"{kernel.path}.{digest}.compiling"
    try:
        if time.time() - os.path.getmtime(lock) < _STALE_LOCK_SECONDS:
            return False
        os.remove(lock)
    except OSError:
        pass  # no lock, or another process removed the stale one first
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except OSError:
        return False  # another process took it, or the directory is read-only
    job = {"path": kernel.path, "name": kernel.__name__, "args": types, "lock": lock}
    job.update(parallel=kernel.parallel, fastmath=sorted(kernel.fastmath or ()))
    code = "import sys; from kernelab.core import jit; jit.compile_job(sys.argv[1])"
    if start_process(code, json.dumps(job)) is None:
        os.remove(lock)
        return False
    _notice()
    return True


def start_process(code: str, argument: str) -> subprocess.Popen | None:
    """Start ``python -c code argument`` on this process's module path, in this process's
    session, and return at once; None where no process can be started. From Python 3.11 it
    has a process group of its own, so a Ctrl-C meant for this process does not stop it."""
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {}
    try:
        return subprocess.Popen(
            [sys.executable, "-c", code, argument],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            **group,
        )
    except OSError:
        return None


def _argument_spec(numba, value) -> list:
    """An argument's type as JSON: ["array", dtype, ndim] (C-contiguous, writeable) or
    ["int"]."""
    kind = numba.typeof(value)
    if isinstance(value, int):
        return ["int"]
    if not (kind.layout == "C" and kind.mutable):
        raise ValueError(f"only C-contiguous, writeable arrays and ints, got {kind}")
    return ["array", str(value.dtype), value.ndim]


def compile_job(job_json: str) -> None:
    """The background process of :func:`compile_in_background`: compile one generated kernel
    for one signature into the on-disk cache, then remove the lock."""
    job = json.loads(job_json)
    try:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):  # not Linux
            os.nice(19)
        queue = os.path.join(os.path.dirname(job["path"]), "compiling.queue")
        with open(queue, "w") as turn:
            with contextlib.suppress(ImportError):  # not on Windows: children may overlap there
                import fcntl

                fcntl.flock(turn, fcntl.LOCK_EX)  # released when the file closes
            _compile_job(job)
    finally:
        with contextlib.suppress(OSError):
            os.remove(job["lock"])


def _compile_job(job: dict) -> None:
    """Compile the job's kernel for its argument types, unless it is cached by now."""
    import numpy as np

    function = _load_generated(job["name"], job["path"])
    kernel = Kernel(function, job["parallel"], set(job["fastmath"]) or False, vectorise=True)
    args = [1 if s[0] == "int" else np.zeros((1,) * s[2], s[1]) for s in job["args"]]
    if not kernel.load_cached(args):  # else another process compiled it meanwhile
        kernel.compile_vectorised(args)


def _generated_directory() -> str:
    """Where generated kernels' sources (and so their cached machine code) live."""
    numba = numba_module()
    root = (numba.config.CACHE_DIR if numba else "") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kernelab"
    )
    directory = os.path.join(root, "generated")
    os.makedirs(directory, exist_ok=True)
    return directory


def fingerprint(args) -> tuple:
    """A key that tells apart any two argument lists numba types apart: arrays by dtype, rank,
    layout, writability and alignment, scalars by their Python or NumPy type, anything else by
    numba's type. 0.2 µs an array, where numba's own typing takes 5.6 µs: a generated kernel's
    call checked its signature in 40 µs, holding the GIL."""
    return tuple(
        (
            a.dtype,
            a.ndim,
            a.flags.c_contiguous,
            a.flags.f_contiguous,
            a.flags.writeable,
            a.flags.aligned,
        )
        if isinstance(a, np.ndarray)
        else type(a)
        if isinstance(a, (bool, int, float, np.generic))
        else numba_module().typeof(a)
        for a in args
    )


class Kernel:
    """A Python function and, after its first call, numba's compiled dispatcher for it."""

    def __init__(self, function, parallel: bool, fastmath, vectorise=False, cache=True):
        self.function, self.parallel, self.fastmath = function, parallel, fastmath
        self.vectorise, self.cache = vectorise, cache
        self.__doc__, self.__name__ = function.__doc__, function.__name__
        self.compiled = None
        self.path = None  # a generated kernel's source file (see kernel_from_source)
        self.vectorised: set[tuple] = set()  # fingerprints compile_vectorised has seen

    def __call__(self, *args):
        if self.compiled is None:
            with _lock:
                if self.compiled is None:
                    self.compiled = self._dispatcher()
                    return self._first_call(args)
        if self.vectorise:
            self._vectorise_for(args)
        if self.parallel:
            with _launch:
                return self.compiled(*args)
        return self.compiled(*args)

    def load_cached(self, args) -> bool:
        """True when machine code for these arguments' types is in this process or in
        numba's on-disk cache (then loaded, in milliseconds); never compiles."""
        numba = numba_module()
        self._make_dispatcher()
        signature = tuple(numba.typeof(a) for a in args)
        if signature in self.compiled.overloads:
            return True
        if not self.cache:
            return False
        from numba.core.compiler_lock import global_compiler_lock

        dispatcher = self.compiled
        with global_compiler_lock:  # as the dispatcher's own compile() loads a cached one
            try:
                result = dispatcher._cache.load_overload(signature, dispatcher.targetctx)
            except AttributeError:  # a numba whose cache is laid out otherwise: not cached
                return False
            if result is None:
                return False
            dispatcher.targetctx.insert_user_function(
                result.entry_point, result.fndesc, [result.library]
            )
            dispatcher.add_overload(result)
        return True

    def cached(self) -> bool:
        """Whether numba's on-disk cache holds machine code of this kernel, for any
        signature, from the current source (never compiles or loads)."""
        self._make_dispatcher()
        try:  # the index of the kernel's cache file: empty when missing or stale
            return bool(self.compiled._cache._cache_file._load_index())
        except AttributeError:  # no cache, or a numba whose cache is laid out otherwise
            return False

    def _first_call(self, args):
        """Compile (or load from the cache) and run; say so once first calls take long."""
        global _first_calls_seconds
        timer = threading.Timer(max(0.0, _COMPILE_NOTICE_AFTER - _first_calls_seconds), _notice)
        timer.daemon = True
        start = time.perf_counter()
        timer.start()
        try:
            if self.vectorise:
                self._vectorise_for(args)
            with _launch if self.parallel else contextlib.nullcontext():
                return self.compiled(*args)
        finally:
            timer.cancel()
            _first_calls_seconds += time.perf_counter() - start

    def _vectorise_for(self, args) -> None:
        """:meth:`compile_vectorised` once for each new :func:`fingerprint` of the arguments."""
        key = fingerprint(args)
        if key not in self.vectorised:
            self.compile_vectorised(args)
            self.vectorised.add(key)

    def compile_vectorised(self, args) -> None:
        """Compile (or load) for these arguments' types with LLVM's straight-line (SLP)
        vectoriser on and full-width vector registers, unless done already: the dispatcher
        alone would compile a new signature without them.

        numba leaves the SLP vectoriser off, and LLVM's tuning for many AVX-512 machines
        prefers 256-bit vectors (to keep the clock up in mixed code); a generated block of
        accumulators measured 1.3-2x faster in 512-bit registers. The preferred width is the
        target's own (:func:`vector_bits`). Both are set only while this compilation holds
        numba's compiler lock, so other functions compile as before.
        """
        numba = numba_module()
        signature = tuple(numba.typeof(a) for a in args)
        if signature in self.compiled.overloads:
            return
        from numba.core import codegen
        from numba.core.compiler_lock import global_compiler_lock

        add = codegen.CPUCodeLibrary.add_ir_module

        bits = vector_bits()

        def add_wide(library, module):
            for function in module.functions:  # string attributes llvmlite does not list
                set.add(function.attributes, f'"prefer-vector-width"="{bits}"')
                set.add(function.attributes, f'"min-legal-vector-width"="{bits}"')
            return add(library, module)

        with global_compiler_lock:
            before = numba.config.SLP_VECTORIZE
            numba.config.SLP_VECTORIZE = 1
            codegen.CPUCodeLibrary.add_ir_module = add_wide
            try:
                self.compiled.compile(signature)
            finally:
                numba.config.SLP_VECTORIZE = before
                codegen.CPUCodeLibrary.add_ir_module = add

    def _make_dispatcher(self) -> None:
        """numba's dispatcher in ``compiled``, unless there is one (it compiles nothing)."""
        if self.compiled is None:
            with _lock:
                if self.compiled is None:
                    self.compiled = self._dispatcher()

    def _dispatcher(self):
        numba = numba_module()
        if numba is None:
            raise RuntimeError(f"{self.__name__} needs numba, which cannot be imported")
        dispatcher = numba.njit(
            self.function,
            parallel=self.parallel,
            fastmath=self.fastmath,
            cache=self.cache,
            nogil=True,
            error_model="numpy",
        )
        return numba_light.lightly(dispatcher)


def njit(**options):
    """``numba.njit`` for numba functions other than :func:`kernel`'s (the team's waits and
    helpers): the same, loaded from the cache as a kernel is (``core/numba_light.py``)."""

    def wrap(function):
        return numba_light.lightly(numba_module().njit(function, **options))

    return wrap


def _after_fork_in_child() -> None:
    global _launch
    _launch = threading.Lock()  # a lock another thread held at the fork stays held forever


os.register_at_fork(after_in_child=_after_fork_in_child)


def _notice() -> None:
    global _noticed
    if not _noticed:
        _noticed = True
        print("kernelab: compiling kernels for this machine (once; cached)", file=sys.stderr)

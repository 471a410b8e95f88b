"""What one request to ``kernelab explain`` may cost, checked before its work starts.

Three bounds keep the server answering whatever it is sent:

* **bodies**: a JSON request of at most :data:`MAX_JSON_BYTES`, an upload of at most
  ``inputs.MAX_UPLOAD_BYTES`` (the web layer stops reading past them: 413);
* **work and memory per request**: :class:`Budget` estimates from the model's shapes the
  operations (multiply-accumulates, and values read or written) and the bytes a request needs,
  and refuses it (413) past :data:`MAX_WORK` or :data:`MAX_MEMORY`. A model the page cannot
  serve at all (its forward pass past the budget, its input too large for a request, its
  copies for every session past :data:`MAX_SESSIONS_MEMORY`) is refused when the server starts;
* **requests in flight**: :class:`Slots` computes at most one request per core at once and
  queues :data:`WAITING_PER_CORE` more per core; past that a request is answered 503 at once,
  with ``Retry-After``, instead of piling up threads.

The estimates are upper bounds made from shapes alone, in microseconds; nothing heavy runs
before they pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os

from ... import nn
from ...kernels import constraints
from ...nn.layers import entry
from .compute import ExplainError, Step
from .kernel_view import SPECTRUM

MAX_JSON_BYTES = 1024 * 1024
MAX_WORK = 4_000_000_000  # operations per request: a few seconds of one core at most
MAX_MEMORY = 512 * 1024**2  # bytes one request holds at once: feature maps, spectra, answer
MAX_SESSIONS_MEMORY = 2 * 1024**3  # every session's model copy and feature maps together
WAITING_PER_CORE = 8  # requests queued per request computing; a wait of a few passes each
RETRY_AFTER = 1  # seconds a client turned away is told to wait
TOO_LARGE = 413


def cores() -> int:
    """The cores this process may run on (2 on a 2-core machine, fewer under taskset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def fft(kh: int, kw: int) -> float:
    """Operations of one slice's frequency response: an n-point FFT, n·log2(n), on the grid of
    ``kernel_view.grid`` (SPECTRUM x SPECTRUM, or the kernel's larger side squared)."""
    n = max(SPECTRUM, kh, kw) ** 2
    return n * math.log2(n)


def kernel_shape(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """(C_out, C_in/groups, kH, kW), without building a symmetric layer's kernel."""
    return (conv.out_channels, conv.in_channels // conv.groups, *conv.kernel_size)


def mb(size: float) -> str:
    return f"{size / 1024**2:,.1f} MB"


class Budget:
    """The work and memory of each kind of request for one model, from its probe's shapes.

    ``steps`` is a trace of one image (``compute.trace``). Work counts multiply-accumulates
    (``nn.layers`` entries) and every value a layer reads or writes; memory counts the trace's
    arrays (a forward pass keeps every layer's input and output), spectra and answers.
    """

    def __init__(self, steps: list[Step], model: nn.Module):
        self.max_work, self.max_memory = MAX_WORK, MAX_MEMORY
        self.steps = steps
        values = sum(s.x.size + s.y.size for s in steps)
        macs = sum(entry(s.module).macs(s.module, (1, *s.x.shape), (1, *s.y.shape)) for s in steps)
        self.pass_work = macs + values
        self.trace_bytes = sum(s.x.nbytes + s.y.nbytes for s in steps)
        self.answer_bytes = 2 * sum(s.y.size for s in steps)  # uint8 maps in base64, with room
        arrays = [*model.parameters(), *model.buffers()]
        self.model_bytes = sum(a.array.nbytes for a in arrays if a is not None)
        self.session_bytes = self.model_bytes + self.trace_bytes  # a copy and its probe's trace

    def check(self, what: str, work: float, memory: float) -> None:
        """Refuse (413) a request whose estimate is past either limit, naming the limit."""
        if work > self.max_work:
            raise ExplainError(
                f"{what} needs about {work:,.0f} operations; this server computes at most "
                f"{self.max_work:,} per request (its work limit)",
                TOO_LARGE,
            )
        if memory > self.max_memory:
            raise ExplainError(
                f"{what} needs about {mb(memory)}; this server gives a request at most "
                f"{mb(self.max_memory)} (its memory limit)",
                TOO_LARGE,
            )

    def forward(self, passes: int) -> None:
        """A forward pass with every feature map (and the trained model's, when edited)."""
        self.check(
            f"a forward pass of this model ({passes} pass{'es' * (passes > 1)})",
            passes * self.pass_work + self.answer_bytes,
            passes * self.trace_bytes + self.answer_bytes,
        )

    def arithmetic(self) -> None:
        """A traced pass, then one value's window (at most the layer's input) laid out."""
        window = max(s.x.size for s in self.steps)
        self.check("the arithmetic of a value", self.pass_work + 4 * window, self.trace_bytes)

    def session(self) -> None:
        """A new session: the model copied and traced once."""
        self.check("a new session", self.pass_work + self.model_bytes, self.session_bytes)

    def kernels(self, layer) -> None:
        """Every kernel of a layer: a frequency response and symmetries per slice."""
        conv = self._conv(layer)
        if conv is None:
            return  # not a conv layer: refused as such, at no cost, by the request itself
        count, depth, kh, kw = shape = kernel_shape(conv)
        work = count * depth * (fft(kh, kw) + kh * kw * 4 * len(constraints.SYMMETRIES))
        side = max(SPECTRUM, kh, kw)
        memory = count * side**2 * 8 + depth * side**2 * 16 + 3 * 8 * math.prod(shape)
        self.check(f"the kernels of layer {layer} ({count}x{depth}x{kh}x{kw})", work, memory)

    def kernel(self, layer, edit: bool = False) -> None:
        """One kernel in detail (or edited, then shown): its slices' spectra, and the layer's
        weights materialised (trained and edited; symmetrised once more for an edit)."""
        conv = self._conv(layer)
        if conv is None:
            return
        _, depth, kh, kw = shape = kernel_shape(conv)
        weights = math.prod(shape) * (4 if edit else 2)
        work = 2 * depth * fft(kh, kw) + weights + (255 * 255 if edit else 0)  # a spec, built
        memory = 8 * weights + 2 * depth * max(SPECTRUM, kh, kw) ** 2 * 16
        what = "a kernel edit" if edit else "a kernel"
        self.check(f"{what} of layer {layer} ({depth}x{kh}x{kw} slices)", work, memory)

    def copy_all(self, what: str) -> None:
        """A reset or a save: every parameter copied once or twice."""
        self.check(what, 2 * self.model_bytes, 2 * self.model_bytes)

    def _conv(self, layer) -> nn.Conv2d | None:
        if isinstance(layer, int) and 0 <= layer < len(self.steps):
            module = self.steps[layer].module
            return module if isinstance(module, nn.Conv2d) else None
        return None


def check_model(budget: Budget, input_shape: tuple[int, int, int], sessions: int) -> None:
    """Refuse, when the server starts, a model the page cannot serve with these limits."""
    try:
        budget.forward(passes=2)  # the page's main request, once a kernel is edited
        budget.session()
    except ExplainError as error:
        raise ValueError(f"the model is too large for the page: {error}") from None
    c, h, w = input_shape
    request = 4 * math.ceil(c * h * w / 3) + 256  # the pixels in base64, and the other fields
    if request > MAX_JSON_BYTES:
        raise ValueError(
            f"the model's input {c}x{h}x{w} needs requests of {request:,} bytes; "
            f"the server accepts at most {MAX_JSON_BYTES:,} (its JSON body limit)"
        )
    total = sessions * budget.session_bytes
    if total > MAX_SESSIONS_MEMORY:
        fit = MAX_SESSIONS_MEMORY // budget.session_bytes
        advice = f"use --sessions {fit} or fewer" if fit else "the model is too large for the page"
        raise ValueError(
            f"{sessions} sessions x {mb(budget.session_bytes)} (a model copy and its feature "
            f"maps) is {mb(total)}, past the {mb(MAX_SESSIONS_MEMORY)} for all sessions: {advice}"
        )


class Busy(ExplainError):
    """Every computing slot taken and the queue full: 503, try again in :data:`RETRY_AFTER` s."""

    def __init__(self, running: int, waiting: int):
        super().__init__(
            f"the server is busy: {running} request{'s' * (running != 1)} computing and "
            f"{waiting} waiting, its limit of requests in flight; try again in {RETRY_AFTER} s",
            503,
        )
        self.headers = {"retry-after": str(RETRY_AFTER)}


class Slots:
    """At most ``running`` computations at once and ``waiting`` more queued; past that,
    :class:`Busy` at once. Used from the event loop only, so a plain counter is enough."""

    def __init__(self, running: int | None = None, waiting: int | None = None):
        self.running = cores() if running is None else running
        self.waiting = WAITING_PER_CORE * self.running if waiting is None else waiting
        self.admitted = 0  # computing or queued
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(self.running)

    @contextlib.asynccontextmanager
    async def slot(self):
        """Hold one computing slot, after queueing for it; Busy when the queue is full."""
        if self.admitted >= self.running + self.waiting:
            raise Busy(self.running, self.waiting)
        loop = asyncio.get_running_loop()
        if loop is not self._loop and not self.admitted:  # served again, by another event loop
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.running)
        self.admitted += 1
        try:
            async with self._semaphore:
                yield
        finally:
            self.admitted -= 1

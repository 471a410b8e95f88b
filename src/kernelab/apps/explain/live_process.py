"""The Train view's runs in a process of their own, so training never holds the page's
interpreter lock.

A run's steps are partly Python (the autograd's bookkeeping, the optimiser's loop), and
while a thread of the server runs them, the page's other requests wait for the interpreter:
5 to 10 times their idle latency (``bench/EXPLAIN_LIVE.md``). :class:`LiveProcess` has the
methods of ``live.LiveTraining`` the web layer calls and forwards each to a
``LiveTraining`` in a child process (``spawn``: nothing of the server is copied), over a pipe:
a call is a message ``(id, method, args)`` answered by ``(id, ok, result)``; an
``ExplainError`` comes back with its status. The child answers calls in threads of its own,
so a Start loading data never delays another tab's stream. The child ignores Ctrl+C: the
server stops the runs (saved) when it shuts down, and a child whose server vanished (its
pipe closed) stops them itself.
"""

from __future__ import annotations

import itertools
import multiprocessing
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .compute import ExplainError

CALL_TIMEOUT = 60.0  # seconds a call may take (a Start reads its data set)
CALLS = frozenset(
    {
        "options",
        "start",
        "control",
        "set_lr",
        "set_input",
        "timeline",
        "attach",
        "detach",
        "latest",
        "stop_all",
        "check",
    }  # fmt: skip
)


def child(connection, settings: dict[str, Any]) -> None:
    """The child process: a LiveTraining answering the server's calls until the pipe closes."""
    from .live import LiveTraining

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server saves the runs on Ctrl+C
    live = LiveTraining(**settings)
    sending = threading.Lock()
    pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="explain-live")

    def answer(call_id: int, method: str, args: tuple) -> None:
        try:
            reply = (call_id, True, getattr(live, method)(*args))
        except ExplainError as error:
            reply = (call_id, False, (str(error), error.status))
        except Exception as error:  # the server reports it as a 500
            reply = (call_id, False, (f"internal error: {error}", 500))
        with sending:
            connection.send(reply)

    try:
        while True:
            call_id, method, args = connection.recv()
            if method == "exit":
                break
            if method not in CALLS:
                raise ValueError(f"no call {method!r}")
            pool.submit(answer, call_id, method, args)
    except (EOFError, OSError):  # the server is gone
        pass
    finally:
        live.stop_all()  # every run saved
        pool.shutdown(wait=True)
        connection.close()


class LiveProcess:
    """``live.LiveTraining``'s calls, answered by one in a child process started on first use.

    ``settings`` are LiveTraining's arguments (plain values: they cross to the child).
    """

    def __init__(self, **settings: Any):
        self.settings = settings
        self._process = None
        self._connection = None
        self._lock = threading.Lock()  # starting the child, and sending
        self._ids = itertools.count()
        self._waiting: dict[int, Future] = {}

    def _ensure(self):
        with self._lock:
            if self._process is None or not self._process.is_alive():
                context = multiprocessing.get_context("spawn")
                ours, theirs = context.Pipe()
                self._process = context.Process(
                    target=child, args=(theirs, self.settings), daemon=True, name="explain-live"
                )
                self._process.start()
                theirs.close()
                self._connection = ours
                threading.Thread(target=self._read, args=(ours,), daemon=True).start()
        return self._connection

    def _read(self, connection) -> None:
        """Hand each answer to the call waiting for it."""
        try:
            while True:
                call_id, ok, result = connection.recv()
                future = self._waiting.pop(call_id, None)
                if future is None:
                    continue
                if ok:
                    future.set_result(result)
                else:
                    message, status = result
                    future.set_exception(ExplainError(message, status))
        except (EOFError, OSError):
            for future in list(self._waiting.values()):
                future.set_exception(ExplainError("the training process ended", 503))
            self._waiting.clear()

    def _call(self, method: str, *args: Any) -> Any:
        connection = self._ensure()
        call_id, future = next(self._ids), Future()
        self._waiting[call_id] = future
        with self._lock:
            connection.send((call_id, method, args))
        return future.result(CALL_TIMEOUT)

    # ---- what the web layer calls (see live.LiveTraining)
    def __getattr__(self, method: str):
        if method not in CALLS:
            raise AttributeError(method)
        return lambda *args: self._call(method, *args)

    def stop_all(self) -> None:
        """Stop every run (saved), then end the child."""
        if self._process is None or not self._process.is_alive():
            return
        self._call("stop_all")
        with self._lock:
            self._connection.send((None, "exit", ()))
        self._process.join(10)
        self._connection.close()

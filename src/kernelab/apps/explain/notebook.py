"""``kl.explain(model)``: the explain page inside a notebook, served by the kernel itself.

The server runs in a daemon thread of the kernel's process, on 127.0.0.1 only, and stops
with the kernel (an ``atexit`` hook; the thread being a daemon, nothing waits for it) or
with :meth:`Explanation.stop`. The object :func:`explain` returns shows the page in an
IFrame when it is a cell's value. Only this server lets other pages frame the explain page,
and only pages on this machine (:data:`app.LOCAL_FRAMERS`: a notebook served at
localhost, any port); so the IFrame shows when the notebook's browser runs on the machine
of the kernel, as with a local Jupyter.
"""

from __future__ import annotations

import atexit
import html
import threading
import time
from pathlib import Path
from typing import Any

from ...nn import Module
from .source import Source, load_source, model_source

INSTALL_HINT = 'kl.explain needs the explain extra: pip install "kernelab[explain]"'
START_TIMEOUT = 20.0  # seconds for the server to listen, on a busy machine


class Explanation:
    """The explain page served from this process: ``url``, :meth:`stop`, and an IFrame of
    the page as its notebook form (``height`` pixels high)."""

    def __init__(self, server, thread: threading.Thread, url: str, height: int):
        self.url, self.height = url, height
        self._server, self._thread = server, thread
        atexit.register(self.stop)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (open requests get ``timeout`` seconds to finish); idempotent."""
        atexit.unregister(self.stop)
        self._server.should_exit = True
        self._thread.join(timeout)

    def _repr_html_(self) -> str:
        if not self.running:
            return f"<p>The explain page at {html.escape(self.url)} was stopped.</p>"
        try:
            from IPython.display import IFrame
        except ImportError:  # a front end showing HTML without IPython: the same tag
            return (
                f'<iframe src="{html.escape(self.url)}" width="100%" height="{self.height}" '
                'frameborder="0"></iframe>'
            )
        return IFrame(self.url, width="100%", height=self.height)._repr_html_()

    def __repr__(self) -> str:
        state = "serving" if self.running else "stopped"
        return f"<kernelab explain page at {self.url} ({state})>"


def explain(
    model_or_run: Module | Source | str | Path | None = None,
    train: bool = False,
    port: int = 0,
    *,
    runs_dir: str | Path = "runs",
    data_dir: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    classes: list[str] | None = None,
    height: int | None = None,
) -> Explanation:
    """Serve the explain page for a model in memory, a run folder, a checkpoint or an ONNX
    file, on 127.0.0.1 at ``port`` (0: any free one), from a thread of this process.

    A model is copied first (see :func:`.source.model_source` for ``input_shape`` and
    ``classes``): the page shows it as it is now. ``train=True`` adds the Train view, whose
    runs go under ``runs_dir`` (data from ``data_dir``, else the cache); with no model it
    opens on a new classic network, as ``kernelab studio`` does. Stopping the server stops
    and saves a run in progress. The result, a cell's value, shows the page (``height``
    pixels high); ``.url`` is its address, ``.stop()`` ends the server. Raises ImportError
    without the ``explain`` extra.
    """
    try:
        import uvicorn

        from . import app
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error})") from None
    if isinstance(model_or_run, Module):
        source = model_source(model_or_run, input_shape, classes)
    elif isinstance(model_or_run, Source) or (model_or_run is None and train):
        source = model_or_run  # None: create_app makes the new network
    elif model_or_run is None:
        raise ValueError(
            "kl.explain: expected a model, a run folder or a checkpoint to explain "
            "(or train=True to start from a new network)"
        )
    else:
        source = load_source(model_or_run)
    served = app.create_app(
        source,
        allowed_hosts=list(app.LOOPBACK),
        train=train,
        runs_dir=runs_dir,
        data_dir=data_dir,
        frame_ancestors=app.LOCAL_FRAMERS,
    )
    sock = app.listen("127.0.0.1", port)
    # no logging set-up (the notebook's stays), no signal handlers (not the main thread)
    config = uvicorn.Config(
        served, log_level="warning", access_log=False, log_config=None, loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="kernelab-explain"
    )
    thread.start()
    _wait_for(server, thread, sock)
    return Explanation(server, thread, app.url_of(sock), height or (980 if train else 760))


def _wait_for(server: Any, thread: threading.Thread, sock) -> None:
    """Return once the server listens; raise if its thread ended or it took too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the explain server did not start (see the log above)")
        time.sleep(0.01)

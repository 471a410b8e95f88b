"""The web layer of ``kernelab explain``: routes, static assets, limits, and the server.

Every ``/api`` route names its session in the ``X-Kernelab-Session`` header (the page makes a
random id per tab); a JSON body is limited to ``limits.MAX_JSON_BYTES``, an upload to
``inputs.MAX_UPLOAD_BYTES``, and every computation waits for one of ``limits.Slots``' slots
(503 with ``Retry-After`` when they and their queue are full). Errors are JSON
``{"error": message}`` with a 4xx or 503 status; a session evicted for newer ones gets 410
with ``"expired": true`` added.
Static files are the package's asset folder, listed once at import: a request picks one
by name, so no path can reach anything else.
The computations live in ``api.py``; this module only speaks HTTP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import traceback
import webbrowser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ...core.threads import set_num_threads
from . import inputs, limits, live_config
from .api import Explainer
from .compute import ExplainError
from .live import LiveTraining, new_source
from .live_process import LiveProcess
from .live_web import live_routes
from .source import SessionExpired, load_source

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The only files ever served: the names in the asset folder, listed once. A request names one
# of them or gets a 404; no path from a request ever reaches the file system.
ASSETS = {p.name: MEDIA_TYPES[p.suffix] for p in STATIC.iterdir() if p.suffix in MEDIA_TYPES}
MAX_JSON_DEPTH = 8  # the deepest request, a kernel's rows of values, is 3
SESSION_HEADER = "x-kernelab-session"
MAX_MESSAGE = 240  # characters of an error message; the value it quotes is cut to fit
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
# Nothing from anywhere else: scripts, styles and requests stay on this server.
HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
# Pages on this machine (a notebook's, at any port) that may show the page in a frame, for a
# server that asks for it (``kl.explain``); ``kernelab explain`` lets no page frame it.
LOCAL_FRAMERS = "http://localhost:* http://127.0.0.1:* http://[::1]:*"


def security_headers(frame_ancestors: str = "'none'") -> dict[str, str]:
    """:data:`HEADERS` with the pages allowed to frame this one (CSP ``frame-ancestors``)."""
    policy = HEADERS["content-security-policy"]
    policy = policy.replace("frame-ancestors 'none'", f"frame-ancestors {frame_ancestors}")
    return dict(HEADERS, **{"content-security-policy": policy})


log = logging.getLogger("kernelab.explain")


class SecurityHeaders:
    """ASGI middleware adding ``headers`` (by default :data:`HEADERS`) to every response."""

    def __init__(self, app, headers: dict[str, str] | None = None):
        self.app, self.headers = app, headers or HEADERS

    async def __call__(self, scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(self.headers)
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


async def read_body(request: Request, limit: int, name: str = "JSON body") -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (even without Content-Length)."""
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > limit):
        raise ExplainError(
            f"the request body is {length[:20]} bytes; at most {limit:,} are accepted "
            f"(the {name} limit)",
            413,
        )
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ExplainError(
                    f"the request body is over {limit:,} bytes, the {name} limit", 413
                )
            chunks.append(chunk)
    except ClientDisconnect:  # nobody to answer; a 400 keeps it out of the error log
        raise ExplainError("the connection closed before the request body was sent") from None
    return b"".join(chunks)


async def read_json(request: Request) -> dict:
    body = await read_body(request, limits.MAX_JSON_BYTES)
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise ExplainError("the request body is not valid JSON") from None
    except RecursionError:
        payload = None  # nested past what the parser takes: refused below like any too deep
    if payload is None or json_depth(payload) > MAX_JSON_DEPTH:
        raise ExplainError(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(payload, dict):
        raise ExplainError("the request body must be a JSON object")
    return payload


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a number is depth 0)."""
    depth, level = 0, [value]
    while containers := [c for c in level if isinstance(c, list | dict)]:
        depth += 1
        level = [i for c in containers for i in (c.values() if isinstance(c, dict) else c)]
    return depth


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """An error message as one line of at most ``limit`` characters: a message may quote a
    request's value (a field, a name, a header), and those have any length."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def query_int(request: Request, name: str) -> int:
    text = request.query_params.get(name)
    if text is None:
        raise ExplainError(f"missing query parameter {name!r}")
    try:
        return int(text)
    except ValueError:
        raise ExplainError(
            f"query parameter {name!r} must be an integer, received {text!r}"
        ) from None


def create_app(
    source,
    allowed_hosts: list[str] | None = None,
    session_limit: int = 32,
    running: int | None = None,
    waiting: int | None = None,
    train: bool = False,
    runs_dir: str | Path = "runs",
    data_dir: str | None = None,
    train_threads: int = 1,
    train_process: bool = True,
    frame_ancestors: str = "'none'",
):
    """The Starlette app for a :class:`~.source.Source` (or a path to load one from).

    ``session_limit`` sessions are kept; ``running`` requests compute at once (default: one
    per core) and ``waiting`` more queue (default ``limits.WAITING_PER_CORE`` per core).
    ``frame_ancestors``: the pages that may show this one in a frame (CSP sources, e.g.
    :data:`LOCAL_FRAMERS`); none by default.
    A model the page cannot serve within ``limits`` is refused with a ValueError.
    ``train``: the Train view too (``live.py``), its runs written under ``runs_dir``, its
    data read from ``data_dir`` (else the cache), trained with ``train_threads`` threads in
    a process of their own (``live_process.py``; in threads of this one without
    ``train_process``); a ``source`` of None is a new model.
    """
    if train and source is None:
        source = new_source()
    if not hasattr(source, "model"):
        source = load_source(source)
    explainer = Explainer(source, session_limit)
    slots = limits.Slots(running, waiting)

    async def session(request: Request):
        # found at once; a new one copies the model and runs it once, so off the event loop
        session_id = request.headers.get(SESSION_HEADER)
        found = explainer.sessions.find(session_id)
        if found is not None:
            return found
        async with slots.slot():
            return await run_in_threadpool(explainer.session, session_id)

    async def light(function, *args: Any) -> JSONResponse:
        # serialised in a thread: the event loop keeps answering quick requests
        def answer() -> JSONResponse:
            return JSONResponse(function(*args))

        return await run_in_threadpool(answer)

    async def call(function, *args: Any) -> JSONResponse:
        # a computation: queued for a slot, or refused at once (503) when the queue is full
        async with slots.slot():
            return await light(function, *args)

    async def static(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in ASSETS:
            raise HTTPException(404, f"no file {name!r} here")
        return FileResponse(STATIC / name, media_type=ASSETS[name])

    async def model(request: Request):
        await session(request)
        return await light(lambda: dict(explainer.model(), train=train))

    async def forward(request: Request):
        return await call(explainer.forward, await session(request), await read_json(request))

    async def arithmetic(request: Request):
        return await call(explainer.arithmetic, await session(request), await read_json(request))

    async def upload(request: Request):
        await session(request)
        body = await read_body(request, inputs.MAX_UPLOAD_BYTES, "upload")
        return await call(explainer.upload, body)

    async def kernels(request: Request):
        return await call(explainer.kernels, await session(request), query_int(request, "layer"))

    async def kernel(request: Request):
        mine = await session(request)
        if request.method == "POST":
            return await call(explainer.edit_kernel, mine, await read_json(request))
        layer, channel = query_int(request, "layer"), query_int(request, "channel")
        return await call(explainer.kernel, mine, layer, channel)

    async def reset(request: Request):
        return await call(explainer.reset_kernel, await session(request), await read_json(request))

    async def save(request: Request):
        return await call(explainer.save, await session(request), await read_json(request))

    async def timeline(request: Request):
        mine = await session(request)
        if request.method == "POST":
            return await call(explainer.show_step, mine, await read_json(request))
        return await light(explainer.timeline, mine)

    async def training(request: Request):
        await session(request)
        return await light(explainer.training)

    async def test_set(request: Request):
        await session(request)
        return await light(explainer.test_summary)

    async def test_image(request: Request):
        await session(request)
        try:
            index = int(request.path_params["index"])
        except ValueError:
            raise ExplainError("a test image index is an integer") from None
        return await light(explainer.test_image, index)

    async def refused(request: Request, error: ExplainError):
        body: dict[str, Any] = {"error": one_line(str(error))}
        if isinstance(error, SessionExpired):
            body["expired"] = True
        headers = getattr(error, "headers", None)  # Retry-After of a 503
        return JSONResponse(body, status_code=error.status, headers=headers)

    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": one_line(error.detail)}, status_code=error.status_code)

    async def crashed(request: Request, error: Exception):
        log.error("explain: %s\n%s", error, traceback.format_exc())
        return JSONResponse({"error": f"internal error: {error}"}, status_code=500)

    routes = [
        Route("/", static),
        Route("/static/{name}", static),
        Route("/api/model", model),
        Route("/api/forward", forward, methods=["POST"]),
        Route("/api/arithmetic", arithmetic, methods=["POST"]),
        Route("/api/image", upload, methods=["POST"]),
        Route("/api/kernels", kernels),
        Route("/api/kernel", kernel, methods=["GET", "POST"]),
        Route("/api/kernel/reset", reset, methods=["POST"]),
        Route("/api/save", save, methods=["POST"]),
        Route("/api/timeline", timeline, methods=["GET", "POST"]),
        Route("/api/training", training),
        Route("/api/testset", test_set),
        Route("/api/testset/{index}", test_image),
    ]
    live = None
    if train:  # the Train view: its routes, and its runs stopped (saved) when the server stops
        settings = dict(
            runs_dir=str(runs_dir),
            data_dir=data_dir,
            defaults=live_config.page_defaults(source),
            threads=train_threads,
        )
        live = LiveProcess(**settings) if train_process else LiveTraining(**settings)
        routes += live_routes(live, read_json)
    middleware = [Middleware(SecurityHeaders, headers=security_headers(frame_ancestors))]
    if allowed_hosts is not None:  # refuses other Host headers (DNS rebinding)
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if live is not None:
            await run_in_threadpool(live.stop_all)

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ExplainError: refused, HTTPException: http_error, Exception: crashed},
        lifespan=lifespan,
    )
    app.state.explainer, app.state.slots, app.state.live = explainer, slots, live
    return app


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on every connection accepted (it checks
    # the protocol): without it a response written in two parts waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {error.strerror} "
            "(try another --port, or --port 0 for any free one)"
        ) from None
    sock.listen(64)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/"


@contextlib.contextmanager
def served_in_thread(app) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 at a free port, in a thread of this process
    (tests and benchmarks); yields its address and stops it on leaving."""
    import uvicorn

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def serve(
    path,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = False,
    threads: int = 1,
    sessions: int = 32,
    train: bool = False,
    runs_dir: str | Path = "runs",
    data_dir: str | None = None,
) -> int:
    """Load ``path``, print the page's address, and serve until interrupted.

    ``threads`` BLAS threads: one image is too small a product to share between cores, and
    on a busy machine several threads per product cost 10x in latency. ``sessions``: how
    many tabs' model copies are kept (the least recently used go first). ``train``: the
    Train view too, its runs under ``runs_dir``; ``path`` None is a new classic network.
    """
    import uvicorn

    set_num_threads(threads)
    source = new_source() if path is None else load_source(path)
    allowed = list(LOOPBACK) if host in LOOPBACK else None
    app = create_app(
        source,
        allowed_hosts=allowed,
        session_limit=sessions,
        train=train,
        runs_dir=runs_dir,
        data_dir=data_dir,
        train_threads=threads,
    )
    app.state.explainer.test_set.start()
    sock = listen(host, port)
    url = url_of(sock)
    print(f"kernelab explain: {source.path} at {url}  (Ctrl+C to stop)", flush=True)
    if train:
        print(f"training from the page into {Path(runs_dir).resolve()}", flush=True)
    if host not in LOOPBACK:
        print("warning: the page is reachable from other machines on this network", flush=True)
    if open_browser:
        webbrowser.open(url)
    # an open stream (the Train view's) never ends by itself: Ctrl+C cuts it after a second
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])
    return 0

"""The Train view's routes: its controls (JSON) and its stream (Server-Sent Events).

``GET /api/live`` gives the page's menus and its tab's status; ``POST /api/live/start``,
``/api/live/{pause,resume,step,stop,reset}``, ``/api/live/lr`` and ``/api/live/input`` drive
the tab's run (``live.LiveTraining``), ``/api/live/timeline`` shows it at a recorded step;
``GET /api/live/stream?session=ID`` streams the tab's state as ``text/event-stream`` (an
EventSource cannot send the session header, so the id is a query parameter). The stream
sends the latest published state when it changed, checked every :data:`POLL` seconds:
updates are coalesced, never queued; closing the stream's last connection (the tab closed)
stops the tab's run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from .compute import ExplainError
from .live import LiveTraining

POLL = 0.05  # seconds between two looks for a newer state (the training publishes at 4 Hz)
SESSION_HEADER = "x-kernelab-session"


def live_routes(live: LiveTraining, read_json: Callable[[Request], Awaitable[dict]]) -> list:
    """The Train view's routes for ``live`` (a LiveTraining, or a ``live_process.LiveProcess``
    with its calls); ``read_json`` reads a request body within the server's limits."""

    async def answer(function, *args) -> JSONResponse:
        # a start loads data and builds the model; a stop waits for a step: off the event loop
        return JSONResponse(await run_in_threadpool(function, *args))

    async def state(request: Request):
        session_id = request.headers.get(SESSION_HEADER)
        summary = await run_in_threadpool(live.check, session_id)
        options = await run_in_threadpool(live.options)
        return JSONResponse({"options": options, "state": summary})

    async def action(request: Request):
        session_id = request.headers.get(SESSION_HEADER)
        name = request.path_params["action"]
        payload = await read_json(request)
        if name == "start":
            return await answer(live.start, session_id, payload)
        if name == "lr":
            return await answer(live.set_lr, session_id, payload)
        if name == "input":
            return await answer(live.set_input, session_id, payload)
        if name == "timeline":
            return await answer(live.timeline, session_id, payload)
        return await answer(live.control, session_id, name)

    async def stream(request: Request):
        session_id = request.query_params.get("session")
        await run_in_threadpool(live.check, session_id)  # a 400 for a malformed id
        return StreamingResponse(
            events(request, session_id),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def events(request: Request, session_id: str) -> AsyncIterator[str]:
        await run_in_threadpool(live.attach, session_id)
        try:
            yield "retry: 1000\n\n"
            seen = -1
            while not await request.is_disconnected():
                version, text = await run_in_threadpool(live.latest, session_id, seen)
                if text is not None:
                    seen = version
                    yield f"data: {text}\n\n"
                await asyncio.sleep(POLL)
        finally:  # shielded: the response's cancellation (the tab gone) must not skip it
            with anyio.CancelScope(shield=True), contextlib.suppress(ExplainError):
                await run_in_threadpool(live.detach, session_id)  # (none left at shutdown)

    return [
        Route("/api/live", state),
        Route("/api/live/stream", stream),
        Route("/api/live/{action}", action, methods=["POST"]),
    ]

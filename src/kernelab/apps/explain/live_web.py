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
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from .live import LiveTraining

POLL = 0.05  # seconds between two looks for a newer state (the training publishes at 4 Hz)
SESSION_HEADER = "x-kernelab-session"


def live_routes(live: LiveTraining, read_json: Callable[[Request], Awaitable[dict]]) -> list:
    """The Train view's routes for ``live``; ``read_json`` reads a request body within the
    server's limits."""

    async def answer(function, *args) -> JSONResponse:
        # a start loads data and builds the model; a stop waits for a step: off the event loop
        return JSONResponse(await run_in_threadpool(function, *args))

    async def state(request: Request):
        page = live.page(request.headers.get(SESSION_HEADER))
        return JSONResponse({"options": live.options(), "state": page.summary()})

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
        page = live.page(request.query_params.get("session"))
        return StreamingResponse(
            events(request, page),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def events(request: Request, page) -> AsyncIterator[str]:
        live.attach(page)
        try:
            yield "retry: 1000\n\n"
            seen = -1
            while not await request.is_disconnected():
                version, text = page.latest()
                if version != seen:
                    seen = version
                    yield f"data: {text}\n\n"
                await asyncio.sleep(POLL)
        finally:
            live.detach(page)

    return [
        Route("/api/live", state),
        Route("/api/live/stream", stream),
        Route("/api/live/{action}", action, methods=["POST"]),
    ]

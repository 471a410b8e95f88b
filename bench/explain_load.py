"""Load test of ``kernelab explain``: many tabs at once against a real server process.

``python bench/explain_load.py [--sessions 64] [--duration 60] [--limit 32] [--think 0.1]``

A server process (uvicorn on 127.0.0.1 at a free port, one BLAS thread as ``kernelab explain``
uses) explains the classic network with random weights (``--arch``), or a run (``--run``),
keeping ``--limit`` sessions. ``--sessions`` simulated tabs then use it at once for
``--duration`` seconds, each as a person would: draw a digit stroke by stroke (a forward pass
per stroke), click pixels of feature maps (their arithmetic), open a layer's kernels and edit
one (typed values or a hand-designed kernel, then a forward pass), now and then reset them all,
with ``--think`` seconds between requests. Each tab checks what it is told:

* every forward pass reports as many edited kernels as the tab edited (no edit lost silently);
* a session the server dropped is answered 410 "session expired ..." with ``"expired": true``;
  the tab then starts a new session and sends the request again, as the page does;
* a request past the server's requests in flight (its computing slots and their queue full) is
  answered 503 "the server is busy ..." with ``Retry-After``; the tab waits that long and goes
  on with its next action, as a person told so by the page would (the model's description,
  without which a tab can do nothing, it asks for again, as the page does).

Anything else (another status, a dropped connection, a miscount) is an error, and the run
fails unless there are none. Reported: requests, p50 and p99 latency per endpoint, errors,
expired and busy answers, and the server's resident memory (VmRSS) before and after the load,
every 10 s during it, and its peak (VmHWM), from ``/proc``. Nothing listens or connects beyond
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import select
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT / "src"))

from kernelab.apps import arch  # noqa: E402
from kernelab.apps.inspection import synthetic_digit  # noqa: E402

SESSION = "X-Kernelab-Session"
EXPIRED = "session expired (the server keeps {limit} sessions); your kernel edits were lost"
BUSY = "the server is busy: "
STROKES = 5  # forward passes per drawing, one per stroke
TIMEOUT = 120  # seconds for any one answer; a longer wait is an error
SAMPLE = 10  # seconds between readings of the server's memory


# ---- the server, in a process of its own


def serve(args: argparse.Namespace) -> int:
    """The child: an explain server on 127.0.0.1 at a free port; prints its address."""
    import uvicorn

    from kernelab import set_num_threads
    from kernelab.apps.explain.app import create_app, listen, url_of
    from kernelab.apps.explain.source import Source, load_source

    set_num_threads(1)
    if args.run:
        source = load_source(args.run)
    else:
        source = Source(
            model=arch.build(args.arch, (1, 28, 28), generator=0).eval(),
            config={},
            path=Path("random-weights"),
            kind="run",
            input_shape=(1, 28, 28),
            mean=0.1307,
            std=0.3081,
            classes=[str(d) for d in range(10)],
        )
    app = create_app(source, allowed_hosts=["127.0.0.1"], session_limit=args.limit)
    sock = listen("127.0.0.1", 0)
    print(url_of(sock), flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops on SIGINT, then re-raises it
        server.run(sockets=[sock])
    return 0


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", "--limit", str(args.limit)]
    command += ["--run", str(args.run)] if args.run else ["--arch", args.arch]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([server.stdout], [], [], 180)
    url = server.stdout.readline().strip() if ready else ""
    if not url.startswith("http://127.0.0.1:"):
        server.kill()
        raise RuntimeError(f"the explain server did not start (printed {url!r})")
    return server, url.rstrip("/")


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)  # uvicorn's graceful stop
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM) of a process, in MB."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    return found


# ---- the tabs


class Connection:
    """A tab's kept-alive HTTP/1.1 connection, and nothing more than the server's answers need.

    A general client (httpx) costs the load test more CPU than the server spends answering,
    on the same cores, and its own queue then dominates every latency measured.
    """

    def __init__(self, url: str):
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict, body: bytes) -> tuple:
        """(status, headers, body) of one request; the connection is opened again if it was
        closed. Header names are in lower case."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
            answer = await self.reader.readexactly(int(fields["content-length"]))
        except BaseException:
            self.close()
            raise
        if fields.get("connection") == "close":
            self.close()
        return int(head.split(" ", 2)[1]), fields, answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Record:
    """What every tab saw: latencies by endpoint, expired and busy answers, errors (endpoint,
    what)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    expired: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    sessions: int = 0
    edited_sessions_lost: int = 0  # sessions that expired holding kernel edits
    kernels_lost: int = 0  # the edited kernels they held


def drawings(rng: np.random.Generator) -> list[str]:
    """A 7, shifted and noisy, revealed stroke by stroke: base64 pixels per forward pass."""
    image = np.roll(synthetic_digit(), rng.integers(-3, 4, 2), axis=(0, 1)).astype(np.int16)
    image = np.clip(image + rng.integers(0, 30, image.shape), 0, 255).astype(np.uint8)
    rows = np.arange(28)[:, None]
    return [
        base64.b64encode(np.where(rows < cut, image, 0).astype(np.uint8).tobytes()).decode()
        for cut in np.linspace(6, 28, STROKES).astype(int)
    ]


class Tab:
    """One simulated browser tab: its session id, what it edited, and its requests."""

    def __init__(self, url: str, record: Record, index: int, args: argparse.Namespace):
        self.connection, self.record, self.args = Connection(url), record, args
        self.rng = np.random.default_rng(index)
        self.index, self.renewals = index, 0
        self.busy = False  # the last answer was 503 busy
        self.until = float("inf")  # no request is sent after this (time.monotonic())
        self.expired_text = EXPIRED.format(limit=args.limit)
        self.renew()

    def renew(self) -> None:
        """A new session id, with nothing edited (as the page makes one)."""
        self.id = f"load-tab-{self.index:03d}-{self.renewals:05d}"
        self.renewals += 1
        self.edited: set[tuple[int, int]] = set()
        self.record.sessions += 1

    async def request(self, name: str, method: str, path: str, payload=None, again=True):
        """The answer's JSON, or None (an error is recorded, or the time is up).

        Waits ``--think`` seconds after the answer, as a person would before the next click.
        """
        if again and time.monotonic() >= self.until:
            return None
        headers = {SESSION: self.id}
        body = b""
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        start = time.perf_counter()
        try:
            asked = self.connection.request(method, path, headers, body)
            status, fields, text = await asyncio.wait_for(asked, TIMEOUT)
            ms = (time.perf_counter() - start) * 1e3  # the whole answer read, not yet parsed
            answer = json.loads(text)
        except Exception as error:  # a dropped connection, a timeout, a body that is not JSON
            self.record.errors.append((name, f"{type(error).__name__}: {error}"))
            return None
        told = str(answer.get("error", ""))
        self.busy = status == 503
        if status == 503 and told.startswith(BUSY) and fields.get("retry-after", "").isdigit():
            self.record.busy.append(ms)
            await asyncio.sleep(int(fields["retry-after"]))
            return None
        await asyncio.sleep(self.args.think)
        if status == 200:
            self.record.latencies[name].append(ms)
            return answer
        if status == 410 and answer.get("expired") and again:
            if not told.startswith(self.expired_text):
                self.record.errors.append((name, f"410 saying {told!r}"))
            self.record.expired.append(ms)
            self.record.edited_sessions_lost += bool(self.edited)
            self.record.kernels_lost += len(self.edited)
            self.renew()
            return await self.request(name, method, path, payload, again=False)
        self.record.errors.append((name, f"HTTP {status}: {told[:200]}"))
        return None

    async def forward(self, pixels: str) -> None:
        answer = await self.request("forward", "POST", "/api/forward", {"pixels": pixels})
        if answer is not None and answer["edits"] != len(self.edited):
            told = f"{answer['edits']} kernels edited, the tab edited {len(self.edited)}"
            self.record.errors.append(("forward", told))

    async def click(self, layers: list[dict], pixels: str) -> None:
        layer = int(self.rng.integers(len(layers)))
        shape = layers[layer]["shape"]
        where = [int(self.rng.integers(n)) for n in shape] + [0, 0]  # channel, y, x
        payload = {"pixels": pixels, "layer": layer, "channel": where[0]}
        if len(shape) == 3:
            payload.update(y=where[1], x=where[2])
        await self.request("arithmetic", "POST", "/api/arithmetic", payload)

    async def edit(self, conv: dict, pixels: str) -> None:
        """Open a layer's kernels, replace one (or one slice of it), see the forward pass."""
        layer = conv["index"]
        kernels = await self.request("kernels", "GET", f"/api/kernels?layer={layer}")
        if kernels is None:
            return
        count, depth, kh, kw = kernels["shape"]
        channel = int(self.rng.integers(count))
        payload = {"layer": layer, "channel": channel}
        if self.rng.random() < 0.5:
            payload["spec"] = str(self.rng.choice(kernels["presets"]))
        else:
            payload["values"] = np.round(self.rng.normal(0, 0.3, (kh, kw)), 3).tolist()
            payload["in_channel"] = int(self.rng.integers(depth))
        if await self.request("edit", "POST", "/api/kernel", payload) is not None:
            self.edited.add((layer, channel))
        await self.forward(pixels)

    async def reset(self) -> None:
        if await self.request("reset", "POST", "/api/kernel/reset", {}) is not None:
            self.edited.clear()

    async def run(self, until: float) -> None:
        """Draw, click, edit, sometimes reset, until the time is up (a round at least)."""
        model = await self.request("model", "GET", "/api/model")
        while model is None and self.busy and time.monotonic() < until:  # as the page does
            model = await self.request("model", "GET", "/api/model")
        if model is None:
            return
        layers = model["layers"]
        convs = [layer for layer in layers if layer["kind"] == "conv"]
        while True:  # at least once: a warm-up tab runs one round with no time given
            strokes = drawings(self.rng)
            for pixels in strokes:
                await self.forward(pixels)
            for _ in range(int(self.rng.integers(1, 4))):
                await self.click(layers, strokes[-1])
            if convs and self.rng.random() < 0.5:
                await self.edit(convs[int(self.rng.integers(len(convs)))], strokes[-1])
            if self.rng.random() < 0.1:
                await self.reset()
            self.until = until  # from the second round on, no request past it
            if time.monotonic() >= until:
                return


async def load(url: str, args: argparse.Namespace, pid: int | None = None):
    """(what the tabs saw, seconds taken, the server's VmRSS every ``SAMPLE`` seconds)."""
    record, rss = Record(), []
    start = time.monotonic()
    tabs = [Tab(url, record, k, args) for k in range(args.sessions)]

    async def sample() -> None:
        while pid is not None:
            await asyncio.sleep(SAMPLE)
            rss.append(memory_mb(pid)["VmRSS"])

    sampler = asyncio.ensure_future(sample())
    try:
        await asyncio.gather(*(tab.run(start + args.duration) for tab in tabs))
    finally:
        sampler.cancel()
        for tab in tabs:
            tab.connection.close()
    return record, time.monotonic() - start, rss


# ---- the report


def report(record: Record, seconds: float, memory: dict, args: argparse.Namespace) -> str:
    total = sum(len(v) for v in record.latencies.values()) + len(record.expired)
    total += len(record.busy)
    lines = [
        f"kernelab explain under load: {args.sessions} tabs for {seconds:.0f} s, the server "
        f"keeping {args.limit} sessions, {args.think * 1e3:.0f} ms between a tab's requests",
        f"model: {args.run or args.arch}; {total:,} requests ({total / seconds:.1f}/s)",
        "",
        "| endpoint | answered | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    named = dict(sorted(record.latencies.items()))
    named["410 session expired"] = record.expired
    named["503 busy"] = record.busy
    failed = defaultdict(int)
    for name, _ in record.errors:
        failed[name] += 1
    for name in sorted(failed.keys() - named.keys()):
        named[name] = []
    for name, times in named.items():
        p50, p99 = np.percentile(times, [50, 99]) if times else (np.nan, np.nan)
        lines.append(f"| {name} | {len(times):,} | {p50:.1f} | {p99:.1f} | {failed[name]} |")
    before, after = memory["before"], memory["after"]
    lines += [
        "",
        f"errors: {len(record.errors)}",
        f"expired answers: {len(record.expired)} ({len(record.expired) / max(total, 1):.0%} of "
        f'requests), each saying "{EXPIRED.format(limit=args.limit)}, the model was reloaded"; '
        f"{record.sessions} sessions started in all; {record.edited_sessions_lost} expired "
        f"holding edits ({record.kernels_lost} edited kernels lost, each loss announced)",
        f"busy answers: {len(record.busy)} ({len(record.busy) / max(total, 1):.0%} of requests), "
        f'each a 503 saying "{BUSY}..." with Retry-After, after which the tab went on',
        f"server memory: VmRSS {before['VmRSS']:.0f} MB before, {after['VmRSS']:.0f} MB after; "
        f"peak (VmHWM) {after['VmHWM']:.0f} MB; every {SAMPLE} s: "
        + (", ".join(f"{mb:.0f}" for mb in memory["during"]) or "-"),
    ]
    lines += [f"  {name}: {error}" for name, error in record.errors[:10]]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=64, help="tabs at once (default 64)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--limit", type=int, default=32, help="sessions the server keeps")
    parser.add_argument("--think", type=float, default=0.1, help="seconds between requests")
    parser.add_argument("--arch", default=arch.CLASSIC, help="the network, random weights")
    parser.add_argument("--run", help="explain this run folder instead of --arch")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.sessions, args.limit) < 1 or args.duration <= 0 or args.think < 0:
        parser.error("--sessions and --limit must be >= 1, --duration > 0, --think >= 0")
    return args


def main(argv: list[str] | None = None) -> tuple[int, str]:
    """Run the load test; (exit status, the report). The status is 1 when any error occurred."""
    args = parse(argv)
    if args.serve:
        return serve(args), ""
    server, url = start_server(args)
    try:
        asyncio.run(load(url, argparse.Namespace(**{**vars(args), "sessions": 1, "duration": 0})))
        memory = {"before": memory_mb(server.pid)}  # after one tab compiled and warmed up
        record, seconds, memory["during"] = asyncio.run(load(url, args, server.pid))
        memory["after"] = memory_mb(server.pid)
    finally:
        stop_server(server)
    text = report(record, seconds, memory, args)
    return (1 if record.errors else 0), text


if __name__ == "__main__":
    status, text = main()
    print(text)
    sys.exit(status)

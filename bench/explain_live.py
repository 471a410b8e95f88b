"""The Train view under way: its update rate, and the page's other requests while it trains.

``python bench/explain_live.py [--rounds 4] [--window 6] [--runs-dir /tmp/explain-live-runs]``

Starts ``kernelab studio`` in a process of its own (one thread, as the command does), opens
the Train view's stream, starts the classic network on MNIST (the offline subset when nothing
else is there) with the page's defaults, and counts the states the stream delivers (and their
size) while another tab asks what a person would: the model's description, a forward pass of
a drawn digit, a layer's kernels, one after another with 50 ms between them. The run is
paused and resumed in turn (``--rounds`` of ``--window`` seconds each), so the requests timed
while it trains and while it is paused share the machine's load. Reported: the stream's
updates per second and training steps per second, and p50 / p95 / max latency of each request
paused and while training; with ``--browser``, the rate the page itself receives and draws
in Chromium. Nothing listens or connects beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

TAB = {"X-Kernelab-Session": "bench-other-tab", "Content-Type": "application/json"}
TRAINER = {"X-Kernelab-Session": "bench-training-tab", "Content-Type": "application/json"}


def digit() -> str:
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 6:9, 8:20] = 255
    image[0, 9:24, 15:18] = 200
    return base64.b64encode(image.tobytes()).decode()


def request(url: str, path: str, body: dict | None = None, headers=TAB) -> float:
    """One request's time in seconds (the answer read whole)."""
    data = None if body is None else json.dumps(body).encode()
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url + path, data, headers), timeout=30) as r:
        r.read()
    return time.perf_counter() - start


def timed_requests(url: str, seconds: float) -> dict[str, list[float]]:
    """What another tab asks, in turn, for ``seconds``: each request's times."""
    times: dict[str, list[float]] = {"model": [], "forward": [], "kernels": []}
    pixels = digit()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        times["model"].append(request(url, "api/model"))
        times["forward"].append(request(url, "api/forward", {"pixels": pixels, "centre": True}))
        times["kernels"].append(request(url, "api/kernels?layer=0"))
        time.sleep(0.05)
    return times


def watch(url: str, seconds: float, out: dict) -> None:
    """Read the training tab's stream for ``seconds``: states, their steps and sizes."""
    stream = urllib.request.urlopen(
        urllib.request.Request(url + "api/live/stream?session=bench-training-tab"), timeout=30
    )
    out["states"], out["bytes"] = [], []
    end = time.monotonic() + seconds
    buffer = b""
    while time.monotonic() < end:
        line = stream.readline()
        buffer += line
        if line == b"\n":
            if buffer.startswith(b"data: "):
                state = json.loads(buffer[6:])
                out["states"].append((time.monotonic(), state["step"], state["status"]))
                out["bytes"].append(len(buffer))
            buffer = b""
    out["stream"] = stream  # kept open until the measurement ends: closing it stops the run


def summary(times: list[float]) -> str:
    ms = np.asarray(times) * 1e3
    p50, p95 = np.median(ms), np.percentile(ms, 95)
    return f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {ms.max():6.1f} ms"


def report(watched: dict, idle: dict, busy: dict) -> None:
    """The stream's rate over its longest stretch of training, and the latencies."""
    states = watched["states"]
    runs, current = [], []
    for state in states:
        if state[2] == "running":
            current.append(state)
        elif current:
            runs.append(current)
            current = []
    runs.append(current)
    rates = [(len(r) - 1) / (r[-1][0] - r[0][0]) for r in runs if len(r) > 2]
    steps = [(r[-1][1] - r[0][1]) / (r[-1][0] - r[0][0]) for r in runs if len(r) > 2]
    print(
        f"stream: {np.median(rates):.1f} updates/s while training (median of {len(rates)} "
        f"stretches; {np.median(watched['bytes']) / 1024:.0f} KB each); training "
        f"{np.median(steps):.1f} steps/s (batch 64)"
    )
    for name in idle:
        print(f"{name:8s} paused    {summary(idle[name])}  ({len(idle[name])} requests)")
        print(f"{name:8s} training  {summary(busy[name])}  ({len(busy[name])} requests)")


def closing(url: str, stream) -> float:
    """Seconds from closing the training tab's stream (its run running) to the run stopped."""
    request(url, "api/live/start", {}, TRAINER)  # continues the stopped run
    time.sleep(2.0)
    stream.close()
    start = time.perf_counter()
    while time.perf_counter() - start < 10:
        page = urllib.request.Request(url + "api/live", headers=TRAINER)
        with urllib.request.urlopen(page, timeout=30) as answer:
            if json.loads(answer.read())["state"]["status"] == "stopped":
                break
        time.sleep(0.01)
    return time.perf_counter() - start


def browser_rate(url: str, seconds: float) -> None:
    """The rate the page itself reaches: Chromium (Playwright) starts the classic network from
    the Train view and counts the states it receives and draws for ``seconds``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1360, "height": 860})
        page.goto(url)
        page.wait_for_selector("#tab-train:not([hidden])")
        page.click("#live-start")
        page.wait_for_function("() => (window.kernelabLive.state || {}).step >= 5", timeout=60_000)
        count = "() => [window.kernelabLive.received, window.kernelabLive.drawn, performance.now()]"
        (r0, d0, t0), _ = page.evaluate(count), time.sleep(seconds)
        r1, d1, t1 = page.evaluate(count)
        page.click("#live-stop")
        browser.close()
    elapsed = (t1 - t0) / 1e3
    print(
        f"page: {(r1 - r0) / elapsed:.1f} states/s received, {(d1 - d0) / elapsed:.1f} drawn "
        f"over {elapsed:.0f} s of training"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="paused / training rounds")
    parser.add_argument("--browser", action="store_true", help="also the rate in Chromium")
    parser.add_argument("--window", type=float, default=6.0, help="seconds of each phase")
    parser.add_argument("--runs-dir", default="/tmp/explain-live-runs")
    args = parser.parse_args()
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(src))
    command = [sys.executable, "-m", "kernelab.cli", "studio", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--runs-dir", args.runs_dir], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        url = server.stdout.readline().split(" at ")[1].split()[0]
        request(url, "api/model")
        watched: dict = {}
        total = args.rounds * 2 * args.window + 10
        watcher = threading.Thread(target=watch, args=(url, total, watched))
        watcher.start()
        started = time.perf_counter()
        request(url, "api/live/start", {}, TRAINER)
        print(f"start answered in {(time.perf_counter() - started) * 1e3:.0f} ms")
        time.sleep(5.0)  # past the first steps (compilation when the cache is cold)
        idle: dict[str, list[float]] = {}
        busy: dict[str, list[float]] = {}
        for _ in range(args.rounds):  # paused and training in turn: the same machine load
            request(url, "api/live/pause", {}, TRAINER)
            time.sleep(0.5)
            for name, times in timed_requests(url, args.window).items():
                idle.setdefault(name, []).extend(times)
            request(url, "api/live/resume", {}, TRAINER)
            time.sleep(0.5)
            for name, times in timed_requests(url, args.window).items():
                busy.setdefault(name, []).extend(times)
        watcher.join()
        report(watched, idle, busy)
        stop = request(url, "api/live/stop", {}, TRAINER)
        print(f"stop answered (checkpoint saved) in {stop * 1e3:.0f} ms")
        print(f"tab closed: the run stopped {closing(url, watched['stream']) * 1e3:.0f} ms later")
        if args.browser:
            browser_rate(url, args.window * 2)
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl+C: the run is saved, the server ends
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())

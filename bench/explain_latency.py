"""Latency of one full update of ``kernelab explain`` for the classic network.

``python bench/explain_latency.py [--calls 200] [--threads 1]``

A full update is what the page asks for while a digit is drawn: the forward pass with every
feature map, encoded for the page (uint8 per map, base64) and serialised to JSON. It is timed
three ways, each over ``--calls`` different drawings after a warm-up:

* ``api``: ``Explainer.forward`` plus ``json.dumps``, in process;
* ``asgi``: a POST through Starlette's test client (the web layer included);
* ``http``: a POST over a real socket to uvicorn on 127.0.0.1 (what the browser waits for).

The target is a median under 50 ms. For scale, the same run times PyTorch's forward pass of
the same network on one image (no feature maps kept or encoded) and reports the ratio.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from kernelab.apps import arch  # noqa: E402
from kernelab.apps.explain.api import Explainer  # noqa: E402
from kernelab.apps.explain.source import Source  # noqa: E402
from kernelab.apps.inspection import synthetic_digit  # noqa: E402

TARGET_MS = 50.0
HEADERS = {"X-Kernelab-Session": "benchmark-session", "Content-Type": "application/json"}


def drawings(count: int, seed: int = 0) -> list[dict]:
    """Request bodies: a drawn 7 shifted and with noise, different every time."""
    rng = np.random.default_rng(seed)
    base = synthetic_digit()
    bodies = []
    for _ in range(count):
        image = np.roll(base, rng.integers(-3, 4, 2), axis=(0, 1)).astype(np.int16)
        image = np.clip(image + rng.integers(0, 30, image.shape), 0, 255).astype(np.uint8)
        bodies.append({"pixels": base64.b64encode(image.tobytes()).decode(), "centre": False})
    return bodies


def classic_source() -> Source:
    model = arch.build(arch.CLASSIC, (1, 28, 28), generator=0).eval()
    return Source(
        model=model,
        config={},
        path=Path("classic"),
        kind="run",
        input_shape=(1, 28, 28),
        mean=0.1307,
        std=0.3081,
        classes=[str(d) for d in range(10)],
    )


def timed(call, bodies: list[dict], warmup: int = 10) -> list[float]:
    for body in bodies[:warmup]:
        call(body)
    times = []
    for body in bodies:
        start = time.perf_counter()
        call(body)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def torch_forward_ms(bodies: list[dict], source: Source) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 5, padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 5, padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(3136, 10),
    ).eval()
    with torch.no_grad():
        for ours, theirs in zip(source.model.parameters(), net.parameters(), strict=True):
            theirs.copy_(torch.from_numpy(np.array(ours.array)))

    def call(body):
        pixels = np.frombuffer(base64.b64decode(body["pixels"]), np.uint8)
        x = torch.from_numpy((pixels.reshape(1, 1, 28, 28) / 255 - 0.1307) / 0.3081).float()
        with torch.no_grad():
            net(x)

    return statistics.median(timed(call, bodies))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads (default 1, as `kernelab explain` uses)",
    )
    args = parser.parse_args()
    from starlette.testclient import TestClient

    from kernelab import set_num_threads
    from kernelab.apps.explain.app import create_app, served_in_thread

    set_num_threads(args.threads)

    source = classic_source()
    explainer = Explainer(source)
    session = explainer.session(HEADERS["X-Kernelab-Session"])
    bodies = drawings(args.calls)
    size = len(json.dumps(explainer.forward(session, bodies[0])))
    results = {"api": timed(lambda b: json.dumps(explainer.forward(session, b)), bodies)}

    app = create_app(source)
    with TestClient(app) as client:
        results["asgi"] = timed(
            lambda b: client.post("/api/forward", json=b, headers=HEADERS), bodies
        )

    with served_in_thread(app) as address:
        url = address + "api/forward"

        def over_http(body):
            request = urllib.request.Request(url, json.dumps(body).encode(), HEADERS)
            with urllib.request.urlopen(request) as response:
                response.read()

        results["http"] = timed(over_http, bodies)

    torch_ms = torch_forward_ms(bodies, source)
    print(f"kernelab explain: one full update of the classic network ({arch.CLASSIC})")
    print(f"{args.calls} drawings each; response {size / 1024:.0f} KiB of JSON\n")
    print(f"{'path':<6} {'median ms':>10} {'p90 ms':>8}  target < {TARGET_MS:g} ms")
    for name, times in results.items():
        median, p90 = statistics.median(times), float(np.percentile(times, 90))
        print(f"{name:<6} {median:>10.2f} {p90:>8.2f}  {'met' if median < TARGET_MS else 'MISSED'}")
    if torch_ms is not None:
        ratio = statistics.median(results["api"]) / torch_ms
        print(
            f"\nPyTorch forward alone, same network and images: {torch_ms:.2f} ms median; "
            f"the full update takes {ratio:.1f}x that"
        )
    return 0 if statistics.median(results["http"]) < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())

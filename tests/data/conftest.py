"""Fixtures for the data tests: a local HTTP server, random MNIST files, an empty cache."""

import collections
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from mnist_files import MNIST_FILES, write_mnist


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes[path]``: ``("ok", body)``, ``("truncated", body)`` (announces
    more bytes than it sends, then hangs up) or ``("status", code)``."""

    def do_GET(self):
        self.server.hits[self.path] += 1
        kind, body = self.server.routes.get(self.path, ("status", 404))
        if kind == "status":
            self.send_error(body)
            return
        self.send_response(200)
        declared = len(body) + (1000 if kind == "truncated" else 0)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


class LocalServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.routes = {}
        self.httpd.hits = collections.Counter()
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def routes(self):
        return self.httpd.routes

    @property
    def hits(self):
        return self.httpd.hits

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def http_server():
    server = LocalServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty cache, also the default one, so no test touches ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("KERNELAB_DATA", str(cache))
    return cache


def write_mnist_like(folder, n_train=12, n_test=5, compress=True, seed=0):
    """Four small MNIST-format files of random pixels in ``folder``; returns the arrays, by
    file name."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    splits = {prefix: [arrays[name] for name in names] for prefix, names in MNIST_FILES.items()}
    write_mnist(folder, splits, compress)
    return arrays

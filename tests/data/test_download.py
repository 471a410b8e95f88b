"""The downloader, against a local HTTP server on 127.0.0.1."""

import hashlib
import socket
import sys
from pathlib import Path

import pytest

from kernelab.data import DownloadError, check_integrity, default_cache_dir, download
from kernelab.data import download as download_function

BODY = bytes(range(256)) * 300
SHA256 = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()


@pytest.fixture
def server(http_server):
    http_server.routes.update(
        {
            "/good/file.bin": ("ok", BODY),
            "/corrupt/file.bin": ("ok", BODY[:-1] + b"x"),
            "/truncated/file.bin": ("truncated", BODY),
            "/missing/file.bin": ("status", 404),
            "/broken/file.bin": ("status", 500),
        }
    )
    return http_server


def listing(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_lands_in_cache(server, cache_dir):
    path = download(server.url("/good/file.bin"), "file.bin", sha256=SHA256, progress=False)
    assert path == cache_dir / "file.bin"
    assert path.read_bytes() == BODY
    assert listing(cache_dir) == ["file.bin"]  # no temporary file left beside it


def test_md5_alone_is_enough(server, tmp_path):
    path = download(
        [server.url("/good/file.bin")], "f", md5=MD5, cache_dir=tmp_path, progress=False
    )
    assert path.read_bytes() == BODY


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ("/corrupt/file.bin", "sha256 mismatch"),
        ("/truncated/file.bin", f"truncated: received {len(BODY)} of {len(BODY) + 1000}"),
        ("/missing/file.bin", "HTTP 404"),
        ("/broken/file.bin", "HTTP 500"),
    ],
)
def test_bad_file_is_refused_and_leaves_nothing(server, cache_dir, route, reason):
    with pytest.raises(DownloadError, match=reason) as info:
        download(server.url(route), "file.bin", sha256=SHA256, progress=False)
    assert info.value.failures[0][0] == server.url(route)
    assert listing(cache_dir) == []


def test_first_mirror_failing_second_succeeding(server, cache_dir):
    urls = [
        server.url("/missing/file.bin"),
        server.url("/corrupt/file.bin"),
        server.url("/good/file.bin"),
    ]
    path = download(urls, "file.bin", sha256=SHA256, progress=False)
    assert path.read_bytes() == BODY
    assert [
        server.hits[u] for u in ("/missing/file.bin", "/corrupt/file.bin", "/good/file.bin")
    ] == [
        1,
        1,
        1,
    ]
    assert listing(cache_dir) == ["file.bin"]


def _refused_url():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def test_all_mirrors_failing_lists_every_failure(server, cache_dir):
    urls = [server.url("/missing/file.bin"), server.url("/truncated/file.bin"), _refused_url()]
    with pytest.raises(DownloadError) as info:
        download(urls, "file.bin", sha256=SHA256, progress=False)
    message = str(info.value)
    assert "file.bin from any of 3 mirror(s)" in message
    for url, reason in zip(urls, ("HTTP 404", "truncated", "refused"), strict=True):
        assert f"{url}: " in message and reason in message
    assert [url for url, _ in info.value.failures] == urls
    assert listing(cache_dir) == []


def test_silent_server_times_out(cache_dir):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/file.bin"
        with pytest.raises(DownloadError, match="timed out"):
            download(url, "file.bin", sha256=SHA256, timeout=0.2, progress=False)
    assert listing(cache_dir) == []


def test_cached_file_is_not_downloaded_again(server, cache_dir):
    url = server.url("/good/file.bin")
    download(url, "file.bin", sha256=SHA256, progress=False)
    download(url, "file.bin", sha256=SHA256, progress=False)
    assert server.hits["/good/file.bin"] == 1


def test_cached_file_with_wrong_checksum_is_replaced(server, cache_dir):
    cache_dir.mkdir()
    (cache_dir / "file.bin").write_bytes(b"stale")
    path = download(server.url("/good/file.bin"), "file.bin", sha256=SHA256, progress=False)
    assert server.hits["/good/file.bin"] == 1
    assert path.read_bytes() == BODY and check_integrity(path, sha256=SHA256, md5=MD5)


def test_failed_download_keeps_nothing_even_when_interrupted(server, cache_dir, monkeypatch):
    class Interrupting:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def update(self, count):
            raise KeyboardInterrupt

    monkeypatch.setattr(
        sys.modules["kernelab.data.download"], "_progress_bar", lambda *a: Interrupting()
    )
    with pytest.raises(KeyboardInterrupt):
        download(server.url("/good/file.bin"), "file.bin", sha256=SHA256)
    assert listing(cache_dir) == []


def test_plain_progress_without_tqdm(server, cache_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `from tqdm import tqdm` fail
    download(server.url("/good/file.bin"), "file.bin", sha256=SHA256, progress=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and server.url("/good/file.bin") in err


def test_tqdm_progress(server, cache_dir):
    pytest.importorskip("tqdm")
    assert download(server.url("/good/file.bin"), "file.bin", sha256=SHA256).read_bytes() == BODY


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="expected a sha256 or md5 checksum, received neither"):
        download("http://127.0.0.1/x", "x", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="plain file name"):
        download("http://127.0.0.1/x", "../x", sha256=SHA256, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="at least one URL"):
        download([], "x", sha256=SHA256, cache_dir=tmp_path)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("KERNELAB_DATA", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("KERNELAB_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "kernelab"


def test_package_exports_the_function():
    assert download_function is download and callable(download)

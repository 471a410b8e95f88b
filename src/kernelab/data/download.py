"""Download a file into the cache from the first of several mirrors that serves it intact.

A file appears in the cache only whole and verified: it is streamed into a temporary
``.<name>.*.part`` file in the cache folder, checked against its SHA-256 or MD5, and only then
renamed to its final name with ``os.replace`` (atomic on POSIX and Windows). Any failure
removes the temporary file; a hard kill (SIGKILL, power loss) can leave one behind, but it is
never read as the file. The cache is ``$KERNELAB_DATA`` if set, else ``~/.cache/kernelab``.

The network modules (urllib, http.client and through them ssl and email: some 35 ms) are
imported by a download only, not with the package: every ``kernelab`` command imports this
module, and most find their files cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

DEFAULT_TIMEOUT = 10.0  # seconds per connect or read: a dead mirror costs seconds, not minutes
_CHUNK = 1 << 16
_USER_AGENT = "kernelab-data/0.1"  # some hosts refuse urllib's default agent with HTTP 403


class DownloadError(OSError):
    """Every mirror failed; ``failures`` holds one ``(url, reason)`` pair per mirror tried."""

    def __init__(self, filename: str, failures: list[tuple[str, str]]):
        lines = "".join(f"\n  {url}: {reason}" for url, reason in failures)
        self.message = (
            f"could not download {filename} from any of {len(failures)} mirror(s):{lines}"
        )
        super().__init__(self.message)
        self.filename = filename
        self.failures = failures

    def __str__(self) -> str:  # OSError's own would format errno and strerror
        return self.message


def default_cache_dir() -> Path:
    """``$KERNELAB_DATA`` if set, else ``~/.cache/kernelab``."""
    env = os.environ.get("KERNELAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kernelab"


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (``algorithm`` is any name hashlib knows)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_integrity(
    path: str | os.PathLike, sha256: str | None = None, md5: str | None = None
) -> bool:
    """True if the file exists and matches every checksum given (at least one is required)."""
    expected = _expected_digests(sha256, md5, Path(path).name)
    if not Path(path).is_file():
        return False
    return all(file_digest(path, name) == value for name, value in expected.items())


def download(
    urls: str | Sequence[str],
    filename: str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Path:
    """Fetch ``filename`` into ``cache_dir`` from the first URL that serves it intact.

    ``urls`` are full URLs of the same file on different mirrors, tried in order; any failure
    (connection refused, HTTP error, timeout, truncated body, wrong checksum) moves on to the
    next. A file already cached with the right checksum is returned without a download; one
    with a wrong checksum is downloaded again. Raises :class:`DownloadError` listing every
    mirror's failure when none succeeds. Returns the path of the cached file.
    """
    expected = _expected_digests(sha256, md5, filename)
    if Path(filename).name != filename or filename in ("", ".", ".."):
        raise ValueError(f"download: expected a plain file name, received {filename!r}")
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError(f"download({filename!r}): expected at least one URL, received none")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / filename
    if check_integrity(target, sha256, md5):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    import http.client

    failures = []
    for url in urls:
        try:
            _fetch(url, target, expected, timeout, progress)
            return target
        except (OSError, ValueError, http.client.HTTPException) as error:
            # URLError, HTTPError, timeouts and resets are OSErrors; IncompleteRead is not
            failures.append((url, _reason(error)))
    raise DownloadError(filename, failures)


def _expected_digests(sha256: str | None, md5: str | None, filename: str) -> dict[str, str]:
    expected = {name: value.lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}
    if not expected:
        raise ValueError(f"{filename}: expected a sha256 or md5 checksum, received neither")
    return expected


def _fetch(url: str, target: Path, expected: dict[str, str], timeout: float, progress: bool):
    """Stream one URL into a temporary file beside ``target``, verify it, rename it."""
    import urllib.request

    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digests = {name: hashlib.new(name) for name in expected}
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with _progress_bar(total, url, progress) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    for digest in digests.values():
                        digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            # http.client returns a short body without complaint when the server hangs up early
            if total is not None and received != total:
                raise ValueError(f"truncated: received {received} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        for name, digest in digests.items():
            if digest.hexdigest() != expected[name]:
                raise ValueError(
                    f"{name} mismatch: expected {expected[name]}, received {digest.hexdigest()}"
                )
        os.chmod(temp_name, 0o644)  # mkstemp makes the file private (0600)
        os.replace(temp_name, target)
    except BaseException:  # including KeyboardInterrupt: never leave the temporary file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _reason(error: BaseException) -> str:
    import urllib.error

    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"{type(error.reason).__name__}: {error.reason}"
    if isinstance(error, ValueError):
        return str(error)
    return f"{type(error).__name__}: {error}"


class _PlainProgress:
    """The fallback when tqdm is not installed: one line on stderr, nothing more."""

    def __init__(self, total: int | None, url: str):
        size = f" ({total / 2**20:.1f} MiB)" if total else ""
        print(f"Downloading {url}{size}", file=sys.stderr, flush=True)

    def update(self, count: int) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class _NoProgress(_PlainProgress):
    def __init__(self, total: int | None = None, url: str = ""):
        pass


def _progress_bar(total: int | None, url: str, enabled: bool):
    if not enabled:
        return _NoProgress()
    try:
        from tqdm import tqdm  # optional (the "download" extra)
    except ImportError:
        return _PlainProgress(total, url)
    name = url.rsplit("/", 1)[-1]
    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024)

"""Remote files (http(s)://, s3://, hf://, anything fsspec knows) read by byte ranges.

Opening a model reads a handful of small ranges (a zip's directory and data.pkl, a
safetensors header, an index, a DCP .metadata). They are fetched in BLOCK-sized
pieces, kept in memory for the open source and on disk under cache_dir(), keyed by
URL + size + ETag (or what the store gives instead), so a second open fetches nothing
but the object's info. Saving streams tensor bytes with read_uncached(): never cached.

A server that ignores Range (answers 200 with the whole body) is refused, never
downloaded silently: for http(s) the first fetch of a file larger than one block is
its last block, which fsspec refuses when the answer is not a range.
Credentials come from fsspec's usual places (environment, ~/.aws, HF_TOKEN) and are
never shown: messages name the URL without user info or query.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from tui.core.errors import ModelFileError, public
from tui.core.read.bytesource import ByteSource

BLOCK = 256 << 10
MAX_RUN = 64  # blocks fetched in one request at most
EXTRA = "pip install 'modeltree[remote]'"
# (bytes fetched so far, requests so far, URL) after every fetch; set by the CLI/app.
ProgressHook = Callable[[int, int, str], None]
_hook: ProgressHook | None = None
_sources: dict[str, RemoteSource] = {}
_infos: dict[str, dict] = {}  # info() answers of the current open (one request per object)
_pruned = False
_lock = threading.Lock()


class Stats:
    """Process-wide counters (tests and the benchmark read them)."""

    requests = 0
    fetched = 0  # bytes that came over the network
    cache_hits = 0  # blocks served from the disk cache


def set_progress(hook: ProgressHook | None) -> None:
    global _hook
    _hook = hook


def shown(url: str) -> str:
    """The URL without credentials or query (presigned signatures)."""
    return public(url)


def cache_dir() -> str:
    root = os.environ.get("MODELTREE_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "modeltree")
    return os.path.join(root, "ranges")


def cache_limit() -> int:
    """Bytes the cache may hold (MODELTREE_CACHE_MAX_MB, default 1024); oldest files go first."""
    try:
        return int(float(os.environ.get("MODELTREE_CACHE_MAX_MB", "1024")) * (1 << 20))
    except ValueError:
        return 1 << 30


def prune(limit: int | None = None) -> None:
    """Keep the cache under its limit, deleting the least recently written blocks."""
    limit = cache_limit() if limit is None else limit
    files = []
    for dirpath, _, names in os.walk(cache_dir()):
        for n in names:
            p = os.path.join(dirpath, n)
            try:
                st = os.stat(p)
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
    total = sum(f[1] for f in files)
    for _, nbytes, p in sorted(files):
        if total <= limit:
            break
        try:
            os.remove(p)
            total -= nbytes
        except OSError:
            pass


def clear_cache() -> int:
    """Delete every cached range; returns the bytes freed."""
    root = cache_dir()
    freed = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                freed += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    shutil.rmtree(root, ignore_errors=True)
    forget()
    return freed


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise ModelFileError(shown(url), f"opening URLs needs the optional remote support: {EXTRA}") from None
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:
        raise ModelFileError(shown(url), f"this kind of URL needs a package that is not installed "
                             f"({e.name or e}): {EXTRA}") from None
    except ValueError as e:
        raise ModelFileError(shown(url), f"unknown kind of URL ({_first(e)})") from None
    except Exception as e:  # noqa: BLE001 - any client failing to start (bad config, …)
        raise _error(url, e) from None


def _first(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0][:160]


def _error(url: str, e: BaseException) -> ModelFileError:
    """One clear line for whatever a storage client raised."""
    name = shown(url)
    cause = e
    while cause.__cause__ is not None and isinstance(cause, FileNotFoundError):
        cause = cause.__cause__  # fsspec's http info() wraps every failure in FileNotFoundError
    e = cause
    status = getattr(e, "status", None) or getattr(e, "code", None)
    resp = getattr(e, "response", None)
    if status is None and resp is not None:
        status = getattr(resp, "status_code", None)
        if status is None and isinstance(resp, dict):
            status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
    status = status if isinstance(status, int) else None
    text = _first(e).replace(url, name)
    if isinstance(e, FileNotFoundError) or status == 404:
        return ModelFileError(name, "not found (404)")
    if isinstance(e, PermissionError) or status in (401, 403):
        return ModelFileError(name, f"access denied ({status or 403}): check the credentials "
                              "(environment, ~/.aws, HF_TOKEN)")
    if "support range" in text:
        return ModelFileError(name, "the server does not support range requests: refused "
                              "(modeltree reads only the parts it needs; download the file first)")
    if status:
        return ModelFileError(name, f"the server answered {status}")
    return ModelFileError(name, f"network error ({type(e).__name__}: {text})")


def _info(fs: Any, path: str, url: str) -> dict:
    got = _infos.get(url)
    if got is not None:
        return got
    try:
        got = fs.info(path)
    except Exception as e:  # noqa: BLE001 - clients raise their own types
        raise _error(url, e) from None
    with _lock:
        _infos[url] = got
    return got


def remote_kind(url: str) -> tuple[str, int]:
    fs, path = _fs(url)
    if url.endswith("/"):
        return "dir", 0
    info = _info(fs, path, url)
    if info.get("type") == "directory":
        return "dir", 0
    return "file", int(info.get("size") or 0)


def remote_listdir(url: str) -> list[str]:
    fs, path = _fs(url)
    try:
        entries = fs.ls(path, detail=False)
    except Exception as e:  # noqa: BLE001
        raise _error(url, e) from None
    names = []
    for e in entries:
        name = str(e).rstrip("/").rsplit("/", 1)[-1]
        if name and not name.startswith("?") and name not in names:
            names.append(name)
    return names


def remote_source(url: str) -> RemoteSource:
    """The open source for a URL (one per URL per open: its info is fetched once)."""
    global _pruned
    with _lock:
        src = _sources.get(url)
    if not _pruned:
        _pruned = True
        prune()  # once per process, before this open adds to it
    if src is None:
        src = RemoteSource(url)
        with _lock:
            _sources[url] = src
    return src


def forget() -> None:
    """Drop the open sources (the next open asks each object's info again)."""
    with _lock:
        for s in _sources.values():
            s.close()
        _sources.clear()
        _infos.clear()


class RemoteSource(ByteSource):
    def __init__(self, url: str) -> None:
        self.url = url
        self.name = shown(url)
        self.fs, self.path = _fs(url)
        info = _info(self.fs, self.path, url)
        if info.get("type") == "directory":
            raise ModelFileError(self.name, "is a folder, not a file")
        self.size = int(info.get("size") or 0)
        tag = next((str(info[k]) for k in ("ETag", "etag", "blob_id", "sha", "Last-Modified",
                                            "LastModified", "mtime") if info.get(k)), "")
        key = hashlib.sha256(f"{url}\0{self.size}\0{tag}".encode()).hexdigest()[:40]
        self.dir = os.path.join(cache_dir(), key)
        self.blocks: dict[int, bytes] = {}
        self._file: Any = None
        self._probed = not url.startswith(("http://", "https://")) or self.size <= BLOCK

    # -- fetching ----------------------------------------------------------------
    def _open(self) -> Any:
        if self._file is None:
            try:
                # cache_type "none": every _fetch_range is one request for exactly that range
                # (block_size 0 would make fsspec's http a streaming GET of the whole body).
                self._file = self.fs.open(self.path, "rb", block_size=BLOCK, cache_type="none",
                                          size=self.size)
            except TypeError:  # a filesystem without a size argument
                self._file = self.fs.open(self.path, "rb", block_size=BLOCK, cache_type="none")
            except Exception as e:  # noqa: BLE001
                raise _error(self.url, e) from None
        return self._file

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes [start, end) over the network, checked to be exactly that range."""
        if not self._probed:
            # A server that ignores Range answers the whole body: ask for a range that
            # does not start at 0 first, which fsspec refuses unless the answer is one.
            self._probed = True
            last = (self.size - 1) // BLOCK
            if not start <= last * BLOCK < end:
                self._store(last, self._fetch(last * BLOCK, self.size))
        f = self._open()
        try:
            data = f._fetch_range(start, end)
        except Exception as e:  # noqa: BLE001
            raise _error(self.url, e) from None
        Stats.requests += 1
        Stats.fetched += len(data)
        if len(data) != end - start:
            raise ModelFileError(self.name, f"the server sent {len(data)} bytes for a range of "
                                 f"{end - start}: it does not support range requests")
        if _hook is not None:
            _hook(Stats.fetched, Stats.requests, self.name)
        return data

    def _cached(self, i: int) -> bytes | None:
        try:
            with open(os.path.join(self.dir, str(i)), "rb") as f:
                data = f.read()
        except OSError:
            return None
        want = min(BLOCK, self.size - i * BLOCK)
        if len(data) != want:
            return None
        Stats.cache_hits += 1
        return data

    def _store(self, i: int, data: bytes) -> None:
        self.blocks[i] = data
        try:  # the disk cache is best effort: a read-only home still opens files
            os.makedirs(self.dir, exist_ok=True)
            tmp = os.path.join(self.dir, f".{i}.{os.getpid()}.{threading.get_ident()}")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(self.dir, str(i)))
        except OSError:
            pass

    def _block(self, i: int) -> bytes:
        return self.blocks[i]

    def read_at(self, offset: int, n: int) -> bytes:
        end = min(offset + max(n, 0), self.size)
        if end <= offset:
            return b""
        first, last = offset // BLOCK, (end - 1) // BLOCK
        missing = []
        for i in range(first, last + 1):
            if i not in self.blocks:
                got = self._cached(i)
                if got is None:
                    missing.append(i)
                else:
                    self.blocks[i] = got
        while missing:  # consecutive missing blocks: one request
            run = [missing.pop(0)]
            while missing and missing[0] == run[-1] + 1 and len(run) < MAX_RUN:
                run.append(missing.pop(0))
            data = self._fetch(run[0] * BLOCK, min((run[-1] + 1) * BLOCK, self.size))
            for j, i in enumerate(run):
                if i not in self.blocks:
                    self._store(i, data[j * BLOCK:(j + 1) * BLOCK])
        if first == last:
            b = self.blocks[first]
            return b[offset - first * BLOCK:end - first * BLOCK]
        out = b"".join(self.blocks[i] for i in range(first, last + 1))
        return out[offset - first * BLOCK:end - first * BLOCK]

    def read_uncached(self, offset: int, n: int) -> bytes:
        """A large range for saving: straight from the network, not kept."""
        end = min(offset + n, self.size)
        if end <= offset:
            return b""
        if end - offset <= BLOCK or all(i in self.blocks for i in range(offset // BLOCK, (end - 1) // BLOCK + 1)):
            return self.read_at(offset, end - offset)
        return self._fetch(offset, end)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._file = None


class StderrProgress:
    """'fetched …' on stderr once remote reads have taken more than `after` seconds."""

    def __init__(self, stream: Any, after: float = 1.0) -> None:
        self.stream, self.after = stream, after
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, nbytes: int, requests: int, name: str) -> None:
        now = time.monotonic()
        if now - self.start < self.after or now - self.last < 1.0:
            return
        from tui.core.human import size

        self.last = now
        self.stream.write(f"modeltree: fetched {size(nbytes)} in {requests} requests from {name}\n")
        self.stream.flush()

"""Remote open vs downloading the whole file, from the same loopback HTTP server.

Used by run.py (`--only remote`): a torch.save zip of `size` bytes (zeros: cheap to
write) is served on 127.0.0.1 with Range support; modeltree --json on its URL runs in a
fresh process with an empty cache, then again with the cache warm, and a plain download
of the whole file (urllib, into a temp file) is timed for comparison.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from remote_support import HTTPFiles  # noqa: E402 - the tests' loopback server

PY = sys.executable


def make_file(folder: str, nbytes: int) -> str:
    path = os.path.join(folder, "remote_big.pth")
    code = ("import sys, torch; torch.save({'w': torch.zeros(int(sys.argv[2]) // 4), "
            "'b': torch.zeros(10)}, sys.argv[1])")
    subprocess.run([PY, "-c", code, path, str(nbytes)], check=True, cwd=ROOT)
    return path


def measure(folder: str, modeltree: list[str], nbytes: int = 1 << 30) -> dict:
    path = make_file(folder, nbytes)
    size = os.path.getsize(path)
    out: dict = {"size": size}
    try:
        with HTTPFiles(folder) as server, tempfile.TemporaryDirectory() as cache:
            url = server.url(os.path.basename(path))
            env = dict(os.environ, MODELTREE_CACHE_DIR=cache)
            for label in ("cold", "warm"):
                server.counter.reset()
                t0 = time.perf_counter()
                subprocess.run(modeltree + [url, "--json"], check=True, cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL)
                out[label] = (time.perf_counter() - t0, server.counter.body_bytes,
                              len(server.counter.requests))
            server.counter.reset()
            with tempfile.NamedTemporaryFile(dir=folder) as tmp:
                t0 = time.perf_counter()
                subprocess.run([PY, "-c", "import sys, urllib.request as u; "
                                "u.urlretrieve(sys.argv[1], sys.argv[2])", url, tmp.name],
                               check=True)
                out["download"] = (time.perf_counter() - t0, server.counter.body_bytes, 1)
    finally:
        os.remove(path)
    return out

"""Loopback servers for remote-file tests: an HTTP server with Range support that counts
what it sends (and a mode that ignores Range), and moto's S3 server. Not a test file.
"""

from __future__ import annotations

import html
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Range header)
        self.body_bytes = 0

    def gets(self) -> list[tuple[str, str, str]]:
        return [r for r in self.requests if r[0] == "GET"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path
    counter: Counter
    ranges = True

    def log_message(self, *args) -> None:  # quiet
        pass

    def _target(self) -> Path | None:
        rel = self.path.split("?", 1)[0].lstrip("/")
        p = (self.root / rel).resolve()
        return p if str(p).startswith(str(self.root.resolve())) and p.exists() else None

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        with self.counter.lock:
            self.counter.requests.append((self.command, self.path, self.headers.get("Range", "")))
        if self.path.startswith("/forbidden/"):
            return self._status(403)
        p = self._target()
        if p is None:
            return self._status(404)
        if p.is_dir():
            names = sorted(os.listdir(p))
            page = "".join(f'<a href="{html.escape(n)}">{html.escape(n)}</a>\n' for n in names)
            data = f"<html><body>{page}</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self._send(data)
            return
        size = p.stat().st_size
        start, end, status = 0, size, 200
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m and self.ranges:
            start = int(m.group(1))
            end = min(int(m.group(2)) + 1, size) if m.group(2) else size
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", f'"{size}-{p.stat().st_mtime_ns}"')
        if self.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if not body:
            return
        with open(p, "rb") as f:
            f.seek(start)
            left = end - start
            while left > 0:
                data = f.read(min(left, 1 << 16))
                if not data or not self._send(data):
                    break
                left -= len(data)

    def _send(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
        except OSError:  # the client hung up (a refused download)
            self.close_connection = True
            return False
        with self.counter.lock:
            self.counter.body_bytes += len(data)
        return True

    def _status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


class HTTPFiles:
    """Serve `root` on 127.0.0.1 in a thread: `with HTTPFiles(root) as s: s.url("a.pth")`."""

    def __init__(self, root: Path, ranges: bool = True) -> None:
        self.counter = Counter()
        handler = type("Handler", (_Handler,), {"root": Path(root), "counter": self.counter,
                                                "ranges": ranges})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, rel: str = "") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{rel}"

    def __enter__(self) -> HTTPFiles:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's S3 on 127.0.0.1, reached through the usual environment variables."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_EC2_METADATA_DISABLED": "true"}

    def upload(self, bucket: str, folder: Path, prefix: str = "") -> None:
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                key = prefix + str(p.relative_to(folder))
                s3.upload_file(str(p), bucket, key)

    def __enter__(self) -> S3Server:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

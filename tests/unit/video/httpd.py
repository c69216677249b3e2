"""A real HTTP file server on 127.0.0.1 for remote-source tests and bench/remote.py.

Serves in-memory files with ``Range`` support (206, ``Content-Range``, ``Accept-Ranges``,
``ETag``, ``Last-Modified``), counts requests and body bytes sent, and can be told to
ignore ranges, answer one status to everything, require Basic auth, or die mid-way.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["RangeServer"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _File:
    def __init__(self, data: bytes, mtime: float, etag: bool) -> None:
        self.data = data
        self.last_modified = email.utils.formatdate(mtime, usegmt=True)
        self.etag = f'"{hashlib.sha1(data).hexdigest()[:20]}"' if etag else ""


class RangeServer(ThreadingHTTPServer):
    """``with RangeServer() as srv: srv.put("v.mp4", data); url = srv.url("v.mp4")``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, _File] = {}
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes_sent = 0
        self.ranges: list[str] = []
        self.ignore_ranges = False
        self.status: int | None = None  # answer every request with this status
        self.auth: tuple[str, str] | None = None
        self.die_after_bytes: int | None = None  # then cut the response and stop listening
        self.dead = False
        self._thread: threading.Thread | None = None

    def put(self, name: str, data: bytes, *, etag: bool = True, mtime: float | None = None) -> None:
        """Serve ``data`` at ``/name`` (replacing what was there)."""
        self.files[name] = _File(data, time.time() if mtime is None else mtime, etag)

    def url(self, name: str, auth: str = "", query: str = "") -> str:
        host, port = self.server_address[:2]
        return f"http://{auth}{host!s}:{port}/{name}{query}"

    def reset_counts(self) -> None:
        with self.lock:
            self.requests, self.bytes_sent, self.ranges = 0, 0, []

    def __enter__(self) -> RangeServer:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up (a test's point, often) are not errors worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop serving and close the listening socket (new connections are refused)."""
        if not self.dead:
            self.dead = True
            self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RangeServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        if srv.dead:
            self.close_connection = True
            return
        with srv.lock:
            srv.requests += 1
            srv.ranges.append(self.headers.get("Range") or "")
        if srv.status is not None:
            return self._plain(srv.status)
        if srv.auth is not None and not self._authorised(srv.auth):
            return self._plain(401)
        f = srv.files.get(self.path.lstrip("/").split("?")[0])
        if f is None:
            return self._plain(404)
        start, end, status = 0, len(f.data) - 1, 200
        m = _RANGE.match(self.headers.get("Range") or "")
        if m and not srv.ignore_ranges:
            start, end, status = self._range(m, len(f.data))
            if status == 416:
                return self._plain(416, {"Content-Range": f"bytes */{len(f.data)}"})
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(end - start + 1))
        if not srv.ignore_ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(f.data)}")
        if f.etag:
            self.send_header("ETag", f.etag)
        self.send_header("Last-Modified", f.last_modified)
        self.end_headers()
        self._body(f.data[start : end + 1])

    def _range(self, m: re.Match[str], size: int) -> tuple[int, int, int]:
        a, b = m.group(1), m.group(2)
        if not a:  # suffix range: the last b bytes
            return max(0, size - int(b)), size - 1, 206
        start, end = int(a), min(size - 1, int(b) if b else size - 1)
        return (start, end, 206) if start < size else (0, 0, 416)

    def _authorised(self, auth: tuple[str, str]) -> bool:
        want = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        return self.headers.get("Authorization") == want

    def _plain(self, status: int, headers: dict[str, str] | None = None) -> None:
        body = f"{status}\n".encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self, data: bytes) -> None:
        """Send ``data`` in 64 KiB pieces, counting what the socket took (an upper bound)."""
        srv = self.server
        for k in range(0, len(data), 1 << 16):
            piece = data[k : k + (1 << 16)]
            with srv.lock:
                room = None if srv.die_after_bytes is None else srv.die_after_bytes - srv.bytes_sent
                cut = room is not None and room < len(piece)
                if cut:
                    piece = piece[: max(0, room or 0)]
                srv.bytes_sent += len(piece)
            try:
                self.wfile.write(piece)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):  # the client closed early: fine
                self.close_connection = True
                return
            if cut:
                self.close_connection = True
                threading.Thread(target=srv.stop, daemon=True).start()
                return

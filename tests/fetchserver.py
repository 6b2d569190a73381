"""A loopback HTTP server serving real photos from ../shared/data, with the faults product
feeds meet: 404, a 500 then a success, a slow response, a truncated body, HTML instead of an
image, bytes that are no image, a 50 MB body, a redirect loop, an endless redirect chain, and
one image under two URLs. Counts requests per path."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """The client hanging up (timeouts, size limits) is expected here; print nothing."""


class FaultServer:
    def __init__(self, photos: list[Path], *, slow_s: float = 3.0) -> None:
        self.photos = {p.name: p.read_bytes() for p in photos}
        self.hits: Counter[str] = Counter()
        self.slow_s = slow_s
        self.delay_s = 0.0  # added before every /img/ response (to kill a fetch midway)
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0  # /img/ requests being answered at once
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str = "image/jpeg", **headers: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path
                with server.lock:
                    server.hits[path] += 1
                    n = server.hits[path]
                first = next(iter(server.photos.values()))
                kind, _, name = path.strip("/").partition("/")
                if kind in ("img", "alias"):
                    with server.lock:
                        server.in_flight += 1
                        server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    try:
                        time.sleep(server.delay_s)
                        self._send(200, server.photos[name])
                    finally:
                        with server.lock:
                            server.in_flight -= 1
                elif kind == "missing":
                    self._send(404, b"not found", "text/plain")
                elif kind == "flaky":
                    self._send(500, b"oops", "text/plain") if n == 1 else self._send(200, first)
                elif kind == "slow":
                    time.sleep(server.slow_s)
                    self._send(200, first)
                elif kind == "truncated":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(first)))
                    self.end_headers()
                    self.wfile.write(first[: len(first) // 3])
                    self.close_connection = True
                elif kind == "garbage":
                    self._send(200, b"\x00\x01 not a jpeg" * 100)
                elif kind == "html":
                    self._send(200, b"<html><body>Product not found</body></html>", "text/html; charset=utf-8")
                elif kind == "huge":  # 50 MB, no Content-Length: only the reader can stop it
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    chunk = b"\xff" * (1 << 20)
                    try:
                        for _ in range(50):
                            self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                elif kind == "loop":
                    self._send(302, b"", "text/plain", Location=f"/loop/{'b' if name == 'a' else 'a'}")
                elif kind == "chain":  # endless, never repeating
                    self._send(302, b"", "text/plain", Location=f"/chain/{int(name) + 1}")
                elif kind == "redirect":
                    self._send(301, b"", "text/plain", Location=f"/img/{name}")
                else:
                    self._send(404, b"", "text/plain")

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""A forwarding HTTP proxy in front of an instance, for the tests that watch or break what
passes between two instances."""

from __future__ import annotations

import http.server
import time
import urllib.error
import urllib.request


class Proxy(http.server.ThreadingHTTPServer):
    """Forwards every request to target and its answer back. A subclass sees each request
    before it goes (before) and decides whether its answer comes back (answer)."""

    def __init__(self, target: str) -> None:
        self.target = target
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                began = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.before(self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                req = urllib.request.Request(
                    proxy.target + self.path, data=body, method=self.command, headers=headers
                )
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        status, data = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    with exc:  # its connection closed now, not by the garbage collector
                        status, data = exc.code, exc.read()
                if not proxy.answer(self.path, body, began):
                    self.close_connection = True  # done upstream; the answer is lost
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        super().__init__(("127.0.0.1", 0), Handler)

    def before(self, path: str) -> None:
        """Called before a request is forwarded."""

    def answer(self, path: str, body: bytes | None, began: float) -> bool:
        """Whether the answer to a request (forwarded at `began`) goes back to the sender."""
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

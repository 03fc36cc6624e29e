"""A small real HTTP proxy in front of an S3 server that misbehaves on demand (tests)."""

from __future__ import annotations

import threading
from collections import Counter
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class S3Proxy(ThreadingHTTPServer):
    """Forwards every request to ``upstream`` unchanged (the SigV4 signature stays valid);
    ``fault(method, key, headers, n)`` (called under a lock) may return an action for the
    ``n``-th ``method`` request of object ``key`` (``hits[method, key]`` counts them):
    ``("cut", nbytes)``: send the upstream headers, then only ``nbytes`` of the body and close;
    ``("short", nbytes)``: a consistent 206 answer of only the first ``nbytes`` asked for;
    ``("deny",)``: 403 AccessDenied; ``("after", fn)``: read the upstream answer, call ``fn()``,
    then send that answer (the client sees nothing of it before ``fn()`` has run)."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.fault = lambda method, key, headers, n: None
        self.hits: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, length: int) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        proxy: S3Proxy = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = unquote(self.path.partition("?")[0]).lstrip("/")
        key = path.partition("/")[2]
        action = None
        if key:
            with proxy.lock:
                proxy.hits[self.command, key] += 1
                n = proxy.hits[self.command, key]
                action = proxy.fault(self.command, key, self.headers, n)
        if action is not None and action[0] == "deny":
            err = b"<Error><Code>AccessDenied</Code><Message>denied by the proxy</Message></Error>"
            self._send(403, [("Content-Type", "application/xml")], err, len(err))
            return
        conn = HTTPConnection(proxy.upstream, timeout=60)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        headers = resp.getheaders()
        if action is None:
            self._send(resp.status, headers, data, len(data))
        elif action[0] == "after":
            action[1]()
            self._send(resp.status, headers, data, len(data))
        elif action[0] == "cut":
            self._send(resp.status, headers, data[: action[1]], len(data))
            self.close_connection = True
            self.connection.shutdown(2)
        elif action[0] == "short":
            start, _, total = dict((k.lower(), v) for k, v in headers)["content-range"][
                6:
            ].partition("-")
            first = int(start)
            cut = data[: action[1]]
            rng = f"bytes {first}-{first + len(cut) - 1}/{total.partition('/')[2]}"
            kept = [(k, v) for k, v in headers if k.lower() != "content-range"]
            self._send(resp.status, [*kept, ("Content-Range", rng)], cut, len(cut))

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

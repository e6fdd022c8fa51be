"""A real HTTP proxy in front of the real Elasticsearch that injects faults on ``_bulk``.

Used to prove the index stage's retry paths without stopping the shared Elasticsearch:
request-level 429/503 answers, item-level 429s rewritten into a real bulk response, and a
standing refusal (``FaultPlan.refusal``: what a secured cluster answers to an expired key or a
missing privilege) until the test lifts it.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultPlan:
    def __init__(self, request_errors: list[int], item_429_rounds: int) -> None:
        self.request_errors = list(request_errors)  # statuses answered to the next bulks
        self.item_429_rounds = item_429_rounds  # then this many bulks get item 0 -> 429
        self.bulk_calls = 0
        self.refused_while_down = 0
        self.down = False  # True: every _bulk connection is dropped without an answer
        # (status, JSON body, headers) answered to every _bulk while set; None = forward
        self.refusal: tuple[int, dict[str, Any], dict[str, str]] | None = None
        self.refused = 0  # _bulk requests answered with the refusal
        self.lock = threading.Lock()


def _handler(upstream: str, plan: FaultPlan) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # keep test output quiet
            pass

        def _forward(self, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
            req = urllib.request.Request(upstream + self.path, data=body, method=self.command)
            for key in ("Content-Type", "Accept"):
                if self.headers.get(key):
                    req.add_header(key, self.headers[key])
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, dict(resp.headers), resp.read()
            except urllib.error.HTTPError as err:
                return err.code, dict(err.headers), err.read()

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
            self.send_header("X-Elastic-Product", "Elasticsearch")
            for key, value in headers.items():
                if key.lower() == "www-authenticate":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if "_bulk" in self.path and plan.down:
                with plan.lock:
                    plan.refused_while_down += 1
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)  # like a node that just died
                return
            refusal = plan.refusal
            if "_bulk" in self.path and refusal is not None:
                with plan.lock:
                    plan.refused += 1
                status, payload, headers = refusal
                self._reply(status, headers, json.dumps(payload).encode())
                return
            if "_bulk" in self.path:
                with plan.lock:
                    plan.bulk_calls += 1
                    fault = plan.request_errors.pop(0) if plan.request_errors else None
                    item_fault = fault is None and plan.item_429_rounds > 0
                    if item_fault:
                        plan.item_429_rounds -= 1
                if fault is not None:
                    err = {"error": {"type": "injected", "reason": "fault proxy"}, "status": fault}
                    self._reply(fault, {}, json.dumps(err).encode())
                    return
                status, headers, payload = self._forward(body)
                if item_fault and status == 200:
                    data = json.loads(payload)
                    op = next(iter(data["items"][0]))
                    data["items"][0][op].update(
                        status=429,
                        error={"type": "es_rejected_execution_exception", "reason": "injected"},
                    )
                    data["errors"] = True
                    payload = json.dumps(data).encode()
                self._reply(status, headers, payload)
                return
            self._reply(*self._forward(body))

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler


@contextmanager
def fault_proxy(upstream: str, plan: FaultPlan) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream.rstrip("/"), plan))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

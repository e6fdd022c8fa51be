"""A real HTTP proxy in front of the real Elasticsearch that injects faults on ``_bulk``.

Used to prove the index stage's retry paths without stopping the shared Elasticsearch:
request-level 429/503 answers, item-level 429s rewritten into a real bulk response, and a
standing refusal (``FaultPlan.refusal``: what a secured cluster answers to an expired key or a
missing privilege) until the test lifts it, and a slow cluster (``FaultPlan.bulk_delay_s``: each
``_bulk`` is forwarded at once -- Elasticsearch applies it -- and answered that much later).
Every forwarded bulk's document ids are kept (``FaultPlan.bulk_ids``): what was written how often.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
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
        self.bulk_delay_s = 0.0  # answer each forwarded _bulk this much later (a slow cluster)
        self.bulk_ids: list[list[str]] = []  # the _id of each item, per forwarded _bulk
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
                with plan.lock:
                    plan.bulk_ids.append(_ids(body))
                status, headers, payload = self._forward(body)
                if plan.bulk_delay_s > 0:  # applied; the answer comes late (or never is read)
                    time.sleep(plan.bulk_delay_s)
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

        def handle(self) -> None:
            # The client may have given up waiting (a request timeout) before the answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                super().handle()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler


def _ids(body: bytes | None) -> list[str]:
    """The ``_id`` of each action line of an NDJSON bulk body."""
    ids = []
    for line in (body or b"").splitlines():
        action = json.loads(line) if line.strip() else None
        if isinstance(action, dict) and len(action) == 1:
            meta = next(iter(action.values()))
            if isinstance(meta, dict) and "_id" in meta:
                ids.append(str(meta["_id"]))
    return ids


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

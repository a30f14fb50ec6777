"""A small HTTP endpoint for processes that serve no web traffic (Celery workers).

Paths: ``/metrics`` (this process group's samples), ``/health/live``, ``/health/ready``
(per dependency, the same checks as the web readiness). It binds ``OPS_BIND_ADDRESS``
(default 127.0.0.1): expose it to the scraper's network only, never to the public.
"""

import json
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from shop.observability import metrics


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # scrapes every few seconds would flood the log
        pass


def _json(start_response, status: str, body: dict):
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def make_app(*, include_shared_state: bool):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            payload, content_type = metrics.render(include_shared_state=include_shared_state)
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
            return [payload]
        if path == "/health/live":
            return _json(start_response, "200 OK", {"status": "alive"})
        if path == "/health/ready":
            from django.db import connections

            from shop.health.checks import readiness

            try:
                healthy, checks = readiness(broker_required=True)
            finally:
                connections.close_all()  # this thread's connections only; never shared with the pool
            status = "200 OK" if healthy else "503 Service Unavailable"
            return _json(start_response, status, {"status": "ready" if healthy else "unready", "checks": checks})
        return _json(start_response, "404 Not Found", {"status": "not found"})

    return app


def start(port: int, *, include_shared_state: bool) -> _Server:
    import os

    address = os.environ.get("OPS_BIND_ADDRESS", "127.0.0.1")
    server = make_server(address, port, make_app(include_shared_state=include_shared_state), _Server, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="shop-ops-server", daemon=True).start()
    return server

"""Reach a Provet stand-in served by this very process (the sandbox), through the full WSGI stack.

Only the tests and the demo set-up use this: there the sandbox runs inside PayLinks, and the
client still speaks real HTTP requests and answers to it, just without a socket.
"""

import threading
from contextlib import contextmanager

import httpx
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import translation

_lock = threading.Lock()
_inside = 0


@contextmanager
def _connections_kept_open():
    # As Django's test client does: a request served inside a test's transaction must not
    # close the database connection that transaction lives on. Counted, because several
    # threads (two pollers in a test) may be inside at once.
    global _inside
    with _lock:
        if not _inside:
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if not _inside:
                request_started.connect(close_old_connections)
                request_finished.connect(close_old_connections)


class InProcessTransport(httpx.BaseTransport):
    def __init__(self) -> None:
        self._wsgi = httpx.WSGITransport(app=WSGIHandler())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # The request served here activates a language of its own; the caller keeps its own,
        # as it would across a socket (else a Finnish desk's words could pass for English).
        with _connections_kept_open(), translation.override(translation.get_language()):
            try:
                response = self._wsgi.handle_request(request)
                response.read()
                response.close()
            except ConnectionError as exc:
                # The server hung up after doing the work: a socket would have shown the
                # client exactly this.
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                ) from exc
        return response


def wsgi_transport() -> InProcessTransport:
    return InProcessTransport()

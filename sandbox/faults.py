"""Injected faults: slow, failing, throttled, hanging, or "commit then drop the connection"."""

import contextlib
import re
import socket
import time
from collections.abc import Iterator

from django.db.models import F
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from sandbox import responses
from sandbox.models import Fault, Installation


class ConnectionDropped(ConnectionError):
    """The request was processed and committed, then the connection was dropped unanswered.

    Raised only when there is no socket to cut (an in-process WSGI transport or the Django test
    client): it comes out of the response body, after the commit, as a dropped connection would.
    """


def take(installation: Installation, request: HttpRequest) -> Fault | None:
    """The first fault that matches this request, spending one of its uses."""
    for fault in installation.faults.order_by("id"):
        if fault.method and fault.method.upper() != request.method:
            continue
        if not re.search(fault.path, request.path):
            continue
        if fault.remaining is None:
            return fault
        spent = Fault.objects.filter(pk=fault.pk, remaining__gt=0).update(
            remaining=F("remaining") - 1
        )
        if spent:
            Fault.objects.filter(pk=fault.pk, remaining=0).delete()
            return fault
    return None


def before(fault: Fault) -> HttpResponse | None:
    """Apply a fault before the request is processed; a response here replaces the real one."""
    if fault.kind == Fault.Kind.LATENCY:
        time.sleep(fault.latency_ms / 1000)
    elif fault.kind == Fault.Kind.TIMEOUT:
        time.sleep(fault.seconds)
    elif fault.kind == Fault.Kind.ERROR_500:
        return HttpResponse("<h1>Server Error (500)</h1>", status=500)
    elif fault.kind == Fault.Kind.ERROR_503:
        return HttpResponse("<h1>503 Service Unavailable</h1>", status=503)
    elif fault.kind == Fault.Kind.ERROR_429:
        return responses.detail(
            429,
            f"Request was throttled. Expected available in {fault.retry_after} seconds.",
            Retry_After=str(fault.retry_after),
        )
    return None


def drop(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The request is done and committed; now make sure its answer never arrives."""
    sock = client_socket(request)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return response
    return StreamingHttpResponse(_dropped(), status=response.status_code)


def _dropped() -> Iterator[bytes]:
    raise ConnectionDropped("The sandbox dropped the connection after committing the request.")
    yield b""  # pragma: no cover (makes this a generator)


def client_socket(request: HttpRequest) -> socket.socket | None:
    """The client's socket under a dev server's wsgi.input, when there is one.

    Django's basehttp wraps the socket file in a LimitedStream whose `_read` is the bound
    `read` of a BufferedReader, whose `raw` is a SocketIO holding `_sock`.
    """
    stream: object = request.META.get("wsgi.input")
    for _ in range(6):
        if isinstance(stream, socket.socket):
            return stream
        inner = getattr(stream, "_sock", None)
        if isinstance(inner, socket.socket):
            return inner
        if getattr(stream, "raw", None) is not None:
            stream = stream.raw  # type: ignore[attr-defined]
            continue
        owner = getattr(getattr(stream, "_read", None), "__self__", None)
        if owner is None:
            return None
        stream = owner
    return None

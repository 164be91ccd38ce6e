"""Reach a Provet stand-in served by this very process (the sandbox), through the full WSGI stack.

Only the tests and the demo set-up use this: there the sandbox runs inside PayLinks, and the
client still speaks real HTTP requests and answers to it, just without a socket.
"""

import httpx
from django.core.handlers.wsgi import WSGIHandler


def wsgi_transport() -> httpx.WSGITransport:
    return httpx.WSGITransport(app=WSGIHandler())

"""Idempotency-Key, the way Stripe defines it.

A request that makes or changes something may carry `Idempotency-Key: <up to 255 characters>`
(making a link must). For 24 hours, per API key or person:

- the same key with the same request (method, path and body) gets the first answer again,
  status included, with `Idempotent-Replayed: true`, and nothing is done again;
- the same key with another request gets 422;
- while the first request with a key is still running, the others get 409 (and Retry-After);
  so concurrent requests with one key make one POST to Provet.

The guard is a row per (caller, key) with a unique constraint, inserted in a transaction of its
own before the request does anything: a second request with the key can't insert it. The answer
is stored on the row when the request ends.

A refusal before anything was done (invalid fields, nothing there, Provet busy: see
`Problem.spends_key`) deletes the row, so the key can be sent again with a corrected request.
A request that dies half-way (its process crashed) leaves its row running; after STALE_AFTER
the next request with the key takes it over, with the same link key, so the link the dead
request made is found (paylinks.create.made_with) instead of being made twice.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from clinics.provet import ProvetError
from paylinks.api.auth import caller
from paylinks.api.errors import Problem, problem_response, provet_problem
from paylinks.api.models import IdempotencyRecord
from paylinks.forms import new_form_token

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
KEPT_FOR = dt.timedelta(hours=24)
# Longer than any request takes: Provet's timeouts, a cancel and a create in a row.
STALE_AFTER = dt.timedelta(minutes=5)
# Answer headers that are part of the answer and so come back with it.
KEPT_HEADERS = ("Location", "Retry-After")


def idempotent(
    request: Request, work: Callable[[str], Response], *, required: bool = False
) -> Response:
    """Run `work(link_key)` at most once per Idempotency-Key; answer as the first run did."""
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise Problem(
                "idempotency-key-missing",
                _(
                    "Send an %(header)s header (any unique text of up to %(max)s characters, "
                    "e.g. a UUID), so that sending the request again can't make a second link."
                )
                % {"header": HEADER, "max": MAX_LENGTH},
            )
        return work(new_form_token())
    if not key or len(key) > MAX_LENGTH or not key.isprintable() or not key.isascii():
        raise Problem(
            "idempotency-key-invalid",
            _("An %(header)s is 1 to %(max)s printable ASCII characters.")
            % {"header": HEADER, "max": MAX_LENGTH},
        )
    claimed = claim(caller(request), key, request)
    if isinstance(claimed, Response):
        return claimed
    try:
        response = work(claimed.link_key)
    except REFUSALS as error:
        problem = provet_problem(error) if isinstance(error, ProvetError) else error
        if not (isinstance(problem, Problem) and problem.spends_key):
            _release(claimed)  # refused before anything was done: the key stays unused
            raise
        response = problem_response(problem)
    # Anything else (a bug, a crash) leaves the row running, as a process that died would:
    # after STALE_AFTER a retry takes it over.
    _store(claimed, response)
    return response


# What a request is answered with when it is refused (the rest is a 500).
REFUSALS = (APIException, Http404, PermissionDenied, ProvetError)


def fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    text = f"{request.method} {request.get_full_path()}\n{body}"
    return hashlib.sha256(text.encode()).hexdigest()


def claim(scope: str, key: str, request: Request) -> IdempotencyRecord | Response:
    """The key's row, now this request's to run; or the answer when it isn't (a replay).

    Raises Problem: 422 for another request's key, 409 while the key's request runs."""
    now = timezone.now()
    printed = fingerprint(request)
    IdempotencyRecord.objects.filter(scope=scope, created_at__lte=now - KEPT_FOR).delete()
    for _attempt in range(3):
        record = IdempotencyRecord(
            scope=scope,
            key=key,
            fingerprint=printed,
            method=request.method or "",
            path=request.get_full_path()[:500],
            link_key=new_form_token(),
            created_at=now,
            locked_at=now,
        )
        if insert(record):
            return record
        existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if existing is None:
            continue  # its request was refused meanwhile and let the key go
        if existing.created_at <= now - KEPT_FOR:
            existing.delete()
            continue
        if existing.fingerprint != printed:
            raise Problem(
                "idempotency-key-reused",
                _(
                    "This %(header)s was used for %(method)s %(path)s with another body. Use a "
                    "new key for a new request."
                )
                % {"header": HEADER, "method": existing.method, "path": existing.path},
            )
        if existing.state == IdempotencyRecord.State.DONE:
            return _replay(existing)
        if existing.locked_at <= now - STALE_AFTER and _take_over(existing, now):
            return existing
        raise Problem(
            "idempotency-key-in-use",
            _(
                "The first request with this %(header)s is still running. Send it again in a "
                "moment to get its answer."
            )
            % {"header": HEADER},
            headers={"Retry-After": "1"},
        )
    raise Problem(
        "idempotency-key-in-use",
        _("Requests with this %(header)s keep racing: send it again in a moment.")
        % {"header": HEADER},
        headers={"Retry-After": "1"},
    )


def insert(record: IdempotencyRecord) -> bool:
    """The guard: whether this request's row went in, in a transaction of its own, before the
    request does anything. A concurrent request with the same key hits the constraint."""
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def _take_over(record: IdempotencyRecord, now: dt.datetime) -> bool:
    """The request running with this key died: whoever's conditional update lands runs it."""
    taken = IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.State.RUNNING, locked_at=record.locked_at
    ).update(locked_at=now)
    record.locked_at = now
    return bool(taken)


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, locked_at=record.locked_at).delete()


def _store(record: IdempotencyRecord, response: Response) -> None:
    body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    headers["Content-Type"] = response.content_type or "application/json"
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.DONE,
        response_status=response.status_code,
        response_body=body,
        response_headers=headers,
    )


def _replay(record: IdempotencyRecord) -> Response:
    headers = dict(record.response_headers)
    content_type = headers.pop("Content-Type", "application/json")
    return Response(
        record.response_body,
        status=record.response_status,
        headers={**headers, "Idempotent-Replayed": "true"},
        content_type=content_type,
    )

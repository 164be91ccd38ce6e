"""The one door to Provet Cloud's REST API. Nothing else in PayLinks imports httpx.

Every request carries `User-Agent: PayLinks/<version>` and a fresh `X-Correlation-Id`, and is
logged with its method, path, status, duration and correlation id; never a secret, never a query
string (it can hold a client's name or email). GETs are retried on connection errors, 5xx and 429
with bounded backoff that honours Retry-After; POST and DELETE never are, because Provet may have
acted on a request whose answer was lost.

Requests go only to the practice's own installation: its token endpoint, and its API on the same
scheme, host and port and under its API path (one Provet host serves many installations). An
address elsewhere in an answer (`next`, a postransaction URL) is refused before anything is sent,
so the credentials never leave.
"""

import datetime as dt
import email.utils
import functools
import logging
import math
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import certifi
import httpx
from django.conf import settings
from django.utils import timezone

from clinics.provet.auth import OAUTH2, Connection, tokens
from clinics.provet.errors import (
    ProvetAuthError,
    ProvetError,
    ProvetForeignURL,
    ProvetNotFound,
    ProvetPermissionError,
    ProvetRateLimited,
    ProvetUnavailable,
    ProvetValidationError,
)
from clinics.provet.types import (
    Client,
    Department,
    Invoice,
    Page,
    PhoneNumber,
    PosTransaction,
    User,
)

logger = logging.getLogger("clinics.provet")

T = TypeVar("T")

GET_ATTEMPTS = 3
BACKOFF_BASE = 0.5  # seconds; doubles on every attempt
# A Retry-After longer than this is not waited out inside a request: the caller is told instead
# (the poller pauses the practice, a person sees "Provet is busy, try again in a minute").
MAX_RETRY_WAIT = 10.0
# What a 429 without a readable Retry-After is taken to ask for.
DEFAULT_RETRY_AFTER = 60.0
DEFAULT_PAGE_SIZE = 50


class Budget(Protocol):
    """A practice's shared request budget (clinics/budget.py)."""

    @property
    def background(self) -> bool: ...

    def spend(self) -> None: ...  # raises ProvetBudgetSpent: the request isn't sent

    def rate_limited(self, retry_after: float) -> None: ...


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client. httpx would build one per client,
    loading the CA bundle each time (about 30 ms): most of a poll pass's own time."""
    return ssl.create_default_context(cafile=certifi.where())


def default_transport() -> httpx.BaseTransport | None:
    """The transport of new clients: None is httpx's own. Tests route it to the sandbox."""
    return None


def format_filter_value(value: Any) -> str:
    """Provet's filter syntax: datetimes as `YYYY-MM-DD hh:mm+00:00`, lists as `[1,2,3]`."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M+00:00")
    if isinstance(value, list | tuple | set):
        return "[" + ",".join(str(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ProvetClient:
    def __init__(
        self,
        connection: Connection,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        sleep: Callable[[float], None] = time.sleep,
        budget: Budget | None = None,
    ):
        self.connection = connection
        self.budget = budget
        self._sleep = sleep
        self._http = httpx.Client(
            transport=transport or default_transport(),
            verify=tls_context(),
            timeout=timeout
            or httpx.Timeout(settings.PROVET_READ_TIMEOUT, connect=settings.PROVET_CONNECT_TIMEOUT),
            headers={
                "User-Agent": f"PayLinks/{settings.VERSION}",
                "Accept": "application/json",
            },
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ProvetClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Resources -------------------------------------------------------------------------------

    def url_for(self, resource: str, object_id: int) -> str:
        """The absolute URL by which Provet refers to an object, e.g. in a POST body."""
        return f"{self.connection.api_base}{resource}/{object_id}/"

    def list_departments(self) -> list[Department]:
        return list(self.iterate("department/", Department.from_json))

    def get_client(self, client_id: int) -> Client:
        return Client.from_json(self.get(f"client/{client_id}/"))

    def list_clients(self, filters: dict[str, Any], page_size: int = 20) -> Page[Client]:
        return self.page("client/", Client.from_json, filters, page_size=page_size)

    def list_phone_numbers(self, client_id: int) -> list[PhoneNumber]:
        return list(self.iterate("phonenumber/", PhoneNumber.from_json, {"client__is": client_id}))

    def get_user(self, user_id: int) -> User:
        return User.from_json(self.get(f"user/{user_id}/"))

    def get_invoice(self, invoice_id: int) -> Invoice:
        return Invoice.from_json(self.get(f"invoice/{invoice_id}/"))

    def list_invoices(self, filters: dict[str, Any], page_size: int = 20) -> Page[Invoice]:
        return self.page("invoice/", Invoice.from_json, filters, page_size=page_size)

    def get_postransaction(self, postransaction_id: int) -> PosTransaction:
        return PosTransaction.from_json(self.get(f"postransaction/{postransaction_id}/"))

    def get_postransaction_by_url(self, url: str) -> PosTransaction:
        return PosTransaction.from_json(self.get(url))

    def list_postransactions(
        self, filters: dict[str, Any] | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Page[PosTransaction]:
        return self.page("postransaction/", PosTransaction.from_json, filters, page_size)

    def create_postransaction(self, body: dict[str, Any]) -> PosTransaction:
        """POST once. A ProvetUnavailable with `request_sent` means the outcome is unknown."""
        response = self._request("POST", "postransaction/", json=_jsonable(body), retry=False)
        try:
            return PosTransaction.from_json(_read_json(response))
        except (KeyError, TypeError, ValueError) as error:
            # Provet said yes but the answer can't be read: as unknown as a lost answer.
            raise ProvetUnavailable(
                "Provet Cloud's answer could not be read", status=response.status_code
            ) from error

    def delete_postransaction(self, postransaction_id: int) -> None:
        self._request("DELETE", f"postransaction/{postransaction_id}/", retry=False)

    # Generic ---------------------------------------------------------------------------------

    def get(self, path_or_url: str, params: dict[str, Any] | None = None) -> Any:
        response = self._request("GET", path_or_url, params=params, retry=True)
        return _read_json(response)

    def page(
        self,
        path: str,
        parse: Callable[[dict], T],
        filters: dict[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page: int = 1,
    ) -> Page[T]:
        params = {key: format_filter_value(value) for key, value in (filters or {}).items()}
        params.update(page=str(page), page_size=str(page_size))
        return self._parse_page(self.get(path, params), parse)

    def iterate(
        self,
        path: str,
        parse: Callable[[dict], T],
        filters: dict[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[T]:
        """Every object of a list, following `next` from page to page."""
        current = self.page(path, parse, filters, page_size)
        yield from current.results
        while current.next:
            current = self._parse_page(self.get(current.next), parse)
            yield from current.results

    @staticmethod
    def _parse_page(data: dict, parse: Callable[[dict], T]) -> Page[T]:
        return Page(
            count=int(data.get("count", 0)),
            num_pages=int(data.get("num_pages", 1)),
            next=data.get("next"),
            previous=data.get("previous"),
            results=[parse(item) for item in data.get("results", [])],
        )

    # Transport -------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        retry: bool,
    ) -> httpx.Response:
        url = path_or_url
        if self.budget is not None and self.budget.background:
            # Background work asks again at its next turn: retrying here would hold a worker
            # through backoffs, and spend the budget on a Provet that is struggling.
            retry = False
        if not url.startswith(("http://", "https://")):
            url = self.connection.api_base + path_or_url.lstrip("/")
        attempt = 0
        refreshed_token = False
        while True:
            attempt += 1
            try:
                auth_header, token = self._authorization()
            except ProvetError as auth_error:
                auth_error.request_sent = False  # the request itself never left
                if retry and attempt < GET_ATTEMPTS and not auth_error.permanent:
                    self._sleep(BACKOFF_BASE * 2 ** (attempt - 1))
                    continue
                raise
            if self.budget is not None:
                self.budget.spend()
            try:
                response, correlation_id = self._send(
                    method, url, params=params, json=json, headers={"Authorization": auth_header}
                )
            except ProvetUnavailable:
                if retry and attempt < GET_ATTEMPTS:
                    self._sleep(BACKOFF_BASE * 2 ** (attempt - 1))
                    continue
                raise
            if (
                response.status_code == 401
                and self.connection.auth_scheme == OAUTH2
                and not refreshed_token
            ):
                # The token expired or was revoked: fetch a new one, once.
                tokens.forget(self.connection.cache_key, token)
                refreshed_token = True
                attempt -= 1
                continue
            if response.status_code < 400:
                return response
            error = _error_from(response, correlation_id)
            if isinstance(error, ProvetRateLimited) and self.budget is not None:
                self.budget.rate_limited(error.retry_after)  # pauses background work
            if retry and attempt < GET_ATTEMPTS and not error.permanent:
                wait = (
                    error.retry_after
                    if isinstance(error, ProvetRateLimited)
                    else BACKOFF_BASE * 2 ** (attempt - 1)
                )
                if wait <= MAX_RETRY_WAIT:
                    self._sleep(wait)
                    continue
            raise error

    def _send(self, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, str]:
        target = httpx.URL(url)
        if not self._is_ours(target):
            # Neither the query string nor any user info: they can hold personal data.
            shown = f"{target.scheme}://{target.netloc.decode('ascii')}{target.path}"
            logger.warning("provet %s %s refused: outside this installation", method, shown)
            raise ProvetForeignURL(
                f"Provet answered with an address outside this installation ({shown}): "
                "not followed.",
                request_sent=False,
            )
        correlation_id = uuid.uuid4().hex
        kwargs["headers"] = {**kwargs.get("headers", {}), "X-Correlation-Id": correlation_id}
        path = urlsplit(url).path
        fields: dict[str, Any] = {"correlation_id": correlation_id, "method": method, "path": path}
        started = time.monotonic()
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            elapsed = (time.monotonic() - started) * 1000
            # A request that never reached Provet can safely be sent again; any other may have
            # been acted upon.
            sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            reason = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
            logger.warning(
                "provet %s %s %s after %.0fms (%s) correlation_id=%s",
                method,
                path,
                reason,
                elapsed,
                type(exc).__name__,
                correlation_id,
                extra={**fields, "duration_ms": round(elapsed, 1), "outcome": reason},
            )
            raise ProvetUnavailable(
                f"Provet Cloud did not answer ({reason}: {type(exc).__name__})",
                correlation_id=correlation_id,
                request_sent=sent,
            ) from exc
        elapsed = (time.monotonic() - started) * 1000
        logger.info(
            "provet %s %s %s in %.0fms correlation_id=%s",
            method,
            path,
            response.status_code,
            elapsed,
            correlation_id,
            extra={**fields, "status": response.status_code, "duration_ms": round(elapsed, 1)},
        )
        return response, correlation_id

    def _is_ours(self, url: httpx.URL) -> bool:
        """Whether the credentials may go to `url`: the installation's token endpoint or API."""
        if url == httpx.URL(self.connection.token_url):
            return True
        api = httpx.URL(self.connection.api_base)
        return (
            (url.scheme, url.userinfo, url.host, url.port)
            == (api.scheme, api.userinfo, api.host, api.port)
            and url.path.startswith(api.path)
            # httpx resolves a literal `..` but not an encoded `%2e%2e`, which a server may.
            and ".." not in url.path.split("/")
        )

    def _authorization(self) -> tuple[str, str]:
        connection = self.connection
        if connection.auth_scheme != OAUTH2:
            if not connection.api_token:
                raise ProvetAuthError("No Provet API token is configured", request_sent=False)
            return f"Token {connection.api_token}", connection.api_token
        token = tokens.get(connection.cache_key) or self._fetch_token()
        return f"Bearer {token}", token

    def _fetch_token(self) -> str:
        connection = self.connection
        if not connection.client_id or not connection.client_secret:
            raise ProvetAuthError(
                "No OAuth client id and secret are configured", request_sent=False
            )
        response, correlation_id = self._send(
            "POST",
            connection.token_url,
            data={"grant_type": "client_credentials", "scope": "restapi"},
            auth=(connection.client_id, connection.client_secret),
        )
        if response.status_code in (400, 401, 403):
            raise ProvetAuthError(
                "Provet Cloud refused the OAuth client id or secret",
                status=response.status_code,
                correlation_id=correlation_id,
            )
        if response.status_code != 200:
            raise _error_from(response, correlation_id)
        try:
            data = response.json()
            token = str(data["access_token"])
            expires_in = float(data.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise ProvetUnavailable(
                "Provet Cloud's token endpoint gave an answer PayLinks cannot read",
                status=response.status_code,
                correlation_id=correlation_id,
            ) from None
        tokens.put(connection.cache_key, token, expires_in)
        return token


def _jsonable(value: Any) -> Any:
    """Decimals go to Provet as decimal strings ("120.50"), never as floats."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _read_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ProvetUnavailable(
            "Provet Cloud answered with something that isn't JSON", status=response.status_code
        ) from None


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_from(response: httpx.Response, correlation_id: str) -> ProvetError:
    status = response.status_code
    body = _detail(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    common: dict[str, Any] = {"status": status, "correlation_id": correlation_id}
    if status == 400:
        field_errors = body if isinstance(body, dict) else {"non_field_errors": [str(body)]}
        return ProvetValidationError(
            "Provet Cloud refused the request", field_errors=field_errors, **common
        )
    if status == 401:
        return ProvetAuthError(detail or "Provet Cloud refused the credentials", **common)
    if status == 403:
        return ProvetPermissionError(
            detail or "The integration user lacks a permission in Provet Cloud", **common
        )
    if status == 404:
        return ProvetNotFound(detail or "Not found in Provet Cloud", **common)
    if status == 429:
        return ProvetRateLimited(
            "Provet Cloud's rate limit was reached",
            retry_after=_retry_after(response),
            **common,
        )
    if status >= 500:
        return ProvetUnavailable(f"Provet Cloud answered {status}", **common)
    return ProvetError(f"Provet Cloud answered {status}", **common)


def _retry_after(response: httpx.Response) -> float:
    """The seconds Provet asks to wait. Retry-After is either seconds or an HTTP date (RFC 9110):
    a date is counted from now, and one already past means at once. Without one, or with one
    that reads as neither, a minute."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        if when.tzinfo is None:  # "-0000": an HTTP date is in UTC anyway
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - timezone.now()).total_seconds()
    if not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER
    return max(0.0, seconds)

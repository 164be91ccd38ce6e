"""One family of errors for everything that can go wrong talking to Provet Cloud.

`permanent` tells a caller whether trying the same request again later could help.
`request_sent` tells whether Provet may have acted on the request: a POST whose answer was lost
after the request left (timeout, dropped connection, 5xx) has an unknown outcome.
`explain(error)` says what went wrong in words a person can act on, in their language.
"""

from django.utils.translation import gettext as _


class ProvetError(Exception):
    permanent = True
    status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        correlation_id: str = "",
        request_sent: bool = True,
    ):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.correlation_id = correlation_id
        self.request_sent = request_sent

    def __str__(self) -> str:
        return self.message


class ProvetAuthError(ProvetError):
    """401, or the token endpoint refused the credentials."""

    status = 401


class ProvetPermissionError(ProvetError):
    """403: the integration user lacks a permission in Provet."""

    status = 403


class ProvetNotFound(ProvetError):
    status = 404


class ProvetValidationError(ProvetError):
    """400 with Django REST framework style field errors."""

    status = 400

    def __init__(self, message: str, *, field_errors: dict, **kwargs):
        super().__init__(message, **kwargs)
        self.field_errors = field_errors

    def flat_errors(self) -> dict[str, list[str]]:
        """Nested field errors flattened to dotted names: `payment_link_data.email`."""
        return flatten_field_errors(self.field_errors)


class ProvetRateLimited(ProvetError):
    status: int | None = 429
    permanent = False

    def __init__(self, message: str, *, retry_after: float, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProvetBudgetSpent(ProvetRateLimited):
    """PayLinks' own budget for this installation is spent (clinics/budget.py), or Provet asked
    it to wait: the request was not sent. Not a 429 from Provet, so it pauses nothing."""

    status = None

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, retry_after=retry_after, request_sent=False)


class ProvetForeignURL(ProvetError):
    """An answer pointed outside the practice's installation: the request was never sent, so
    the credentials never went there. Asking again can't help."""


class ProvetUnavailable(ProvetError):
    """5xx, a timeout or a connection that failed or dropped."""

    permanent = False


def flatten_field_errors(errors: object, prefix: str = "") -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_field_errors(value, name))
    elif isinstance(errors, list) and all(isinstance(item, str) for item in errors):
        flat[prefix or "non_field_errors"] = list(errors)
    elif isinstance(errors, list):
        for item in errors:
            for key, messages in flatten_field_errors(item, prefix).items():
                flat.setdefault(key, []).extend(messages)
    else:
        flat[prefix or "non_field_errors"] = [str(errors)]
    return flat


def explain(error: ProvetError) -> str:
    """A Provet error in words an admin can act on."""
    if isinstance(error, ProvetAuthError):
        return _(
            "Provet Cloud refused the credentials (%(error)s). Check the client id and secret."
        ) % {"error": error}
    if isinstance(error, ProvetPermissionError):
        return _(
            "The integration user lacks a permission in Provet Cloud; "
            "it needs 'Financial: Invoices'."
        )
    if isinstance(error, ProvetRateLimited):
        return _("Provet Cloud is rate limiting: try again in %(seconds)s seconds.") % {
            "seconds": f"{error.retry_after:.0f}"
        }
    if isinstance(error, ProvetUnavailable):
        return _("Provet Cloud could not be reached: %(error)s. Check the domain or base URL.") % {
            "error": error
        }
    if isinstance(error, ProvetNotFound):
        return _("Provet Cloud has no such installation or user. Check the Provet id and URLs.")
    return str(error)

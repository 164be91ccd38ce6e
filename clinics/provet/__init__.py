"""Provet Cloud's REST API, as PayLinks uses it."""

from clinics.provet.auth import LEGACY_TOKEN, OAUTH2, Connection
from clinics.provet.client import ProvetClient
from clinics.provet.errors import (
    ProvetAuthError,
    ProvetBudgetSpent,
    ProvetError,
    ProvetNotFound,
    ProvetPermissionError,
    ProvetRateLimited,
    ProvetUnavailable,
    ProvetValidationError,
)

__all__ = [
    "LEGACY_TOKEN",
    "OAUTH2",
    "Connection",
    "ProvetAuthError",
    "ProvetBudgetSpent",
    "ProvetClient",
    "ProvetError",
    "ProvetNotFound",
    "ProvetPermissionError",
    "ProvetRateLimited",
    "ProvetUnavailable",
    "ProvetValidationError",
]

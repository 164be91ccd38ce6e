"""Provet's page/page_size paging with count, num_pages and absolute next/previous links."""

import math
from collections.abc import Callable

from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.http import urlencode

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class InvalidPage(Exception):
    pass


def page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        return DEFAULT_PAGE_SIZE
    if size < 1:
        return DEFAULT_PAGE_SIZE
    return min(size, MAX_PAGE_SIZE)


def cost(request: HttpRequest) -> int:
    """A page larger than the default counts as page_size / 50 requests against the limit."""
    size = page_size(request)
    return math.ceil(size / DEFAULT_PAGE_SIZE) if size > DEFAULT_PAGE_SIZE else 1


def paginate(request: HttpRequest, queryset: QuerySet, serialize: Callable[[Model], dict]) -> dict:
    size = page_size(request)
    try:
        number = int(request.GET.get("page", 1))
    except ValueError:
        raise InvalidPage from None
    count = queryset.count()
    num_pages = max(1, math.ceil(count / size))
    if number < 1 or number > num_pages:
        raise InvalidPage
    rows = queryset[(number - 1) * size : number * size]
    return {
        "count": count,
        "num_pages": num_pages,
        "next": _page_url(request, number + 1) if number < num_pages else None,
        "previous": _page_url(request, number - 1) if number > 1 else None,
        "results": [serialize(row) for row in rows],
    }


def _page_url(request: HttpRequest, number: int) -> str:
    params = request.GET.copy()
    if number == 1:
        params.pop("page", None)
    else:
        params["page"] = str(number)
    query = urlencode(list(params.lists()), doseq=True)
    return request.build_absolute_uri(request.path + (f"?{query}" if query else ""))

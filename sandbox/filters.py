"""Provet's list filters: `field__op=value`, relations followed with dots, `filter_type=or`."""

import re
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation

from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils.dateparse import parse_date, parse_datetime

from sandbox.resources import RESOURCES, Field, Resource

NOT_FILTERS = {"page", "page_size", "filter_type", "format"}
OPERATORS = {
    "is": "exact",
    "is_not": "exact",
    "lt": "lt",
    "lte": "lte",
    "gt": "gt",
    "gte": "gte",
    "in": "in",
    "range": "range",
    "icontains": "icontains",
    "is_null": "isnull",
}
ORDERED_KINDS = {"int", "decimal", "date", "datetime", "str", "relation"}
TRAILING_ID = re.compile(r"/(\d+)/?$")


class FilterError(Exception):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.errors = {key: [message]}


def apply(queryset: QuerySet, resource: Resource, params: QueryDict) -> QuerySet:
    filter_type = params.get("filter_type", "and")
    if filter_type not in {"and", "or"}:
        raise FilterError("filter_type", f'"{filter_type}" is not a valid choice.')
    conditions = []
    for key, values in params.lists():
        if key in NOT_FILTERS or key.startswith("expose_") or "__" not in key:
            continue
        for value in values:
            conditions.append(_condition(resource, key, value))
    if not conditions:
        return queryset
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = combined | condition if filter_type == "or" else combined & condition
    return queryset.filter(combined).distinct()


def _condition(resource: Resource, key: str, raw: str) -> Q:
    if "\x00" in raw:
        raise FilterError(key, "Null characters are not allowed.")
    name, _, op = key.rpartition("__")
    if op not in OPERATORS:
        raise FilterError(key, f'Unknown filter operator "{op}".')
    field = _resolve(resource, name, key)
    if op == "is_null":
        return Q(**{f"{field.path}__isnull": _parse(key, "bool", raw)})
    if op == "icontains" and field.kind != "str":
        raise FilterError(key, f'"icontains" does not apply to "{name}".')
    if op in {"lt", "lte", "gt", "gte", "range"} and field.kind not in ORDERED_KINDS:
        raise FilterError(key, f'"{op}" does not apply to "{name}".')
    if op in {"in", "range"}:
        items = [item.strip() for item in raw.strip().strip("[]").split(",") if item.strip()]
        value: object = [_parse(key, field.kind, item) for item in items]
        if op == "range" and len(items) != 2:
            raise FilterError(key, "A range needs two values: [low,high].")
    else:
        value = _parse(key, field.kind, raw)
    condition = Q(**{f"{field.path}__{OPERATORS[op]}": value})
    return ~condition if op == "is_not" else condition


def _resolve(resource: Resource, name: str, key: str) -> Field:
    """Follow `client.lastname` through the resources' fields to one ORM path."""
    prefix = ""
    segments = name.split(".")
    for position, segment in enumerate(segments):
        field = resource.fields.get(segment)
        if field is None:
            raise FilterError(key, f'Unknown filter field "{name}".')
        last = position == len(segments) - 1
        if last:
            return Field(prefix + field.path, field.kind, field.target)
        if field.kind != "relation":
            raise FilterError(key, f'Unknown filter field "{name}".')
        prefix += field.path + "__"
        resource = RESOURCES[field.target]
    raise FilterError(key, f'Unknown filter field "{name}".')  # pragma: no cover


def _parse(key: str, kind: str, raw: str) -> object:
    value = raw.strip()
    if kind == "str":
        return raw
    if kind == "bool":
        if value.lower() in {"true", "1", "yes"}:
            return True
        if value.lower() in {"false", "0", "no"}:
            return False
        raise FilterError(key, "Must be a valid boolean.")
    if kind in {"int", "relation"}:
        match = TRAILING_ID.search(value) if kind == "relation" else None
        try:
            return int(match.group(1) if match else value)
        except ValueError:
            raise FilterError(key, "A valid integer is required.") from None
    if kind == "decimal":
        try:
            return Decimal(value)
        except InvalidOperation:
            raise FilterError(key, "A valid number is required.") from None
    if kind == "date":
        parsed_day = _date(value)
        if parsed_day is None:
            raise FilterError(key, "Enter a valid date: YYYY-MM-DD.")
        return parsed_day
    parsed = _datetime(value)
    if parsed is None:
        raise FilterError(
            key, "Enter a valid date/time: YYYY-MM-DD hh:mm+00:00 (with the + URL-encoded)."
        )
    return parsed


def _date(value: str):
    try:
        return parse_date(value) or (_datetime(value) and _datetime(value).date())
    except ValueError:
        return None


def _datetime(value: str) -> datetime | None:
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            parsed = datetime.combine(day, time()) if day else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed

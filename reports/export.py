"""Links as CSV for a spreadsheet: streamed row by row, so memory stays flat however many rows.

UTF-8 with a byte-order mark (so Excel reads "Mäkelä" right), a header row, amounts as plain
decimals, timestamps in ISO 8601 in the practice's time zone. Text that a spreadsheet would run
as a formula (starting with =, +, -, @, a tab or a carriage return) gets a leading quote.

The columns are what a manager reconciles with: no email addresses or phone numbers.
"""

import csv
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from clinics.models import Practice
from paylinks.models import DeliveryMethod, DeliveryStatus, PaymentLink, PaymentStatus

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500

COLUMNS = [
    ("Link", "code"),
    ("Created", "created_at"),
    ("Created by", "created_by__username"),
    ("Department", "department__name"),
    ("Channel", "delivery_method"),
    ("Invoice", "invoice__number"),
    ("Client", "client_name"),
    ("Description", "description"),
    ("Amount", "amount"),
    ("Currency", "currency"),
    ("Payment status", "payment_status"),
    ("Delivery status", "delivery_status"),
    ("Expires", "expires_at"),
    ("Paid", "paid_at"),
    ("Cancelled", "cancelled_at"),
]


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as text, never runs as a formula (OWASP's CSV injection advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like object whose write() hands back the line, for csv.writer."""

    def write(self, line: str) -> str:
        return line


def rows(links: QuerySet[PaymentLink], practice: Practice) -> Iterator[list[str]]:
    """The header, then one row per link, oldest first, read from the database in chunks."""
    yield [title for title, _ in COLUMNS]
    cells = [_converter(name, practice) for _, name in COLUMNS]
    values = (
        links.order_by("created_at", "pk")
        .values_list(*[name for _, name in COLUMNS])
        .iterator(chunk_size=2000)
    )
    for record in values:
        yield [
            "" if value is None else cell(value) for cell, value in zip(cells, record, strict=True)
        ]


def _converter(name: str, practice: Practice) -> Callable[[Any], str]:
    """How one column's values become text (worked out once per export, not once per cell)."""
    if name in ("created_at", "expires_at", "paid_at", "cancelled_at"):
        zone = ZoneInfo(practice.timezone)
        return lambda moment: moment.astimezone(zone).isoformat(timespec="seconds")
    if name == "amount":
        return lambda amount: f"{amount:f}"
    choices = {
        "delivery_method": DeliveryMethod,
        "payment_status": PaymentStatus,
        "delivery_status": DeliveryStatus,
    }
    if name in choices:
        labels = {value: str(label) for value, label in choices[name].choices}
        return labels.__getitem__
    return lambda value: neutralise(str(value))


def lines(records: Iterable[list[str]]) -> Iterator[str]:
    """CSV text in chunks of a few hundred lines, the first starting with the byte-order mark."""
    writer = csv.writer(_Line())
    chunk = [BOM]
    for record in records:
        chunk.append(writer.writerow(record))
        if len(chunk) >= ROWS_PER_CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def csv_response(
    links: QuerySet[PaymentLink], practice: Practice, filename: str
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        lines(rows(links, practice)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

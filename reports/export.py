"""Links as CSV for a spreadsheet: streamed row by row, so memory stays flat however many rows.

UTF-8 with a byte-order mark (so Excel reads "Mäkelä" right), a header row, amounts as plain
decimals, timestamps in ISO 8601 in the practice's time zone. Text that a spreadsheet would run
as a formula (starting with =, +, -, @, a tab or a carriage return) gets a leading quote.

The columns are what a manager reconciles with: no email addresses or phone numbers. The status,
the maker and the channel read as the pages say them (words.status_words, the dashboard's
names), in the language of the person who downloads the file.
"""

import csv
from collections.abc import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _

from clinics.models import Practice
from paylinks.models import DeliveryMethod, DeliveryStatus, PaymentLink, PaymentLinkQuerySet
from paylinks.words import status_words
from reports.figures import CHANNEL_NAMES, person_name

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500
LINKS_PER_READ = 500


def _moment(zone: ZoneInfo, moment) -> str:
    return "" if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def _text(value) -> str:
    return "" if value is None else neutralise(str(value))


def _columns(zone: ZoneInfo) -> list[tuple[str, Callable[[PaymentLink], str]]]:
    """Each column's title and how a link fills it. Status, maker and channel in the very words
    the pages use: a row says what the link page and the dashboard say."""
    return [
        (_("Link"), lambda link: str(link.code)),
        (_("Created"), lambda link: _moment(zone, link.created_at)),
        (_("Created by"), lambda link: _text(person_name(link.created_by))),
        (_("Department"), lambda link: _text(link.department.name)),
        (_("Channel"), lambda link: str(CHANNEL_NAMES[DeliveryMethod(link.delivery_method)])),
        (_("Invoice"), lambda link: _text(link.invoice.number if link.invoice else None)),
        (_("Client"), lambda link: _text(link.client_name)),
        (_("Description"), lambda link: _text(link.description)),
        (_("Amount"), lambda link: f"{link.amount:f}"),
        (_("Currency"), lambda link: link.currency),
        (_("Status"), lambda link: str(status_words(link)[0])),
        (_("Delivery status"), _delivery_status),
        (_("Expires"), lambda link: _moment(zone, link.expires_at)),
        (_("Paid"), lambda link: _moment(zone, link.paid_at)),
        (_("Cancelled"), lambda link: _moment(zone, link.cancelled_at)),
    ]


def _delivery_status(link: PaymentLink) -> str:
    if link.delivery_status is None:
        return ""
    return str(DeliveryStatus(link.delivery_status).label)


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as text, never runs as a formula (OWASP's CSV injection advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like object whose write() hands back the line, for csv.writer."""

    def write(self, line: str) -> str:
        return line


def rows(links: PaymentLinkQuerySet, practice: Practice) -> Iterator[list[str]]:
    """The header, then one row per link, oldest first, read from the database in chunks.

    Each link comes with what its status words need (its invoice, whether it was replaced), so
    the rows cost a query per chunk, not per link."""
    columns = _columns(ZoneInfo(practice.timezone))
    yield [str(title) for title, _ in columns]
    links = (
        links.with_replaced()
        .select_related("invoice", "department", "created_by")
        .order_by("created_at", "pk")
    )
    for link in links.iterator(chunk_size=LINKS_PER_READ):
        yield [cell(link) for _, cell in columns]


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
    links: PaymentLinkQuerySet, practice: Practice, filename: str
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        lines(rows(links, practice)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""The dashboard's figures in the API (/api/v1/summary/), for managers and admins.

It lives with the dashboard, in reports, because it is the dashboard's: the same filter form,
the same figures (reports/figures.py). reports uses paylinks, the API's scoping and errors
included (paylinks/api/); paylinks never imports reports.
"""

from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from paylinks.access import managed_practices
from paylinks.api.access import practice_for
from paylinks.api.errors import invalid
from paylinks.api.schema import PRACTICE, problems
from paylinks.api.serializers import DepartmentRefSerializer
from reports import figures
from reports.views import DashboardFilterForm


def _money() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=16, decimal_places=2)


class FiguresSerializer(serializers.Serializer):
    sent = serializers.IntegerField(help_text="Links made in Provet in the period.")
    paid = serializers.IntegerField()
    paid_amount = _money()
    conversion = serializers.FloatField(allow_null=True, help_text="paid / sent, 0 to 1.")
    median_seconds = serializers.FloatField(allow_null=True, help_text="Median time to pay.")
    p90_seconds = serializers.FloatField(allow_null=True, help_text="90th percentile.")
    outstanding = serializers.IntegerField(help_text="Sent and still payable.")
    outstanding_amount = _money()
    expired = serializers.IntegerField(help_text="Expired unpaid.")
    expired_amount = _money()
    delivery_failed = serializers.IntegerField(help_text="SMS or email Provet couldn't deliver.")
    links = serializers.DictField(
        child=serializers.CharField(),
        help_text="The links page listing the links behind each figure.",
    )


class RowSerializer(serializers.Serializer):
    label = serializers.CharField()
    figures = FiguresSerializer()


class DaySerializer(serializers.Serializer):
    day = serializers.DateField()
    sent = serializers.IntegerField()
    paid = serializers.IntegerField()
    paid_amount = _money()


class PeriodSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=list(figures.PERIODS))
    first = serializers.DateField()
    last = serializers.DateField()
    label = serializers.CharField()


class MoneyInSerializer(serializers.Serializer):
    collected = serializers.IntegerField(
        help_text="Links paid in the period, by payment date, whenever they were made."
    )
    collected_amount = _money()
    previous = PeriodSerializer(help_text="The period of the same length just before.")
    previous_collected = serializers.IntegerField()
    previous_amount = _money()
    change_percent = serializers.DecimalField(
        max_digits=16,
        decimal_places=0,
        allow_null=True,
        help_text="collected_amount against previous_amount, in percent; null when nothing "
        "came in before.",
    )
    recovered = serializers.IntegerField(
        help_text="Links the automatic follow-up sent again, paid in the period."
    )
    recovered_amount = _money()


class SummarySerializer(serializers.Serializer):
    practice = serializers.UUIDField(source="practice.code")
    currency = serializers.CharField(source="practice.currency")
    period = PeriodSerializer()
    department = DepartmentRefSerializer(allow_null=True)
    totals = FiguresSerializer()
    by_department = RowSerializer(many=True)
    by_staff = RowSerializer(many=True)
    by_channel = RowSerializer(many=True)
    days = DaySerializer(many=True)
    money_in = MoneyInSerializer(
        help_text="Money in by payment date, and what the automatic follow-up recovered."
    )


@extend_schema(
    operation_id="summary",
    summary="The dashboard's figures",
    description="What the manager dashboard shows for a period and a department: links sent, "
    "paid, conversion, time to pay, outstanding, expired unpaid and failed deliveries, in "
    "total, by department, by staff member (API keys included), by channel and by day. "
    "The links counted are those created in the period that reached Provet, as they stand "
    "now (reports/figures.py). `money_in` follows the payment date instead: what was paid "
    "in the period whenever the link was made, against the period before, and what links sent "
    "again automatically brought in. For managers and admins: a reception key gets 403.",
    parameters=[
        PRACTICE,
        OpenApiParameter(
            "period",
            str,
            enum=list(figures.PERIODS),
            description="today, 7d (the default), 30d, month (this month), or custom "
            "(`start` and `end`, at most 366 days), in the practice's time zone.",
        ),
        OpenApiParameter("start", OpenApiTypes.DATE, description="A custom period's first day."),
        OpenApiParameter("end", OpenApiTypes.DATE, description="A custom period's last day."),
        OpenApiParameter("department", int, description="A department's Provet id."),
    ],
    responses={200: SummarySerializer, **problems(400, 403, 404)},
    tags=["summary"],
)
@api_view(["GET"])
def summary(request: Request) -> Response:
    practice = practice_for(request)
    if practice not in managed_practices(request.user):
        raise PermissionDenied("The summary is for managers and admins of a practice.")
    data = QueryDict(mutable=True)
    data.update(request.query_params)
    data["practice"] = str(practice.code)
    department = data.get("department", "")
    known = {str(d.provet_id) for d in practice.departments.all()}
    if department and department not in known:
        raise invalid({"department": ["The practice has no such department."]})
    form = DashboardFilterForm(data, practices=[practice], default=practice)
    if not form.is_valid():
        errors = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
        raise invalid(errors)
    board = figures.build(practice, form.chosen_period, form.chosen_department)
    rows = [*board.by_department, *board.by_staff, *board.by_channel]
    for figure in [board.totals, *[row.figures for row in rows]]:
        figure.links = {name: request.build_absolute_uri(url) for name, url in figure.links.items()}
    return Response(SummarySerializer(board).data)


api_urlpatterns = [path("summary/", summary, name="summary")]

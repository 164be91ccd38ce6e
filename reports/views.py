"""The manager dashboard and its CSV export: for managers and admins of a practice."""

from typing import cast
from zoneinfo import ZoneInfo

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinics.models import Department, Practice
from paylinks.access import SESSION_KEY, current_practice, managed_practices
from paylinks.drift import open_findings
from paylinks.forms import DayField
from reports import export, figures

# Open drift findings shown at once; the rest are in admin.
FINDINGS_SHOWN = 50


class DashboardFilterForm(forms.Form):
    """Practice, period and department. Every field may be left out: the defaults apply."""

    practice = forms.ChoiceField(label=gettext_lazy("Practice"), required=False)
    period = forms.ChoiceField(
        label=gettext_lazy("Period"), required=False, choices=list(figures.PERIODS.items())
    )
    start = DayField(label=gettext_lazy("From"), required=False)
    end = DayField(label=gettext_lazy("To"), required=False)
    department = forms.TypedChoiceField(
        label=gettext_lazy("Department"), required=False, coerce=int
    )

    def __init__(self, data: QueryDict, *, practices: list[Practice], default: Practice):
        data = data.copy()
        self.practices = {str(p.code): p for p in practices}
        # The practice picked decides which departments there are, so it is read first.
        self.chosen_practice = self.practices.get(data.get("practice", ""), default)
        self.departments = {d.provet_id: d for d in self.chosen_practice.departments.all()}
        # A department left over from the practice viewed before means "all departments".
        chosen = data.get("department", "")
        if chosen and not (chosen.isdecimal() and int(chosen) in self.departments):
            data.pop("department")
        if not data.get("period"):
            data["period"] = figures.DEFAULT_PERIOD
        super().__init__(data)
        cast(forms.ChoiceField, self.fields["practice"]).choices = [
            (code, p.name) for code, p in self.practices.items()
        ]
        cast(forms.ChoiceField, self.fields["department"]).choices = [
            ("", _("All departments"))
        ] + [(d.provet_id, d.name) for d in self.departments.values()]
        self.today = figures.local_today(self.chosen_practice)

    def clean(self):
        data = super().clean()
        if data.get("period") == "custom":
            start, end = data.get("start"), data.get("end")
            if start is None and "start" not in self.errors:
                self.add_error("start", _("Give the first day of the range."))
            if end is None and "end" not in self.errors:
                self.add_error("end", _("Give the last day of the range."))
            if start and end and end < start:
                self.add_error("end", _("The range ends before it starts."))
            elif start and end and (end - start).days >= figures.MAX_PERIOD_DAYS:
                self.add_error(
                    "end",
                    _("Choose at most %(days)s days at a time.")
                    % {"days": figures.MAX_PERIOD_DAYS},
                )
        return data

    @property
    def chosen_period(self) -> figures.Period:
        """Only valid once the form is: the period chosen, in the practice's time zone."""
        zone = ZoneInfo(self.chosen_practice.timezone)
        key = self.cleaned_data["period"]
        if key == "custom":
            return figures.Period(key, self.cleaned_data["start"], self.cleaned_data["end"], zone)
        return figures.Period.named(key, self.today, zone)

    @property
    def chosen_department(self) -> Department | None:
        return self.departments.get(self.cleaned_data.get("department") or 0)


def _filters(request: HttpRequest) -> DashboardFilterForm:
    """The filters asked for, among the practices this person manages; 403 for anyone else."""
    practices = list(managed_practices(request.user))
    if not practices:
        raise PermissionDenied(_("The dashboard is for managers and admins of a practice."))
    chosen = request.session.get(SESSION_KEY)
    default = next((p for p in practices if str(p.code) == chosen), practices[0])
    return DashboardFilterForm(request.GET, practices=practices, default=default)


@login_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    form = _filters(request)
    context: dict = {"form": form, "practice": form.chosen_practice}
    if form.is_valid():
        period = form.chosen_period
        board = figures.build(form.chosen_practice, period, form.chosen_department)
        findings = list(open_findings([form.chosen_practice])[: FINDINGS_SHOWN + 1])
        query = request.GET.copy()
        query.pop("page", None)
        context |= {
            "board": board,
            "findings": findings[:FINDINGS_SHOWN],
            "more_findings": len(findings) > FINDINGS_SHOWN,
            # The invoice page shows the invoice of the practice worked in (the header's).
            "invoice_pages": form.chosen_practice == current_practice(request),
            "query": query.urlencode(),
        }
    return render(request, "reports/dashboard.html", context)


@login_required
def dashboard_export(request: HttpRequest) -> HttpResponseBase:
    """The links the dashboard counts, as CSV: the same filters give the same links."""
    form = _filters(request)
    if not form.is_valid():
        problems = "; ".join(
            f"{form.fields[name].label if name in form.fields else name}: "
            + " ".join(str(e) for e in errors)
            for name, errors in form.errors.items()
        )
        return HttpResponseBadRequest(
            _("Check the filters: %(problems)s") % {"problems": problems},
            content_type="text/plain",
        )
    period = form.chosen_period
    links = figures.counted_links(form.chosen_practice, period, form.chosen_department)
    parts = [slugify(form.chosen_practice.name)]
    if form.chosen_department is not None:
        parts.append(slugify(form.chosen_department.name))
    parts += [period.first.isoformat(), period.last.isoformat()]
    return export.csv_response(links, form.chosen_practice, "paylinks-" + "-".join(parts) + ".csv")

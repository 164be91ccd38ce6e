"""Template filters for clinics.formats: `{% load formats %}`, then
`{{ link.amount|money:practice.currency }}`, `{{ link.created_at|moment }}`,
`{{ client.phone|phone:practice.country }}`, `{{ link.created_by|person }}`. Datetimes arrive
in the page's time zone (the practice's, set by base.html)."""

from django import template

from clinics import formats, phones

register = template.Library()

register.filter("money", formats.money)
register.filter("number", formats.number)
register.filter("phone", phones.national)
register.filter("person", formats.person)
for name in ("day", "short_day", "time", "moment"):
    register.filter(name, getattr(formats, name), expects_localtime=True)

from django.urls import path

from clinics.models import WEBHOOK_ROUTE
from paylinks import health
from paylinks.views import link, lists, notices, reception, webhook

app_name = "paylinks"
urlpatterns = [
    path("", reception.home, name="home"),
    path("practice/", reception.switch_practice, name="switch_practice"),
    path("invoices/<int:provet_id>/", reception.invoice_link, name="invoice"),
    path("prepayments/new/", reception.prepayment_link, name="prepayment"),
    path("links/", lists.link_list, name="links"),
    path("links/follow-up/", lists.followup, name="followup"),
    path("links/<uuid:code>/", link.link_detail, name="link"),
    path("links/<uuid:code>/status/", link.link_status, name="link_status"),
    path("links/<uuid:code>/check/", link.link_check, name="link_check"),
    path("links/<uuid:code>/cancel/", link.link_cancel, name="link_cancel"),
    path("links/<uuid:code>/send-again/", link.link_send_again, name="link_send_again"),
    path("links/<uuid:code>/review/", link.link_review, name="link_review"),
    path("notices/", notices.notices, name="notices"),
    path("notices/dismiss/", notices.dismiss_notice, name="dismiss_notice"),
    path(WEBHOOK_ROUTE, webhook.provet_webhook, name="provet_webhook"),
    path("healthz", health.healthz, name="healthz"),
]

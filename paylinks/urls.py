from django.urls import path

from paylinks import dashboard_views, health, link_views, list_views, views, webhook_views

app_name = "paylinks"
urlpatterns = [
    path("", views.home, name="home"),
    path("practice/", views.switch_practice, name="switch_practice"),
    path("invoices/<int:provet_id>/", views.invoice_link, name="invoice"),
    path("prepayments/new/", views.prepayment_link, name="prepayment"),
    path("links/", list_views.link_list, name="links"),
    path("links/follow-up/", list_views.followup, name="followup"),
    path("links/<uuid:code>/", link_views.link_detail, name="link"),
    path("links/<uuid:code>/status/", link_views.link_status, name="link_status"),
    path("links/<uuid:code>/check/", link_views.link_check, name="link_check"),
    path("links/<uuid:code>/cancel/", link_views.link_cancel, name="link_cancel"),
    path("links/<uuid:code>/send-again/", link_views.link_reissue, name="link_reissue"),
    path("links/<uuid:code>/review/", link_views.link_review, name="link_review"),
    path("dashboard/", dashboard_views.dashboard_page, name="dashboard"),
    path("dashboard/export.csv", dashboard_views.dashboard_export, name="dashboard_export"),
    path("webhooks/provet/<str:secret>/", webhook_views.provet_webhook, name="provet_webhook"),
    path("healthz", health.healthz, name="healthz"),
]

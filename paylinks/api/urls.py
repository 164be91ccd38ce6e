"""/api/v1/: mounted by config/urls.py, with the summary (reports/api.py) beside it.

Ids in addresses are read by the views, so that anything that isn't one is the API's 404
(problem+json), not the HTML page's."""

from django.urls import path

from paylinks.api import links, lookups

urlpatterns = [
    path("links/", links.links, name="links"),
    path("links/<str:code>/", links.link, name="link"),
    path("links/<str:code>/refresh/", links.refresh, name="link_refresh"),
    path("links/<str:code>/cancel/", links.cancel, name="link_cancel"),
    path("links/<str:code>/send-again/", links.send_link_again, name="link_send_again"),
    path("links/<str:code>/replace/", links.replace, name="link_replace"),
    path("invoices/", lookups.invoices, name="invoices"),
    path("invoices/<str:provet_id>/", lookups.invoice, name="invoice"),
    path("departments/", lookups.departments, name="departments"),
    path("clients/", lookups.clients, name="clients"),
]

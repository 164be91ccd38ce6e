from django.urls import path, re_path

from sandbox import api, control_api, pages, receiver

app_name = "sandbox"

installation = "<int:provet_id>/"
urlpatterns = [
    path("", pages.index, name="index"),
    path("pay/<uuid:external_id>/", pages.pay, name="pay"),
    # A clinic's own system receiving PayLinks' outgoing events (receiver.py).
    path("_receiver/<slug:name>/", receiver.inbox, name="receiver"),
    path("_receiver/<slug:name>/_control/", receiver.control_view, name="receiver-control"),
    path(installation + "oauth2/token/", api.token, name="token"),
    path(installation + "api/0.1/<slug:resource>/", api.collection, name="api-list"),
    path(installation + "api/0.1/<slug:resource>/<int:pk>/", api.item, name="api-item"),
    path(installation + "outbox/", pages.outbox, name="outbox"),
    path(installation + "_control/", control_api.overview, name="control"),
    path(installation + "_control/faults/", control_api.faults_view, name="control-faults"),
    path(installation + "_control/clock/", control_api.clock_view, name="control-clock"),
    path(installation + "_control/reset/", control_api.reset_view, name="control-reset"),
    path(
        installation + "_control/links/<uuid:external_id>/<slug:action>/",
        control_api.link_view,
        name="control-link",
    ),
    path(installation + "_control/webhooks/", control_api.webhooks_view, name="control-webhooks"),
    path(installation + "_control/webhooks/retry/", control_api.webhooks_retry_view),
    path(installation + "_control/webhooks/deliveries/", control_api.deliveries_view),
    path(installation + "_control/permissions/", control_api.permissions_view),
    path(installation + "_control/rate-limits/", control_api.rate_limits_view),
    path(installation + "_control/rate-limits/counts/", control_api.rate_limit_counts_view),
    path(installation + "_control/outbox/", control_api.outbox_view),
    # Provet requires the trailing slash: anything without one answers 301, whatever the method.
    re_path(r"^(?P<path>.*[^/])$", pages.add_slash),
]

"""The sandbox's HTML pages: the index, the payer's payment page, the outbox; and the 301s."""

import contextlib

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.urls import is_valid_path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sandbox import links, payer
from sandbox.models import EventReceiver, Installation, PaymentStatus, PosTransaction

FINAL_MESSAGES = {
    PaymentStatus.ACCEPTED: "Thank you! Your payment has been accepted.",
    PaymentStatus.FAILED: "The payment was declined.",
    PaymentStatus.ABORTED: "The payment was cancelled.",
    PaymentStatus.EXPIRED: "This payment link has expired.",
}


def index(request: HttpRequest) -> HttpResponse:
    rows = []
    for installation in Installation.objects.order_by("provet_id").prefetch_related("departments"):
        api = reverse("sandbox:api-list", args=[installation.provet_id, "department"])
        token = reverse("sandbox:token", args=[installation.provet_id])
        rows.append(
            {
                "installation": installation,
                "api_base": request.build_absolute_uri(api).removesuffix("department/"),
                "token_url": request.build_absolute_uri(token),
                "integration_user": installation.integration_user,
            }
        )
    receivers = EventReceiver.objects.order_by("name")
    return render(request, "sandbox/index.html", {"rows": rows, "receivers": receivers})


@require_http_methods(["GET", "POST"])
def pay(request: HttpRequest, external_id) -> HttpResponse:
    found = PosTransaction.objects.filter(external_id=external_id).select_related("installation")
    link = found.first()
    if link is None:
        return render(request, "sandbox/pay_gone.html", status=404)
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action in payer.OUTCOMES:
            save_card = request.POST.get("save_card") == "on"
            with contextlib.suppress(payer.NotPayable):
                payer.settle(external_id, action, save_card=save_card)
        return HttpResponseRedirect(request.path, status=303)
    links.refresh_due(link.installation)
    link = found.select_related("department", "invoice__client", "prepayment_client").get()
    client = link.invoice.client if link.invoice else link.prepayment_client
    context = {
        "link": link,
        "installation": link.installation,
        "client": client,
        "pending": link.payment_status == PaymentStatus.PENDING,
        "message": FINAL_MESSAGES.get(link.payment_status, ""),
        "accepted": link.payment_status == PaymentStatus.ACCEPTED,
    }
    return render(request, "sandbox/pay.html", context)


def outbox(request: HttpRequest, provet_id: int) -> HttpResponse:
    installation = get_object_or_404(Installation, provet_id=provet_id)
    links.refresh_due(installation)
    messages = installation.outbox.order_by("-created", "-id")[:200]
    return render(
        request, "sandbox/outbox.html", {"installation": installation, "messages": messages}
    )


@csrf_exempt
def add_slash(request: HttpRequest, path: str) -> HttpResponse:
    slashed = request.path + "/"
    if not is_valid_path(slashed):
        raise Http404
    query = request.META.get("QUERY_STRING", "")
    return HttpResponsePermanentRedirect(
        request.build_absolute_uri(slashed + (f"?{query}" if query else ""))
    )

import logging
import re

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from clinics.models import Practice
from config.logs import bind
from paylinks.webhooks import MalformedWebhook, receive

logger = logging.getLogger(__name__)

# What clinics.models.new_webhook_secret makes; anything else is no practice's, unasked.
SECRET = re.compile(r"[A-Za-z0-9_-]{1,64}")


@csrf_exempt  # Provet can't send a CSRF token; the secret in the URL authenticates it
@require_POST
def provet_webhook(request: HttpRequest, secret: str) -> HttpResponse:
    if not SECRET.fullmatch(secret):
        raise Http404
    practice = Practice.objects.for_webhook_secret(secret).first()
    if practice is None:
        raise Http404
    bind(practice=str(practice.code))  # on the request's log lines
    try:
        delivery = receive(practice, request)
    except MalformedWebhook as error:
        logger.warning("malformed webhook: %s", error)
        return HttpResponse(str(error), status=error.status, content_type="text/plain")
    logger.info("webhook made %s links due", delivery.links_made_due)
    return HttpResponse("ok")

"""One endpoint that publishes a ping, so tests can follow ids from a real HTTP request."""

import json

from django.db import transaction
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shop.events import publish
from tests.support.eventprobe.events import PINGED


@csrf_exempt
@require_POST
def ping(request):
    body = json.loads(request.body or b"{}")
    with transaction.atomic(using="orders"):
        envelope = publish(
            PINGED,
            {"note": body.get("note", "from http"), "tier": 2, "reply": bool(body.get("reply"))},
            aggregate_id=body.get("aggregateId", "http"),
            using="orders",
        )
    return JsonResponse({"eventId": envelope.id}, status=201)


urlpatterns = [path("probe/ping", ping)]

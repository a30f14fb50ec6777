"""Staff's replay of a dead letter (the admin's operations page) goes into the admin log."""

import pytest
from django.contrib.admin.models import LogEntry

from shop.events import Envelope, inbox
from shop.events.store import dead_letter_model
from tests.conftest import CONTEXT_DBS
from tests.support.eventprobe.events import PINGED
from tests.support.eventprobe.handlers import AUDIT_CONSUMER

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def test_a_dead_letter_replayed_from_the_operations_page_is_in_the_admin_log(admin_browser):
    """A replay can move money or stock (a payment command, a stock commit); it left no audit record."""
    wire = Envelope(type=PINGED, version=2, aggregate_id="replayed", data={"note": "n", "tier": 1}).to_wire()
    inbox.dead_letter(AUDIT_CONSUMER, wire, RuntimeError("boom"), 5)
    letter = dead_letter_model("catalog").objects.get(consumer=AUDIT_CONSUMER, event_id=wire["id"])

    response = admin_browser.post("/admin/operations/replay/", {"one": f"catalog:{letter.pk}"})

    assert response.status_code == 302
    [entry] = LogEntry.objects.filter(object_id=str(letter.pk))
    assert entry.change_message.startswith(f"Replay {PINGED} to {AUDIT_CONSUMER}: handled.")

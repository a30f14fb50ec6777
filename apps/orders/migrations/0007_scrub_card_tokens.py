"""Card tokens out of the orders database's history: from the authorization commands already in the
outbox (the command no longer carries one) and from every order whose checkout has ended."""

from django.db import migrations

COMMAND = "checkout.payment_authorization_requested"
ENDED = ["CONFIRMED", "SHIPPED", "DELIVERED", "CANCELLED"]


def scrub(apps, schema_editor):
    alias = schema_editor.connection.alias
    Outbox = apps.get_model("orders", "OutboxMessage")
    for row in Outbox.objects.using(alias).filter(event_type=COMMAND).iterator():
        data = row.envelope.get("data") or {}
        if "token" in data:
            data.pop("token")
            Outbox.objects.using(alias).filter(pk=row.pk).update(envelope=row.envelope)
    apps.get_model("orders", "Order").objects.using(alias).filter(status__in=ENDED).exclude(payment_token="").update(
        payment_token=""
    )


class Migration(migrations.Migration):
    dependencies = [("orders", "0006_outbox_owed_until_delivered")]
    operations = [migrations.RunPython(scrub, migrations.RunPython.noop)]

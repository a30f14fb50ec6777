"""Card tokens out of the payments database's history: authorization commands kept as dead letters."""

from django.db import migrations

COMMAND = "checkout.payment_authorization_requested"


def scrub(apps, schema_editor):
    alias = schema_editor.connection.alias
    DeadLetter = apps.get_model("payments", "DeadLetter")
    for letter in DeadLetter.objects.using(alias).filter(event_type=COMMAND).iterator():
        data = letter.envelope.get("data") or {}
        if "token" in data:
            data.pop("token")
            DeadLetter.objects.using(alias).filter(pk=letter.pk).update(envelope=letter.envelope)


class Migration(migrations.Migration):
    dependencies = [("payments", "0004_outbox_owed_until_delivered")]
    operations = [migrations.RunPython(scrub, migrations.RunPython.noop)]

"""One row per provider payment (``services.payment_provider_reconcile`` must never record one twice).

On PostgreSQL the unique index is built ``CONCURRENTLY``, outside a transaction, so payments stay
writable while it builds on a large table (a plain ``AddConstraint`` would block every checkout's
payment insert for the whole build). ``IF NOT EXISTS``: a build interrupted halfway leaves an invalid
index, which has to be dropped before the migration runs again.
"""

from django.db import migrations, models

NAME = "payments_one_row_per_provider_payment"
CONSTRAINT = models.UniqueConstraint(
    condition=models.Q(("provider_reference", ""), _negated=True),
    fields=("provider", "provider_reference"),
    name=NAME,
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {NAME} "
            "ON payments_payment (provider, provider_reference) WHERE NOT (provider_reference = '')"
        )
    else:
        schema_editor.add_constraint(apps.get_model("payments", "Payment"), CONSTRAINT)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
    else:
        schema_editor.remove_constraint(apps.get_model("payments", "Payment"), CONSTRAINT)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0005_scrub_card_tokens"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddConstraint(model_name="payment", constraint=CONSTRAINT)],
            database_operations=[migrations.RunPython(create, drop)],
        ),
    ]

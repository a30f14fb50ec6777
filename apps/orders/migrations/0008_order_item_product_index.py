"""An index on the order lines' product, for staff's search of a product's orders.

On PostgreSQL it is built ``CONCURRENTLY``, outside a transaction, so checkouts keep writing order
lines while it builds on a large table. ``IF NOT EXISTS``: a build interrupted halfway leaves an
invalid index, which has to be dropped before the migration runs again.
"""

from django.db import migrations, models

NAME = "orders_item_product"
INDEX = models.Index(fields=["product_id"], name=NAME)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON orders_orderitem (product_id)")
    else:
        schema_editor.add_index(apps.get_model("orders", "OrderItem"), INDEX)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
    else:
        schema_editor.remove_index(apps.get_model("orders", "OrderItem"), INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0007_scrub_card_tokens"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="orderitem", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop)],
        ),
    ]

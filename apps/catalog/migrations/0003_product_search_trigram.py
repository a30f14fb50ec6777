"""Trigram indexes for the product search filter (name, SKU, description; case-insensitive).

Django compiles ``icontains`` on PostgreSQL to ``UPPER(col::text) LIKE UPPER(%s)``, so the
indexes are on exactly that expression. SQLite (the embedded mode) has no trigram
indexes and scans; the migration is a no-op there.
"""

from django.db import migrations

INDEXES = (
    ("catalog_product_name_trgm", "name"),
    ("catalog_product_sku_trgm", "sku"),
    ("catalog_product_description_trgm", "description"),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON catalog_product USING gin (UPPER({column}::text) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_category_product_review")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]

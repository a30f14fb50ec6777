"""Each context's tables exist only in its own PostgreSQL database, and writes are routed there."""

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connections, router

from config.router import APP_TO_ALIAS
from tests.conftest import CONTEXT_DBS

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def tables_in(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return set(connections[alias].introspection.table_names(cursor))


def test_every_context_is_its_own_postgres_database():
    names = {connections[alias].settings_dict["NAME"] for alias in settings.CONTEXTS}
    assert len(names) == len(settings.CONTEXTS)
    assert all(connections[alias].vendor == "postgresql" for alias in settings.CONTEXTS)


def test_each_models_table_exists_only_in_its_own_database():
    tables = {alias: tables_in(alias) for alias in settings.CONTEXTS}
    checked = 0
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.proxy:
            continue
        owner = APP_TO_ALIAS[model._meta.app_label]
        table = model._meta.db_table
        assert table in tables[owner], f"{table} missing from {owner}"
        for alias in settings.CONTEXTS:
            if alias != owner:
                assert table not in tables[alias], f"{table} leaked into {alias}"
        checked += 1
    assert checked > 20


def test_every_installed_app_with_models_maps_to_exactly_one_alias():
    for config in apps.get_app_configs():
        if list(config.get_models()):
            assert config.label in APP_TO_ALIAS, f"{config.label} has no database"
            allowed = [alias for alias in settings.CONTEXTS if router.allow_migrate(alias, config.label)]
            assert allowed == [APP_TO_ALIAS[config.label]]


def test_writes_are_routed_to_the_owning_alias():
    from apps.orders.models import OutboxMessage

    assert router.db_for_write(OutboxMessage) == "orders"
    assert router.db_for_read(get_user_model_class()) == "accounts"


def get_user_model_class():
    from django.contrib.auth import get_user_model

    return get_user_model()


def test_writing_a_model_through_another_contexts_alias_is_refused():
    """The table does not exist there, so the database itself refuses the write."""
    from django.db import DatabaseError, transaction

    from apps.orders.models import OutboxMessage

    with pytest.raises(DatabaseError), transaction.atomic(using="catalog"):
        OutboxMessage.objects.using("catalog").create(event_type="x", version=1, aggregate_id="1", envelope={})


def test_unrouted_queries_fail_loudly():
    """'default' is Django's dummy backend: a query that forgot its context cannot go anywhere."""
    assert connections["default"].settings_dict["ENGINE"] == "django.db.backends.dummy"


def test_no_foreign_key_crosses_contexts():
    for model in apps.get_models(include_auto_created=True):
        own = APP_TO_ALIAS.get(model._meta.app_label)
        for field in model._meta.get_fields():
            if field.is_relation and field.related_model is not None and field.concrete:
                other = APP_TO_ALIAS.get(field.related_model._meta.app_label)
                assert other == own, f"{model.__name__}.{field.name} crosses {own} → {other}"


def test_migrate_all_is_idempotent():
    from io import StringIO

    from django.core.management import call_command

    for _ in range(2):
        out = StringIO()
        call_command("migrate_all", stdout=out)
        assert "All context databases are up to date." in out.getvalue()
    assert "accounts_user" in tables_in("accounts")

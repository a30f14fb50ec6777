"""The four staff groups and what each may do (docs/security.md, "Staff roles").

A data migration, so every environment gets the same groups with the same permissions; staff
get a role by joining a group. The permission rows are created here (get_or_create) because
Django only creates them after all migrations ran (post_migrate); Django's later pass finds
them and leaves them alone. The lists are frozen copies: a later change is a new migration.
"""

from django.db import migrations

STAFF_PERMISSIONS = {
    "refund_payment": "Can refund payments",
    "ship_order": "Can ship and deliver orders",
    "adjust_stock": "Can adjust stock levels",
    "edit_catalog": "Can create, edit and deactivate products and categories",
    "view_customers": "Can view customers and their orders",
    "replay_dead_letters": "Can replay dead-lettered events",
    "operate_checkouts": "Can retry or compensate checkout sagas",
}

_DEAD_LETTERS = [(context, "deadletter", "view") for context in ("accounts", "catalog", "inventory", "orders", "payments")]

# group -> (staff permissions, [(app_label, model, action)] of Django's model permissions for the admin pages)
GROUPS = {
    "support": (
        ["view_customers", "operate_checkouts", "replay_dead_letters"],
        [
            ("accounts", "user", "view"),
            ("orders", "order", "view"),
            ("orders", "checkoutsaga", "view"),
            ("payments", "payment", "view"),
            *_DEAD_LETTERS,
        ],
    ),
    "warehouse": (
        ["ship_order", "adjust_stock", "view_customers"],
        [
            ("orders", "order", "view"),
            ("inventory", "stockitem", "view"),
            ("inventory", "reservation", "view"),
            ("inventory", "stockmovement", "view"),
            ("catalog", "product", "view"),
        ],
    ),
    "finance": (
        ["refund_payment", "view_customers"],
        [("orders", "order", "view"), ("payments", "payment", "view"), ("payments", "paymentevent", "view")],
    ),
    "catalog": (
        ["edit_catalog"],
        [
            ("catalog", "product", "view"),
            ("catalog", "product", "add"),
            ("catalog", "product", "change"),
            ("catalog", "category", "view"),
            ("catalog", "category", "add"),
            ("catalog", "category", "change"),
            ("catalog", "review", "view"),
            ("inventory", "stockitem", "view"),
        ],
    ),
}


def _permission(apps, using, app_label, model, codename, name):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.using(using).get_or_create(app_label=app_label, model=model)
    permission, _ = Permission.objects.using(using).get_or_create(
        content_type=content_type, codename=codename, defaults={"name": name}
    )
    return permission


def create_groups(apps, schema_editor):
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    for group_name, (staff_codenames, model_permissions) in GROUPS.items():
        group, _ = Group.objects.using(using).get_or_create(name=group_name)
        permissions = [
            _permission(apps, using, "accounts", "user", codename, STAFF_PERMISSIONS[codename])
            for codename in staff_codenames
        ]
        permissions += [
            _permission(apps, using, app_label, model, f"{action}_{model}", f"Can {action} {model}")
            for app_label, model, action in model_permissions
        ]
        group.permissions.add(*permissions)


def delete_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_staff_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]

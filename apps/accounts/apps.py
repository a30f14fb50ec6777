from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Schemas and subscribers; the signals that drop a cached principal when its user changes.
        from apps.accounts import authentication, events, handlers  # noqa: F401

"""Database-per-context routing.

Every installed app lives in exactly one context database. Django's contrib apps and the
auth-related third-party apps belong to ``accounts`` (users, sessions, admin log, content
types, JWT blacklist). Our own ``shop`` kernel app owns no tables. Anything not listed is
refused everywhere, so a new app must be placed deliberately.
"""

from django.conf import settings

from shop.contexts import CONTEXTS

APP_TO_ALIAS = {context: context for context in CONTEXTS} | {
    "admin": "accounts",
    "auth": "accounts",
    "contenttypes": "accounts",
    "sessions": "accounts",
    "token_blacklist": "accounts",
    "axes": "accounts",
    "otp_totp": "accounts",
    "otp_static": "accounts",
}


def alias_for_app(app_label: str) -> str | None:
    return APP_TO_ALIAS.get(app_label)


class ContextRouter:
    def db_for_read(self, model, **hints):
        return alias_for_app(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return alias_for_app(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return alias_for_app(obj1._meta.app_label) == alias_for_app(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db not in settings.CONTEXTS:
            return False
        return alias_for_app(app_label) == db

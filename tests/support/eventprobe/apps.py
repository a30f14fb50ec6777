from django.apps import AppConfig


class EventProbeConfig(AppConfig):
    """Test-only event types and subscribers whose behaviour a test steers through Redis.

    Installed only by ``config.settings_test``; it has no models, so no database or router
    entry. Its subscribers run in existing contexts and write nothing but their inbox rows.
    """

    name = "tests.support.eventprobe"
    label = "eventprobe"

    def ready(self):
        from tests.support.eventprobe import events, handlers  # noqa: F401 - registers schemas and subscribers

"""Who moved money or stock, when, and why: one record per staff action, API or admin.

The record is Django's admin log (``LogEntry``: user, time, object, message), the same one
the admin's staff actions write (``shop.admin.StaffActionsMixin``), so an object's
"History" page in the admin and "Recent actions" show API and admin actions alike. The
message reads ``"<Action>: <outcome> Reason: <why>"``.
"""

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import router

from shop.durability import write_once_more_if_session_lost


def staff_action_record(*, user, obj, action: str, outcome: str, reason: str) -> None:
    """Record after the service call, with its outcome (a refused action changed nothing).

    The action has committed by now (on its own context's database), so a lost accounts session
    must not lose its record: the write is tried once more on a fresh session."""
    message = f"{action}: {outcome} Reason: {reason or '(none given)'}"
    write_once_more_if_session_lost(
        router.db_for_write(LogEntry),
        lambda: LogEntry.objects.log_actions(
            user_id=user.pk, queryset=[obj], action_flag=CHANGE, change_message=message
        ),
    )

"""The staff console's site: business pages first, the event plumbing in one Operations section.

Every context has its own outbox, inbox and dead-letter tables; listing them per context put
fifteen plumbing pages between the business ones. Instead one operations page shows the outbox
lag and the dead letters of every context (replay one or many), and model admins that are
plumbing rather than business (``admin_section = "operations"``, e.g. the checkout sagas) are
listed under it, with the links they offer (``operations_links``, e.g. overdue sagas).
"""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from shop.events import inbox, relay
from shop.events.store import dead_letter_model, outbox_model
from shop.security import staff
from shop.security.admin_login import TwoFactorAdminSiteMixin
from shop.security.audit import staff_action_record

OPERATIONS = "operations"
# Business sections first, in the order staff use them; anything else follows alphabetically.
SECTION_ORDER = ("orders", "payments", "inventory", "catalog", "accounts", "auth")
DEAD_LETTERS_SHOWN = 200


def can_view_dead_letters(user, alias: str) -> bool:
    return user.has_perm(f"{alias}.view_deadletter") or can_replay_dead_letters(user)


def can_replay_dead_letters(user) -> bool:
    return staff.staff_can(user, staff.REPLAY_DEAD_LETTERS)


@dataclass(frozen=True)
class ContextLag:
    alias: str
    owed: int
    lag_seconds: float
    failed_dead_letters: int


class ShopAdminSite(TwoFactorAdminSiteMixin, admin.AdminSite):
    site_header = "Shop administration"
    site_title = "Shop admin"
    index_title = "Shop"
    site_url = None  # no public HTML site: the storefronts are other applications

    def get_urls(self):
        return [
            path(f"{OPERATIONS}/", self.admin_view(self.operations_view), name=OPERATIONS),
            path(f"{OPERATIONS}/replay/", self.admin_view(self.replay_view), name="operations_replay"),
            *super().get_urls(),
        ]

    # --- sidebar and index -------------------------------------------------------------

    def _visible_aliases(self, request) -> list[str]:
        return [alias for alias in settings.CONTEXTS if can_view_dead_letters(request.user, alias)]

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        operations_models = []
        for app in apps:
            kept = []
            for entry in app["models"]:
                model_admin = self._registry.get(entry["model"])
                if getattr(model_admin, "admin_section", None) == OPERATIONS:
                    operations_models.append(entry)
                    operations_models.extend(getattr(model_admin, "operations_links", lambda request: [])(request))
                else:
                    kept.append(entry)
            app["models"] = kept
        apps = [app for app in apps if app["models"]]
        rank = {label: n for n, label in enumerate(SECTION_ORDER)}
        apps.sort(key=lambda app: (rank.get(app["app_label"], len(rank)), app["name"]))
        if self._visible_aliases(request):
            url = reverse(f"{self.name}:{OPERATIONS}")
            operations_models.insert(0, page_link("Dead letters and outbox", url))
        if operations_models:
            apps.append(
                {
                    "name": "Operations",
                    "app_label": OPERATIONS,
                    "app_url": operations_models[0]["admin_url"],
                    "has_module_perms": True,
                    "models": operations_models,
                }
            )
        return apps

    # --- the operations page -----------------------------------------------------------

    def operations_view(self, request):
        aliases = self._visible_aliases(request)
        if not aliases:
            raise PermissionDenied
        lags = [
            ContextLag(
                alias=alias,
                owed=outbox_model(alias).objects.using(alias).filter(delivered_at__isnull=True).count(),
                lag_seconds=round(relay.outbox_lag(alias), 1),
                failed_dead_letters=_failed(alias).count(),
            )
            for alias in aliases
        ]
        shown = request.GET.get("context")
        letters = []
        for alias in [shown] if shown in aliases else aliases:
            for letter in _failed(alias).order_by("-created_at")[:DEAD_LETTERS_SHOWN]:
                letter.context = alias
                letter.summary, _, letter.trace = letter.error.partition("\n\n")  # "Class: message", traceback
                letter.replayable = can_replay_dead_letters(request.user)
                letters.append(letter)
        letters.sort(key=lambda letter: letter.created_at, reverse=True)
        links = [link for app in self.get_app_list(request) if app["app_label"] == OPERATIONS for link in app["models"]]
        context = {
            **self.each_context(request),
            "title": "Operations",
            "subtitle": None,
            "lags": lags,
            "letters": letters[:DEAD_LETTERS_SHOWN],
            "shown_context": shown if shown in aliases else "",
            "aliases": aliases,
            "links": links[1:],
        }
        return TemplateResponse(request, "admin/shop/operations.html", context)

    def replay_view(self, request):
        """Replay the chosen dead letters (``alias:id`` values) in this process, one by one."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        done = failed = 0
        chosen = [request.POST["one"]] if "one" in request.POST else request.POST.getlist("letter")
        for value in chosen:
            alias, _, letter_id = value.partition(":")
            try:
                letter_id = uuid.UUID(letter_id)
            except ValueError:
                continue
            if alias not in settings.CONTEXTS or not can_replay_dead_letters(request.user):
                raise PermissionDenied
            letter = _failed(alias).filter(pk=letter_id).first()
            if letter is None:
                continue
            handled = inbox.replay(alias, letter_id)
            done, failed = (done + 1, failed) if handled else (done, failed + 1)
            # A replay can move money or stock (a payment command, a stock commit): into the admin log,
            # as every staff action that does.
            staff_action_record(
                user=request.user, obj=letter, action=f"Replay {letter.event_type} to {letter.consumer}",
                outcome="handled." if handled else "failed again.", reason="",
            )  # fmt: skip
        if done or failed:
            level = messages.SUCCESS if not failed else messages.WARNING
            messages.add_message(request, level, f"Replayed {done} dead letter(s); {failed} failed again.")
        else:
            messages.warning(request, "No dead letter selected.")
        return HttpResponseRedirect(reverse(f"{self.name}:{OPERATIONS}"))


def _failed(alias: str):
    DeadLetter = dead_letter_model(alias)
    return DeadLetter.objects.using(alias).filter(status=DeadLetter.Status.FAILED)


def page_link(name: str, url: str, count: int | None = None) -> dict:
    """A sidebar entry that is a page, not a model."""
    return {
        "name": name if count is None else f"{name} ({count})",
        "object_name": name.replace(" ", ""),
        "admin_url": url,
        "add_url": None,
        "view_only": True,
        "perms": {"view": True},
        "model": None,
    }

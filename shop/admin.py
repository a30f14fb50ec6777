"""Admin building blocks shared by the contexts (no models of the kernel's own)."""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property

from shop.counting import count_bounded
from shop.security.audit import staff_action_record
from shop.security.staff import PERMISSIONS, staff_can


class AtLeast(int):
    """A lower bound that reads as one: the changelist prints "10000+ orders", not "10000"."""

    def __str__(self):
        return f"{int(self)}+"


class BoundedCountPaginator(Paginator):
    """The changelist paginator of big tables: counts at most ``PAGINATION_COUNT_LIMIT`` rows.

    Django's counts the whole (filtered) queryset on every changelist page, a full scan of a
    million orders each time staff open the list. Beyond the limit the count is a lower bound
    (``AtLeast``) and the last pages are not linked: staff narrow the list with a filter or a
    search instead of paging to row 500,000.
    """

    @cached_property
    def count(self):
        counted = count_bounded(self.object_list)
        return counted.value if counted.exact else AtLeast(counted.value)


def _period_start(moment: datetime, kind: str) -> datetime:
    if kind == "year":
        return datetime(moment.year, 1, 1, tzinfo=moment.tzinfo)
    if kind == "month":
        return datetime(moment.year, moment.month, 1, tzinfo=moment.tzinfo)
    return datetime.combine(moment.date(), time(), tzinfo=moment.tzinfo)


def _next_period(start: datetime, kind: str) -> datetime:
    if kind == "year":
        return datetime(start.year + 1, 1, 1, tzinfo=start.tzinfo)
    if kind == "month":
        return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=start.tzinfo)
    return datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=start.tzinfo)


class ProbedDatesQuerySet:
    """Mixed into a changelist's queryset: ``datetimes()``, which the date hierarchy asks for the
    years, months or days that have rows, found by one index probe per period ("skip scan": the
    first row at or after the start of the next period) instead of Django's ``SELECT DISTINCT
    date_trunc(...)`` over every matching row — a full pass over a million orders on each visit.
    The number of queries follows the periods shown (at most 31 days, 12 months, the years
    with rows), not the table's size."""

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None, **kwargs):
        if kind not in ("year", "month", "day") or kwargs:
            return super().datetimes(field_name, kind, order, tzinfo, **kwargs)
        zone = tzinfo or timezone.get_current_timezone()
        values = self.order_by(field_name).values_list(field_name, flat=True)
        found = []
        first = values.first()
        while first is not None:
            found.append(_period_start(first.astimezone(zone), kind))
            first = values.filter(**{f"{field_name}__gte": _next_period(found[-1], kind)}).first()
        return found[::-1] if order == "DESC" else found


@functools.cache
def _probing(queryset_class: type) -> type:
    return type(f"ProbedDates{queryset_class.__name__}", (ProbedDatesQuerySet, queryset_class), {})


def _leads_an_index(model, field_name: str) -> bool:
    """Whether an index starts with ``field_name`` (a probe is then an index lookup, not a scan)."""
    if model._meta.get_field(field_name).db_index:
        return True
    return any(index.fields and index.fields[0].lstrip("-") == field_name for index in model._meta.indexes)


class ProbedDatesChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        if self.date_hierarchy and _leads_an_index(self.model, self.date_hierarchy):
            queryset.__class__ = _probing(type(queryset))
        return queryset


class LargeTableAdminMixin:
    """For changelists over tables that grow without bound (orders, events, ledgers): the
    bounded paginator, no second ``COUNT(*)`` of the unfiltered table for "N total", and a
    date hierarchy that probes an index per period instead of reading every row (when an index
    starts with its field; otherwise Django's own query)."""

    paginator = BoundedCountPaginator
    show_full_result_count = False

    def get_changelist(self, request, **kwargs):
        return ProbedDatesChangeList


class ReadOnlyAdminMixin:
    """Staff may look, never write: these rows change only through the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Rows that are part of their parent's page (an order's items, a payment's ledger): whoever
    may view the parent sees them, without a separate view permission per child model."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return True  # only ever rendered inside the parent's page, which checks its own permission


class StaffPermissionsAdminMixin:
    """Admin actions name the staff permission they need, as in
    ``@admin.action(permissions=[staff.REFUND_PAYMENT])``: Django then hides the action from,
    and refuses its POST to, staff without it (it calls ``has_<codename>_permission``)."""


def _has_staff_permission(codename: str):
    def check(self, request) -> bool:
        return staff_can(request.user, codename)

    check.__name__ = f"has_{codename}_permission"
    return check


for _codename, _name in PERMISSIONS:
    setattr(StaffPermissionsAdminMixin, f"has_{_codename}_permission", _has_staff_permission(_codename))


# --- Staff actions: a button on the object page, a confirmation form with a reason, a service call ---


class ActionForm(forms.Form):
    """Every staff action asks why; the reason goes into the admin log with the outcome."""

    reason = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"size": 60, "autofocus": True}))


class ActionRefused(Exception):
    """The service said no (wrong state, amount too high...): shown on the form, nothing changed."""


@dataclass(frozen=True)
class StaffAction:
    """``perform(request, obj, cleaned_data)`` calls the owning service and returns what happened;
    it raises ``ActionRefused`` for a refusal. ``permission`` is the staff permission it needs
    (``shop.security.staff``); ``applies(obj)`` hides it in states where it makes no sense."""

    name: str
    label: str
    permission: str
    perform: Callable
    form: type[forms.Form] = ActionForm
    applies: Callable = lambda obj: True
    explanation: str = ""


class StaffActionsMixin(StaffPermissionsAdminMixin):
    """Object-page actions for model admins whose rows only move through services."""

    staff_actions: tuple[StaffAction, ...] = ()
    change_form_template = "admin/shop/change_form.html"

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_act"
        view = self.admin_site.admin_view(self.staff_action_view)
        return [path("<path:object_id>/act/<str:action>/", view, name=name), *super().get_urls()]

    def permitted_staff_actions(self, request, obj) -> list[StaffAction]:
        return [
            action
            for action in self.staff_actions
            if getattr(self, f"has_{action.permission}_permission")(request) and action.applies(obj)
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_act"
            context["staff_actions"] = [
                (action.label, reverse(name, args=[quote(obj.pk), action.name]))
                for action in self.permitted_staff_actions(request, obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def staff_action_view(self, request, object_id, action):
        obj = self.get_object(request, unquote(object_id))
        chosen = next((a for a in self.staff_actions if a.name == action), None)
        if obj is None or chosen is None:
            raise Http404
        if chosen not in self.permitted_staff_actions(request, obj):
            raise PermissionDenied
        form = chosen.form(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = chosen.perform(request, obj, form.cleaned_data)
            except ActionRefused as exc:
                form.add_error(None, str(exc))
            else:
                staff_action_record(
                    user=request.user, obj=obj, action=chosen.label, outcome=outcome, reason=form.cleaned_data["reason"]
                )
                self.message_user(request, f"{chosen.label}: {outcome}", messages.SUCCESS)
                change_url = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change"
                return HttpResponseRedirect(reverse(change_url, args=[quote(obj.pk)]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{chosen.label}: {obj}",
            "subtitle": None,
            "opts": self.opts,
            "object": obj,
            "action": chosen,
            "form": form,
        }
        return TemplateResponse(request, "admin/shop/staff_action.html", context)


def confirm_for_each(modeladmin, request, queryset, *, label: str, perform, explanation: str = ""):
    """A list action that asks for confirmation and a reason first (the admin's own
    intermediate-page pattern, as for "delete selected"). The first POST shows the selection and
    the reason field; the confirming POST runs ``perform(obj, reason)`` on each row, which returns
    what happened or raises ``ActionRefused``, and records each outcome in the admin log."""
    form = ActionForm(request.POST if "confirm" in request.POST else None)
    if form.is_bound and form.is_valid():
        reason = form.cleaned_data["reason"]
        results = []
        for obj in queryset:
            try:
                outcome = perform(obj, reason)
            except ActionRefused as exc:
                results.append(f"{obj}: refused ({exc})")
                continue
            staff_action_record(user=request.user, obj=obj, action=label, outcome=outcome, reason=reason)
            results.append(f"{obj}: {outcome}")
        modeladmin.message_user(request, f"{label}: " + "; ".join(results))
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{label}: confirm",
        "subtitle": None,
        "opts": modeladmin.opts,
        "objects": list(queryset),
        "form": form,
        "label": label,
        "explanation": explanation,
        "action_name": request.POST["action"],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/shop/bulk_action.html", context)

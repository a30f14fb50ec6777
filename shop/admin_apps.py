"""``django.contrib.admin`` with the shop's own site (kept apart: this module is imported before
the models are ready, the site's module imports the event store)."""

from django.contrib.admin.apps import AdminConfig


class ShopAdminConfig(AdminConfig):
    default_site = "shop.admin_site.ShopAdminSite"

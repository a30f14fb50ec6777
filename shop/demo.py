"""Demo data is for development and demonstrations, never for a production shop."""

from django.conf import settings
from django.core.management import CommandError


def demo_data_refused_in_production() -> None:
    """Raise ``CommandError`` in production (``DJANGO_ENV=production``). Run there, ``seed_inventory``
    gave units to every active product without stock history, real products not yet stocked
    included, which the shop then sold; ``seed_catalog`` added a thousand purchasable ``DEMO-*``
    products, paid for through the real provider. Stock a real product with "Adjust stock"."""
    if settings.IS_PRODUCTION:
        raise CommandError(
            "Demo data is refused in production (DJANGO_ENV=production): it would stock real products "
            "and add purchasable demo ones. Stock real products with the admin's Adjust stock."
        )

import uuid

import factory

from apps.inventory import services
from apps.inventory.models import StockItem


class StockItemFactory(factory.django.DjangoModelFactory):
    """Stock for a product, created through ``stock_seed`` so the ledger explains it
    (an INITIAL movement); ``product_id`` is a fresh UUID unless given."""

    class Meta:
        model = StockItem
        database = "inventory"

    product_id = factory.LazyFunction(uuid.uuid4)
    on_hand = 10

    @classmethod
    def _create(cls, model_class, *, product_id, on_hand, **kwargs):
        services.stock_seed(quantities={product_id: on_hand})
        return model_class.objects.get(product_id=product_id)

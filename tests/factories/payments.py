import uuid
from decimal import Decimal

import factory

from apps.payments.models import Payment, PaymentStatus


class PaymentFactory(factory.django.DjangoModelFactory):
    """A payment row only; tests that need the provider side go through the facade instead."""

    class Meta:
        model = Payment
        database = "payments"

    order_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("25.00")
    currency = "USD"
    status = PaymentStatus.AUTHORIZED
    provider = "fake"
    provider_reference = factory.Sequence(lambda n: f"fake_pi_{n}")

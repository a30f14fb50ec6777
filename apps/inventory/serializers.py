"""Input and output shapes of the inventory API (snake_case here; camelCase on the wire)."""

from rest_framework import serializers

from shop.api.inputs import StrictInput
from shop.api.sanitize import CleanCharField

MAX_DELTA = 1_000_000


class AvailabilityOutput(serializers.Serializer):
    product_id = serializers.UUIDField()
    available = serializers.IntegerField()
    in_stock = serializers.BooleanField()


class StockLevelOutput(AvailabilityOutput):
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()


class AdjustmentInput(StrictInput):
    delta = serializers.IntegerField(min_value=-MAX_DELTA, max_value=MAX_DELTA)
    reason = CleanCharField(max_length=255)

    def validate_delta(self, value):
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value

"""Responses built from model instances: ``ModelOutput``, a ``ModelSerializer`` for output only.

DRF works out each model field's serializer class and arguments from the model's metadata
every time a ``ModelSerializer`` is instantiated, and a response instantiates several (an
order, its lines, its history, each nested and list serializer). The answer depends only on
the serializer class and the field, so ``ModelOutput`` works it out once per class and field
and builds the fields from that; everything else (declared fields, ``Meta``, representation,
the OpenAPI schema) is DRF's own.
"""

from rest_framework import serializers

_FIELD_SPECS: dict[tuple, tuple[type, dict]] = {}


class ModelOutput(serializers.ModelSerializer):
    def build_field(self, field_name, info, model_class, nested_depth):
        key = (type(self), field_name, nested_depth)
        spec = _FIELD_SPECS.get(key)
        if spec is None:
            spec = _FIELD_SPECS[key] = super().build_field(field_name, info, model_class, nested_depth)
        field_class, kwargs = spec
        return field_class, dict(kwargs)  # DRF adds the Meta's extra kwargs to its own copy

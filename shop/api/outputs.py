"""Responses built from model instances: ``ModelOutput``, a ``ModelSerializer`` for output only.

A ``ModelSerializer`` works out and binds a copy of every field (nested serializers included)
each time one is instantiated, and for an order response that cost more than rendering it.
``ModelOutput.represent`` renders with a serializer built once per class and thread instead;
everything else (declared fields, ``Meta``, representation, the OpenAPI schema) is DRF's own.
"""

import threading

from rest_framework import serializers

_BUILT = threading.local()


class ModelOutput(serializers.ModelSerializer):
    @classmethod
    def represent(cls, instance, *, many: bool = False, context: dict | None = None):
        """What ``cls(instance, many=many, context=context).data`` gives. Rendering reads only the
        instance and the context, so one built serializer serves every request of its thread in
        turn; the context is the caller's for the call and no longer."""
        built = _BUILT.__dict__.setdefault("serializers", {})
        serializer = built.get((cls, many))
        if serializer is None:
            serializer = built[(cls, many)] = cls(many=many)
        serializer._context = context or {}
        try:
            return serializer.to_representation(instance)
        finally:
            serializer._context = {}

"""The one way a view reads client input: declared fields only, anything else is a 400.

* ``StrictInput`` for bodies: an unknown key (``isStaff``, ``id``, a typo) is refused and
  named, so a field added to a model later cannot become writable by accident (mass
  assignment), and a client learns at once that its field is ignored.
* ``QueryParams`` for query strings, fields named exactly as on the wire (camelCase, as the
  spec spells them): ``QueryParams`` itself accepts none, ``PagedQuery`` adds ``page``,
  ``limit`` and ``cursor``, ``SortedQuery`` adds the allow-listed ``sortBy`` and ``order``
  (the selector owns the wire name → column map; only those columns reach ``order_by``).
* ``InputClass.read(request.data)`` validates a body and returns the clean values;
  ``query_read(request, ParamsClass)`` does the same for ``request.query_params``; the paging
  values then go to ``shop.api.pagination.page_get``. Both validate with a serializer built
  once per class and thread: building one (a deep copy and a bind of every declared field,
  nested inputs included) cost more than validating an order's body.
"""

import threading
from collections.abc import Mapping

from rest_framework import serializers

MAX_LIMIT = 100
DEFAULT_LIMIT = 10
_BUILT = threading.local()


class StrictInput(serializers.Serializer):
    # Unknown keys are a 400 VALIDATION_ERROR naming each of them. (A comment, not a docstring:
    # drf-spectacular would inherit a docstring into every input schema's description.)

    unknown_message = "This field is not accepted."

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: [self.unknown_message] for name in unknown})
        return super().to_internal_value(data)

    @classmethod
    def read(cls, data) -> dict:
        """``data`` validated, or a ``ValidationError`` (400 VALIDATION_ERROR naming each field).
        Validating keeps nothing in the fields, so one built serializer serves every request of
        its thread in turn; what one validation left on it is cleared before the next."""
        built = _BUILT.__dict__.setdefault("inputs", {})
        serializer = built.get(cls)
        if serializer is None:
            serializer = built[cls] = cls()
        serializer.initial_data = data
        try:
            serializer.is_valid(raise_exception=True)
            return serializer.validated_data
        finally:
            for left in ("initial_data", "_validated_data", "_errors", "_data"):
                serializer.__dict__.pop(left, None)


class QueryParams(StrictInput):
    # Query parameters by their wire names; this base class accepts none at all.

    unknown_message = "Unknown query parameter."


class PagedQuery(QueryParams):
    page = serializers.IntegerField(min_value=1, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = serializers.CharField(
        required=False,
        max_length=1000,
        help_text="Keyset paging: pagination.nextCursor of the previous page (page is then ignored); "
        "reaches any depth at the cost of the first page.",
    )


class SortedQuery(PagedQuery):
    # ``sortBy`` in ``SORT_FIELDS`` (wire name -> column, from the selector), ``order`` asc|desc.

    SORT_FIELDS: Mapping[str, str] = {}
    DEFAULT_SORT = "createdAt"
    DEFAULT_ORDER = "desc"

    def get_fields(self):
        fields = super().get_fields()
        fields["sortBy"] = serializers.ChoiceField(choices=sorted(self.SORT_FIELDS), default=self.DEFAULT_SORT)
        fields["order"] = serializers.ChoiceField(choices=["asc", "desc"], default=self.DEFAULT_ORDER)
        return fields


def query_read(request, params_class: type[QueryParams] = QueryParams) -> dict:
    """The validated query parameters of ``request`` (400 on unknown names or bad values)."""
    return dict(params_class.read(request.query_params.dict()))

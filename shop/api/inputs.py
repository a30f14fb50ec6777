"""The one way a view reads client input: declared fields only, anything else is a 400.

* ``StrictInput`` for bodies: an unknown key (``isStaff``, ``id``, a typo) is refused and
  named, so a field added to a model later cannot become writable by accident (mass
  assignment), and a client learns at once that its field is ignored.
* ``QueryParams`` for query strings, fields named exactly as on the wire (camelCase, as the
  spec spells them): ``QueryParams`` itself accepts none, ``PagedQuery`` adds ``page``,
  ``limit`` and ``cursor``, ``SortedQuery`` adds the allow-listed ``sortBy`` and ``order``
  (the selector owns the wire name → column map; only those columns reach ``order_by``).
* ``query_read(request, ParamsClass)`` validates ``request.query_params`` and returns the
  clean values; the paging values then go to ``shop.api.pagination.page_get``.
"""

from collections.abc import Mapping

from rest_framework import serializers

MAX_LIMIT = 100
DEFAULT_LIMIT = 10


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
    params = params_class(data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)

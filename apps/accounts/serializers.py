from collections.abc import Mapping

from rest_framework import serializers

from shop.api.pagination import MAX_LIMIT
from shop.api.sanitize import CleanCharField


class StrictInput(serializers.Serializer):
    """Unknown keys are a 400, not silently dropped: a client sending ``isStaff`` or ``id``
    learns it cannot set them, and a field added to a model later cannot become writable by
    accident (mass assignment)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["This field is not accepted."] for name in unknown})
        return super().to_internal_value(data)


class RegisterInput(StrictInput):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    name = CleanCharField(max_length=150, required=False, allow_blank=True, default="")


class TokenInput(StrictInput):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)


class RefreshInput(StrictInput):
    refresh = serializers.CharField(max_length=2048)


class MeUpdateInput(StrictInput):
    name = CleanCharField(max_length=150, allow_blank=True)


class UserOut(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    date_joined = serializers.DateTimeField(read_only=True)


class TokenPairOut(serializers.Serializer):
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)


# The client-facing names of the sort keys, mapped to columns: only these reach order_by().
USER_SORT_FIELDS = {"email": "email", "name": "name", "dateJoined": "date_joined"}


class UserListQuery(StrictInput):
    """Query parameters of the staff user list, named exactly as on the wire (camelCase)."""

    search = serializers.CharField(required=False, max_length=100, default="")
    isStaff = serializers.BooleanField(required=False, allow_null=True, default=None)
    isActive = serializers.BooleanField(required=False, allow_null=True, default=None)
    sortBy = serializers.ChoiceField(choices=sorted(USER_SORT_FIELDS), required=False, default="dateJoined")
    order = serializers.ChoiceField(choices=["asc", "desc"], required=False, default="desc")
    page = serializers.IntegerField(required=False, min_value=1)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)

    def ordering(self) -> str:
        column = USER_SORT_FIELDS[self.validated_data["sortBy"]]
        return column if self.validated_data["order"] == "asc" else f"-{column}"

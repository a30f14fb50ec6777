from rest_framework import serializers

from apps.accounts.selectors import USER_SORT_FIELDS
from shop.api.inputs import SortedQuery, StrictInput
from shop.api.sanitize import CleanCharField


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


class UserListQuery(SortedQuery):
    """Query parameters of the staff user list."""

    SORT_FIELDS = USER_SORT_FIELDS
    DEFAULT_SORT = "dateJoined"

    search = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    isStaff = serializers.BooleanField(required=False, allow_null=True, default=None)
    isActive = serializers.BooleanField(required=False, allow_null=True, default=None)

"""HTTP edge of the accounts context: registration, JWT sessions, the current user, staff search.

The sign-in endpoints run without authentication classes, so a stale or broken
``Authorization`` header on the login page cannot lock a user out of signing in again.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.views import APIView

from apps.accounts import selectors, services, tokens
from apps.accounts.errors import InvalidCredentials
from apps.accounts.serializers import (
    MeUpdateInput,
    RefreshInput,
    RegisterInput,
    TokenInput,
    TokenPairOut,
    UserListQuery,
    UserOut,
)
from shop.api.envelope import ok
from shop.api.inputs import query_read
from shop.api.pagination import PagePagination, page_get, page_response
from shop.api.permissions import staff_permission
from shop.security import staff

# The rate-limit middleware refuses sign-in and sign-up while its Redis store is down.
_FAILS_CLOSED = OpenApiResponse(description="SERVICE_UNAVAILABLE (rate-limit store down; see Retry-After)")


class _PublicAuthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class RegisterView(_PublicAuthView):
    ratelimit_scope = "register"

    @extend_schema(
        request=RegisterInput,
        responses={201: UserOut, 409: OpenApiResponse(description="EMAIL_TAKEN"), 503: _FAILS_CLOSED},
        auth=[],
        summary="Create an account",
    )
    def post(self, request, version=None):
        query_read(request)
        data = RegisterInput.read(request.data)
        try:
            user = services.user_register(**data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)})
        return ok(UserOut(user).data, message="Account created.", status=status.HTTP_201_CREATED)


class TokenObtainView(_PublicAuthView):
    ratelimit_scope = "login"

    @extend_schema(request=TokenInput, responses={200: TokenPairOut, 503: _FAILS_CLOSED}, auth=[], summary="Sign in")
    def post(self, request, version=None):
        query_read(request)
        data = TokenInput.read(request.data)
        user = services.user_authenticate(**data)
        if user is None:
            raise InvalidCredentials
        return ok(TokenPairOut(tokens.tokens_issue(user=user)).data)


class TokenRefreshView(_PublicAuthView):
    @extend_schema(
        request=RefreshInput,
        responses={200: TokenPairOut},
        auth=[],
        summary="Rotate a refresh token",
        description="Returns a new access and refresh token; the submitted refresh token is revoked. "
        "Presenting an already rotated token revokes every session of that user.",
    )
    def post(self, request, version=None):
        query_read(request)
        data = RefreshInput.read(request.data)
        pair = tokens.token_rotate(raw_refresh=data["refresh"])
        return ok(TokenPairOut(pair).data)


class LogoutView(_PublicAuthView):
    @extend_schema(request=RefreshInput, responses={204: None}, auth=[], summary="Sign out (revoke a refresh token)")
    def post(self, request, version=None):
        query_read(request)
        data = RefreshInput.read(request.data)
        tokens.token_revoke(raw_refresh=data["refresh"])
        return ok(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UserOut}, summary="The signed-in user")
    def get(self, request, version=None):
        query_read(request)
        return ok(UserOut(selectors.user_get(user_id=request.user.pk)).data)

    @extend_schema(request=MeUpdateInput, responses={200: UserOut}, summary="Update the signed-in user's profile")
    def patch(self, request, version=None):
        query_read(request)
        data = MeUpdateInput.read(request.data)
        user = services.user_update_profile(user_id=request.user.pk, **data)
        return ok(UserOut(user).data)


class UserListView(APIView):
    """Staff search over accounts (support tooling); sorting and filters are allow-listed."""

    permission_classes = [staff_permission(staff.VIEW_CUSTOMERS)]
    pagination_class = PagePagination  # documents the list response

    @extend_schema(parameters=[UserListQuery], responses=UserOut(many=True), summary="Search users (staff)")
    def get(self, request, version=None):
        query = query_read(request, UserListQuery)
        users = selectors.user_list(
            search=query["search"],
            is_staff=query["isStaff"],
            is_active=query["isActive"],
            sort_by=query["sortBy"],
            descending=query["order"] == "desc",
        )
        page = page_get(users, query)
        return page_response(page.block(), UserOut(page.items, many=True).data)

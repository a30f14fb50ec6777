"""Views that fail on purpose, to pin the error envelope for every error class."""

from django.contrib.auth import get_user_model
from django.urls import include, path
from rest_framework import generics, serializers
from rest_framework.exceptions import Throttled
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.views import APIView

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401 - same handlers as production
from shop.api.envelope import ok


class EchoInput(serializers.Serializer):
    shipping_address = serializers.CharField(max_length=10)
    quantity = serializers.IntegerField(min_value=1)


class EchoView(APIView):
    def post(self, request, version=None):
        data = EchoInput(data=request.data)
        data.is_valid(raise_exception=True)
        return ok(data.validated_data, message="echoed", status=201)


class BoomView(APIView):
    def get(self, request, version=None):
        raise RuntimeError("secret internal detail")


class BoomWithSecretsView(APIView):
    """Fails while holding a customer's secrets (request body, local variables, message)."""

    def post(self, request, version=None):
        password = request.data["password"]
        card_token = request.data["payment"]["token"]
        raise RuntimeError(f"provider refused {card_token} (password {password})")


class PrivateView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request, version=None):
        return ok({})


class StaffView(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request, version=None):
        return ok({})


class ThrottledView(APIView):
    def get(self, request, version=None):
        raise Throttled(wait=42)


class UserOut(serializers.Serializer):
    email = serializers.EmailField()


class UserList(generics.ListAPIView):
    serializer_class = UserOut

    def get_queryset(self):
        return get_user_model().objects.order_by("email", "id")


api = [
    path("echo", EchoView.as_view()),
    path("boom", BoomView.as_view()),
    path("boom-with-secrets", BoomWithSecretsView.as_view()),
    path("private", PrivateView.as_view()),
    path("staff", StaffView.as_view()),
    path("throttled", ThrottledView.as_view()),
    path("users", UserList.as_view()),
]

urlpatterns = [path("api/<str:version>/", include(api))]

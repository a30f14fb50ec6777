from django.urls import path

from apps.accounts import views

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token", views.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    path("users", views.UserListView.as_view(), name="users-list"),
]

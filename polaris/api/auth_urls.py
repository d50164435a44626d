"""``/api/auth/…``; every path works with and without its trailing slash."""

from django.urls import re_path

from .auth_views import LogoutView, MeView, TokenObtainPairView, TokenRefreshView

urlpatterns = [
    re_path(r"^token/?$", TokenObtainPairView.as_view(), name="auth-token"),
    re_path(r"^token/refresh/?$", TokenRefreshView.as_view(), name="auth-token-refresh"),
    re_path(r"^logout/?$", LogoutView.as_view(), name="auth-logout"),
    re_path(r"^me/?$", MeView.as_view(), name="auth-me"),
]

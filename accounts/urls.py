from django.urls import path

from accounts.api import views
from layra.routes import path_with_alias

urlpatterns = [
    *path_with_alias("auth/register", views.RegisterApi.as_view(), name="auth-register"),
    *path_with_alias("auth/login", views.LoginApi.as_view(), name="auth-login"),
    *path_with_alias("auth/refresh", views.RefreshApi.as_view(), name="auth-refresh"),
    *path_with_alias("auth/logout", views.LogoutApi.as_view(), name="auth-logout"),
    *path_with_alias("auth/me", views.MeApi.as_view(), name="auth-me"),
    *path_with_alias("auth/password", views.PasswordChangeApi.as_view(), name="auth-password"),
    path("auth/api-keys/", views.ApiKeyListCreateApi.as_view(), name="auth-api-keys"),
    path("auth/api-keys/<str:key_id>/", views.ApiKeyDetailApi.as_view(), name="auth-api-key"),
]

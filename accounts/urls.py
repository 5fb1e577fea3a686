from django.urls import path

from accounts.api import views

urlpatterns = [
    path("auth/register", views.RegisterApi.as_view(), name="auth-register"),
    path("auth/login", views.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", views.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me", views.MeApi.as_view(), name="auth-me"),
    path("auth/password", views.PasswordChangeApi.as_view(), name="auth-password"),
    path("auth/api-keys/", views.ApiKeyListCreateApi.as_view(), name="auth-api-keys"),
    path("auth/api-keys/<str:key_id>/", views.ApiKeyDetailApi.as_view(), name="auth-api-key"),
]

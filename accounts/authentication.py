"""Placeholder until the accounts issue lands JWT and API keys: session auth only."""

from rest_framework.authentication import BaseAuthentication


class JWTAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None

"""DRF authentication: JWT bearer access tokens and API keys. Revocation is checked on every request."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts import selectors, services, tokens


def _bearer_is_api_key(parts: list[bytes]) -> bool:
    return len(parts) == 2 and parts[0].lower() == b"bearer" and parts[1].startswith(services.API_KEY_PREFIX.encode())


class JWTAuthentication(BaseAuthentication):
    """`Authorization: Bearer <access token>`. request.auth is the token's payload (dict). A bearer that is an API
    key (`lyr_...`) is left to ApiKeyAuthentication."""

    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode() or _bearer_is_api_key(parts):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            payload = tokens.token_decode(parts[1].decode("latin-1"), expected_type=tokens.ACCESS)
        except tokens.TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        if tokens.access_is_revoked(jti=payload["jti"]):
            raise exceptions.AuthenticationFailed("Token has been revoked.")
        session = selectors.login_session_for_access(session_id=payload["sid"], user_id=payload["sub"])
        if session is None or not session.user.is_active:
            raise exceptions.AuthenticationFailed("Token has been revoked.")
        services.session_touch(session=session)
        return session.user, payload

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class ApiKeyAuthentication(BaseAuthentication):
    """`X-API-Key: <key>`, `Authorization: Api-Key <key>` or, as OpenAI-style clients send it,
    `Authorization: Bearer lyr_...`. request.auth is the ApiKey record."""

    keyword = "Api-Key"

    def authenticate(self, request):
        key = request.headers.get("X-API-Key", "").strip()
        if not key:
            parts = get_authorization_header(request).split()
            if _bearer_is_api_key(parts):
                return self._authenticate_key(parts[1].decode("latin-1"))
            if not parts or parts[0].lower() != self.keyword.lower().encode():
                return None
            if len(parts) != 2:
                raise exceptions.AuthenticationFailed("Malformed Authorization header.")
            key = parts[1].decode("latin-1")
        return self._authenticate_key(key)

    def _authenticate_key(self, key: str):
        record = selectors.api_key_for_key(key=key)
        if record is None or not record.user.is_active:
            raise exceptions.AuthenticationFailed("API key is invalid or revoked.")
        services.api_key_touch(api_key=record)
        return record.user, record

    def authenticate_header(self, request):
        return self.keyword


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.JWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key",
                "description": "An API key (lyr_...). Also accepted as `Authorization: Bearer lyr_...` or "
                               "`Authorization: Api-Key lyr_...`."}

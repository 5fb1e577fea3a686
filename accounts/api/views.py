"""Thin auth API: validate the input, call one service, serialize the result."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api import cookies
from accounts.authentication import JWTAuthentication
from accounts.deletion import account_delete_request
from accounts.ratelimit import rate_limit
from layra.client_ip import client_ip
from layra.openapi import errors
from layra.pagination import PAGE_PARAMETERS, page_response, paginated


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")


def _session_id(request) -> str | None:
    return request.auth.get("sid") if isinstance(request.auth, dict) else None


class UserOutputSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.SerializerMethodField(help_text="Email address (stored lower-cased); empty when none is set.")
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    password_migration_required = serializers.BooleanField()
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)

    def get_email(self, obj) -> str:
        return obj.email or ""


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    session_id = serializers.CharField()


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RegisterInput"

        username = serializers.CharField(max_length=150)
        password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
        email = serializers.EmailField(required=False, allow_blank=True, default="")

    @extend_schema(summary="Register a user", request=InputSerializer,
                   responses={201: UserOutputSerializer, **errors(409, 429)}, auth=[])
    def post(self, request):
        rate_limit(request=request, scope="register")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data, ip=client_ip(request))
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LoginInput"

        username = serializers.CharField(max_length=254, help_text="The username, or the account's email address.")
        password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
        cookie = serializers.BooleanField(
            required=False, default=False,
            help_text="Browsers: put the refresh token in an HttpOnly SameSite=Strict cookie (`layra_refresh`) "
                      "and a CSRF token in the readable `layra_csrf` cookie; the body's `refresh` is then empty.")

    @extend_schema(summary="Log in: a token pair for a username (or email) and password", request=InputSerializer,
                   responses={200: TokenPairSerializer, **errors(401, 429)}, auth=[])
    def post(self, request):
        rate_limit(request=request, scope="login")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        use_cookie = data.validated_data.pop("cookie")
        pair = services.login(**data.validated_data, ip=client_ip(request), user_agent=_user_agent(request))
        return _pair_response(request, pair, use_cookie=use_cookie)


def _pair_response(request, pair: dict, *, use_cookie: bool) -> Response:
    if not use_cookie:
        return Response(TokenPairSerializer(pair).data)
    response = Response(TokenPairSerializer({**pair, "refresh": ""}).data)
    cookies.set_refresh_cookies(response, refresh=pair["refresh"], request=request)
    return response


class RefreshApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RefreshInput"

        refresh = serializers.CharField(required=False)

    @extend_schema(summary="Exchange a refresh token for a new token pair", request=InputSerializer,
                   responses={200: TokenPairSerializer, **errors(401, 403, 429)}, auth=[],
                   description="API clients send `refresh` in the body. Browsers that logged in with `cookie: true` "
                               "send no body token: the `layra_refresh` cookie is spent, the `X-CSRF-Token` header "
                               "must repeat the `layra_csrf` cookie (403 otherwise), and the new refresh token "
                               "comes back as a cookie again.")
    def post(self, request):
        rate_limit(request=request, scope="refresh")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refresh = data.validated_data.get("refresh")
        use_cookie = refresh is None
        if use_cookie:
            refresh = cookies.refresh_from_cookie(request)
            if refresh is None:
                raise serializers.ValidationError({"refresh": ["This field is required."]})
        pair = services.token_refresh(refresh=refresh, ip=client_ip(request))
        return _pair_response(request, pair, use_cookie=use_cookie)


class LogoutApi(APIView):
    """Revokes the presented access token and its login session (with every refresh token of it)."""

    authentication_classes = [JWTAuthentication]

    @extend_schema(summary="Log out: revoke this token and its session", request=None, responses={204: None})
    def post(self, request):
        services.logout(user=request.user, access_payload=request.auth, ip=client_ip(request))
        response = Response(status=status.HTTP_204_NO_CONTENT)
        cookies.clear_refresh_cookies(response)
        return response


class AccountDeleteInputSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"},
                                     help_text="The account's current password.")


class AccountDeletedSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="`deleting`: the account is closed; its data goes in the background.")


class MeApi(APIView):
    delete_takes_body = True  # DELETE: the password (layra.openapi documents it)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "UserUpdateInput"

        email = serializers.EmailField(required=False, allow_blank=True)
        first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
        last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)

    @extend_schema(summary="The current user", responses=UserOutputSerializer)
    def get(self, request):
        return Response(UserOutputSerializer(request.user).data)

    @extend_schema(summary="Update the current user's profile", request=InputSerializer,
                   responses={200: UserOutputSerializer, **errors(409)})
    def patch(self, request):
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        user = services.user_update(user=request.user, **data.validated_data)
        return Response(UserOutputSerializer(user).data)

    @extend_schema(
        summary="Delete your account and all its data (password required)", request=AccountDeleteInputSerializer,
        responses={202: AccountDeletedSerializer, **errors(400)},
        description="Deactivates the account at once (every token, API key and session stops working) and deletes "
                    "every knowledge base, file, vector, page image, conversation, workflow, chatflow, model "
                    "config, custom node, API key and session of it in the background. Cannot be undone.")
    def delete(self, request):
        data = AccountDeleteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account_delete_request(user=request.user, password=data.validated_data["password"], requested_by="self",
                               ip=client_ip(request))
        response = Response({"status": "deleting"}, status=status.HTTP_202_ACCEPTED)
        cookies.clear_refresh_cookies(response)
        return response


class PasswordChangeApi(APIView):
    """Changes the password; every other login session is revoked."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PasswordChangeInput"

        current_password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
        new_password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})

    @extend_schema(summary="Change the password (other sessions are revoked)", request=InputSerializer,
                   responses={204: None})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_change(user=request.user, **data.validated_data, session_id=_session_id(request),
                                 ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="key_id")
    name = serializers.CharField()
    masked_key = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)

    def get_masked_key(self, obj) -> str:
        return f"{obj.prefix}…"


class ApiKeyCreatedSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The key itself; shown only in this response.")


# An API key cannot mint or revoke keys: managing keys needs a login (bearer token or admin session).
_INTERACTIVE_AUTH = [JWTAuthentication, SessionAuthentication]


class ApiKeyListCreateApi(APIView):
    authentication_classes = _INTERACTIVE_AUTH

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ApiKeyCreateInput"

        name = serializers.CharField(max_length=100)
        expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=3650, allow_null=True)

    @extend_schema(summary="List your API keys (masked)", parameters=PAGE_PARAMETERS,
                   responses=paginated(ApiKeyOutputSerializer))
    def get(self, request):
        return page_response(request=request, view=self, items=selectors.api_key_list(user=request.user),
                             serializer=ApiKeyOutputSerializer)

    @extend_schema(summary="Create an API key (the key is shown once)", request=InputSerializer,
                   responses={201: ApiKeyCreatedSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record, key = services.api_key_create(user=request.user, **data.validated_data, ip=client_ip(request))
        record.key = key
        return Response(ApiKeyCreatedSerializer(record).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    authentication_classes = _INTERACTIVE_AUTH

    @extend_schema(summary="One API key (masked)", responses=ApiKeyOutputSerializer)
    def get(self, request, key_id: str):
        return Response(ApiKeyOutputSerializer(selectors.api_key_get(user=request.user, key_id=key_id)).data)

    @extend_schema(summary="Revoke an API key", responses={204: None})
    def delete(self, request, key_id: str):
        services.api_key_revoke(user=request.user, key_id=key_id, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

"""Django's own password logins (the admin's login form) go through the same backoff as the API's."""

from django.contrib.auth.backends import ModelBackend

from accounts.throttling import login_backoff_check, login_backoff_clear, login_backoff_failure
from layra.client_ip import client_ip
from layra.errors import RateLimited


class BackoffModelBackend(ModelBackend):
    """ModelBackend, with failures counted per username + client address: while that pair waits, even the right
    password is refused (the form shows its usual error)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return super().authenticate(request, username=username, password=password, **kwargs)
        ip = client_ip(request) if request is not None else None
        try:
            login_backoff_check(username=username, ip=ip)
        except RateLimited:
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_backoff_failure(username=username, ip=ip)
        else:
            login_backoff_clear(username=username, ip=ip)
        return user

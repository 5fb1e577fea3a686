"""System checks of the security settings (the refusals themselves happen when settings load)."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=False)
def ephemeral_keys(app_configs, **kwargs) -> list[checks.CheckMessage]:
    names = [name for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")
             if getattr(settings, f"{name}_EPHEMERAL", False)]
    if not names:
        return []
    return [checks.Warning(
        f"{' and '.join(names)} not set: a random key for this process only (DEBUG). Tokens and stored model API "
        "keys will not survive a restart or reach other processes.",
        hint="`python -m layra.keyfiles DATA_DIR` writes keys under DATA_DIR/secrets; settings read them there.",
        id="layra.W001",
    )]

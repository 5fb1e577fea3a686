"""Settings of the platform itself (Django, stores, Celery, API, security), read from the environment with
embedded defaults.

With nothing set the project runs on one machine: SQLite, a local SecantusDB
(MongoDB wire protocol), Milvus Lite under DATA_DIR, the filesystem for objects,
a local Redis and Celery eager. Every store is chosen by a URL-style variable.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ

from layra import keyfiles as _keyfiles

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(str(BASE_DIR / ".env"))

DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "data")))

# Off unless asked for, everywhere (`make run` included). With it off the process refuses to start on a missing,
# published or weak key (see the security block at the end).
DEBUG = env.bool("DEBUG", default=False)
# From SECRET_KEY, the file SECRET_KEY_FILE names, or DATA_DIR/secrets/secret_key (`make run` writes it).
SECRET_KEY = _keyfiles.read_secret(environ=os.environ, name="SECRET_KEY", data_dir=DATA_DIR)
SECRET_KEY_EPHEMERAL = DEBUG and not SECRET_KEY
if SECRET_KEY_EPHEMERAL:  # a developer's DEBUG process with no key: a random one, gone at exit (system check W001)
    SECRET_KEY = _keyfiles.new_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_prometheus",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "layra.apps.LayraConfig",
    "accounts.apps.AccountsConfig",
    "embeddings.apps.EmbeddingsConfig",
    "knowledge.apps.KnowledgeConfig",
    "chat.apps.ChatConfig",
    "workflows.apps.WorkflowsConfig",
    "operations.apps.OperationsConfig",
    "operations.mongo_admin",  # operator admin over the Mongo documents (/admin/mongo/)
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "layra.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, API docs) from STATIC_ROOT with DEBUG off: gunicorn serves them itself, no other server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "layra.urls"
WSGI_APPLICATION = "layra.wsgi.application"
ASGI_APPLICATION = "layra.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Stores -----------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("charset", "utf8mb4")
# Test database name can be made unique per checkout so parallel runs never collide.
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=None)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Keep connections across requests (a MySQL connect costs more than a typical API read); checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

MONGODB_URI = env.str("MONGODB_URI", default="mongodb://127.0.0.1:27018/layra?retryWrites=false")
MILVUS_URI = env.str("MILVUS_URI", default=str(DATA_DIR / "milvus.db"))
MILVUS_TOKEN = env.str("MILVUS_TOKEN", default="")
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379")
# One Redis db per purpose (DESIGN): tokens, progress, locks, caches; the broker has its own.
REDIS_DBS = {"token": 0, "task": 1, "lock": 2, "cache": 3, "ratelimit": 4}
REDIS_DBS.update(env.dict("REDIS_DBS", cast={"value": int}, default={}))

# Object storage: S3/MinIO when a bucket is set, else the filesystem under MEDIA_ROOT.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="")
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="")
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="us-east-1")
AWS_S3_ADDRESSING_STYLE = "path"
AWS_S3_SIGNATURE_VERSION = "s3v4"
AWS_DEFAULT_ACL = None
AWS_QUERYSTRING_EXPIRE = env.int("PRESIGNED_URL_TTL", default=3600)  # one hour, never a century
AWS_S3_FILE_OVERWRITE = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
MEDIA_URL = "/media/"
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    # collectstatic also writes .gz copies, which whitenoise sends to clients that accept them.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
STATIC_URL = "/static/"
# `make run` collects into DATA_DIR at each start; the image collects at build time into its own directory.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
# The web app's build (frontend/, `npm run build`): served at / with its assets under /assets/ (layra/spa.py).
FRONTEND_DIST = Path(env.str("FRONTEND_DIST", default=str(BASE_DIR / "frontend" / "dist")))

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=f"{REDIS_URL.rstrip('/')}/15")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not env.str("CELERY_BROKER_URL", default=""))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues: "ingest" converts and renders (CPU), "gpu" embeds (the GPU worker), the rest is "default".
CELERY_TASK_ROUTES = {
    "knowledge.ingest_file": {"queue": "ingest"},
    "knowledge.embed_file": {"queue": "gpu"},
}
# An unacked message (its worker died) is delivered again once visibility_timeout has passed, but only when a
# worker sweeps for such messages: kombu's prefork path sweeps every interval x throttle seconds (100 s by
# default, after the first sweep at start), so a throttle of 1 makes it every CELERY_UNACKED_RESTORE_INTERVAL s.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)
# No global soft limit: a task with a shorter time_limit of its own would fall below it and be refused.
CELERY_BEAT_SCHEDULE = {}

# --- Embeddings ---------------------------------------------------------------
EMBEDDER = env.str("EMBEDDER", default="minilm")  # "minilm" (CPU) or "colqwen"
# MiniLM weights in bfloat16 where the CPU computes it natively (avx512_bf16 / AMX): twice the pages per second,
# token vectors within cosine 0.9998 of float32. "auto", "bfloat16" or "float32".
MINILM_DTYPE = env.str("MINILM_DTYPE", default="auto")
COLQWEN_MODEL = env.str("COLQWEN_MODEL", default="vidore/colqwen2.5-v0.2")
COLQWEN_BATCH_SIZE = env.int("COLQWEN_BATCH_SIZE", default=4)
COLQWEN_MAX_NUM_VISUAL_TOKENS = env.int("COLQWEN_MAX_NUM_VISUAL_TOKENS", default=768)
MILVUS_SEARCH_EF = env.int("MILVUS_SEARCH_EF", default=100)
# Index on file_id / image_id: INVERTED (Milvus 2.4+ and Lite); "Trie" for a Milvus 2.3 server.

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "layra.pagination.PagePagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "layra.exception_handler.exception_handler",
    # Tags per app, the Error component on every error response, slash-less aliases deprecated.
    "DEFAULT_SCHEMA_CLASS": "layra.openapi.ApiAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LAYRA API",
    "DESCRIPTION": "Visual-first RAG: knowledge bases, ingestion, retrieval, chat and workflows.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "layra.openapi.document_conventions"],
    # Swagger UI assets from the sidecar package: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "accounts.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "accounts.hashers.LegacySHA256PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default=SECRET_KEY)
JWT_ACCESS_TTL = timedelta(seconds=env.int("JWT_ACCESS_TTL", default=15 * 60))
JWT_REFRESH_TTL = timedelta(seconds=env.int("JWT_REFRESH_TTL", default=14 * 24 * 3600))

# Per-scope rate limits: "count/seconds".
RATE_LIMITS = {
    "login": "10/60",
    "register": "5/60",
    "upload": "30/60",
    "chat": "30/60",
    "search": "120/60",
    "default": "600/60",
}
RATE_LIMITS.update(env.dict("RATE_LIMITS", default={}))
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)

# Keys encrypting model API keys at rest: FIELD_ENCRYPTION_KEYS, in the security block at the end.

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security (production values via env; `check --deploy` is clean with DEBUG=False) ---
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Production runs behind a TLS proxy (docker-compose.yml's `proxy`) that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Off unless a TLS proxy is in front (compose sets it): redirecting to an https nobody serves breaks every client.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Container healthchecks and scrapers call the process itself over plain http: never redirected.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "layra.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "layra.logging.JsonFormatter",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pymongo": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}

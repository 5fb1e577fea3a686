"""Settings, read from the environment with embedded defaults.

With nothing set the project runs on one machine: SQLite, a local SecantusDB
(MongoDB wire protocol), Milvus Lite under DATA_DIR, the filesystem for objects,
a local Redis and Celery eager. Every store is chosen by a URL-style variable.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from layra import keyfiles as _keyfiles

BASE_DIR = Path(__file__).resolve().parent.parent

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
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"

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
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LAYRA API",
    "DESCRIPTION": "Visual-first RAG: knowledge bases, ingestion, retrieval, chat and workflows.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
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
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
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

# --- App settings: each app adds its own below its header (keeps parallel work mergeable) ---

# --- accounts ---
JWT_ALGORITHM = "HS256"
# Argon2id cost (OWASP's recommended minimum by default); raise it where logins are rare and CPU is plentiful.
ARGON2_TIME_COST = env.int("ARGON2_TIME_COST", default=2)
ARGON2_MEMORY_COST_KIB = env.int("ARGON2_MEMORY_COST_KIB", default=19456)
ARGON2_PARALLELISM = env.int("ARGON2_PARALLELISM", default=1)
# Hashes run on this many threads per process at this nice value (accounts.hash_pool): a login burst then takes
# only the CPU that API reads leave. 0 threads hashes on the request's own thread.
PASSWORD_HASH_THREADS = env.int("PASSWORD_HASH_THREADS", default=2)
PASSWORD_HASH_NICE = env.int("PASSWORD_HASH_NICE", default=10)
# A session's / API key's last activity is written at most this often.
ACCOUNTS_ACTIVITY_RESOLUTION = env.int("ACCOUNTS_ACTIVITY_RESOLUTION", default=60)

# --- embeddings ---
SEARCH_CANDIDATES_PER_TOKEN = env.int("SEARCH_CANDIDATES_PER_TOKEN", default=20)
SEARCH_PAGE_CACHE_MB = env.int("SEARCH_PAGE_CACHE_MB", default=512)  # per process, float32 page vectors
# Per process: page images a chat turn sends to the model (its cited pages, and those of the last turns).
PAGE_IMAGE_CACHE_MB = env.int("PAGE_IMAGE_CACHE_MB", default=64)
SEARCH_PAGE_VECTORS_TTL_S = env.int("SEARCH_PAGE_VECTORS_TTL_S", default=7 * 24 * 3600)  # Redis tier
BENCH_MILVUS_URI = env.str("BENCH_MILVUS_URI", default="")  # "": a private standalone server (bench_retrieval)
# Hybrid retrieval (embeddings/README.md): the lexical engine and the rank fusion of both sides.
# auto: Milvus BM25 when the server has it (2.5+, Lite 3.x), else SQLite FTS5 in LEXICAL_SQLITE_PATH, one file
# every process of this host opens (the default stack, whose Milvus 2.3 has no BM25).
LEXICAL_BACKEND = env.str("LEXICAL_BACKEND", default="auto")
LEXICAL_SQLITE_PATH = env.str("LEXICAL_SQLITE_PATH", default=str(DATA_DIR / "lexical.sqlite3"))
# convex: min-max normalised scores, SEARCH_LEXICAL_ALPHA of them lexical; rrf: weighted reciprocal rank fusion.
# Chosen on bench_quality's sweep (embeddings/README.md): convex at equal weight beats either side alone, RRF not.
SEARCH_FUSION = env.str("SEARCH_FUSION", default="convex")
SEARCH_LEXICAL_ALPHA = env.float("SEARCH_LEXICAL_ALPHA", default=0.5)
SEARCH_DENSE_WEIGHT = env.float("SEARCH_DENSE_WEIGHT", default=1.0)
SEARCH_LEXICAL_WEIGHT = env.float("SEARCH_LEXICAL_WEIGHT", default=1.0)
SEARCH_RRF_K = env.float("SEARCH_RRF_K", default=60.0)
SEARCH_FUSION_DEPTH = env.int("SEARCH_FUSION_DEPTH", default=20)  # pages each side proposes
SEARCH_STRONG_AFTER_WRITE_S = env.int("SEARCH_STRONG_AFTER_WRITE_S", default=30)
SEARCH_SNIPPET_CHARS = env.int("SEARCH_SNIPPET_CHARS", default=240)
# make run's Milvus when MILVUS_URI names a local port nobody answers on: `standalone` (the `milvus` package's
# 2.3 server: fast, no BM25) or `lite` (Milvus Lite 3.x: BM25, but ~200 ms a call).
PAGE_IMAGE_URL_TTL_S = min(env.int("PAGE_IMAGE_URL_TTL_S", default=600), 900)  # signed image URLs, ≤ 15 min
PAGE_THUMBNAIL_PX = env.int("PAGE_THUMBNAIL_PX", default=320)
EMBEDDED_MILVUS = env.str("EMBEDDED_MILVUS", default="standalone")

# --- knowledge ---
KNOWLEDGE_MAX_UPLOAD_BYTES = env.int("KNOWLEDGE_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
KNOWLEDGE_MAX_BATCH_FILES = env.int("KNOWLEDGE_MAX_BATCH_FILES", default=20)
KNOWLEDGE_MAX_PAGES = env.int("KNOWLEDGE_MAX_PAGES", default=1000)
KNOWLEDGE_MAX_IMAGE_PIXELS = env.int("KNOWLEDGE_MAX_IMAGE_PIXELS", default=50_000_000)
KNOWLEDGE_MAX_UNZIPPED_BYTES = env.int("KNOWLEDGE_MAX_UNZIPPED_BYTES", default=500 * 1024 * 1024)
KNOWLEDGE_RENDER_DPI = env.int("KNOWLEDGE_RENDER_DPI", default=110)
KNOWLEDGE_PAGE_JPEG_QUALITY = env.int("KNOWLEDGE_PAGE_JPEG_QUALITY", default=80)
KNOWLEDGE_PAGE_BATCH = env.int("KNOWLEDGE_PAGE_BATCH", default=16)  # progress + storage batch
KNOWLEDGE_EMBED_BATCH = env.int("KNOWLEDGE_EMBED_BATCH", default=64)
KNOWLEDGE_SOFFICE = env.str("KNOWLEDGE_SOFFICE", default="soffice")
KNOWLEDGE_SOFFICE_TIMEOUT = env.int("KNOWLEDGE_SOFFICE_TIMEOUT", default=180)
KNOWLEDGE_KB_CACHE_TTL = env.int("KNOWLEDGE_KB_CACHE_TTL", default=30 * 60)
KNOWLEDGE_TASK_PROGRESS_TTL = env.int("KNOWLEDGE_TASK_PROGRESS_TTL", default=3600)
KNOWLEDGE_TASK_TIME_LIMIT = env.int("KNOWLEDGE_TASK_TIME_LIMIT", default=1800)
# Per-file step lock: refreshed every page batch, so a killed worker's lock lapses after the TTL.
KNOWLEDGE_STEP_LOCK_TTL = env.int("KNOWLEDGE_STEP_LOCK_TTL", default=120)
KNOWLEDGE_STEP_LOCK_WAIT = env.int("KNOWLEDGE_STEP_LOCK_WAIT", default=10)
KNOWLEDGE_SSE_POLL_SECONDS = env.float("KNOWLEDGE_SSE_POLL_SECONDS", default=0.5)
KNOWLEDGE_SSE_MAX_SECONDS = env.int("KNOWLEDGE_SSE_MAX_SECONDS", default=3600)

# --- chat ---
CHAT_MODEL_CONFIG_CACHE_TTL = env.int("CHAT_MODEL_CONFIG_CACHE_TTL", default=30 * 60)
# Seconds without a byte from the model; for a non-streaming answer (?stream=false) the whole answer's time.
CHAT_LLM_TIMEOUT = env.float("CHAT_LLM_TIMEOUT", default=120.0)
CHAT_SSE_KEEPALIVE = env.float("CHAT_SSE_KEEPALIVE", default=15.0)  # comment line while the model is silent
CHAT_MAX_QUESTION_LENGTH = env.int("CHAT_MAX_QUESTION_LENGTH", default=20000)
CHAT_HISTORY_TURNS = env.int("CHAT_HISTORY_TURNS", default=20)  # earlier turns of the branch sent as history
# The last N of those turns are sent with their cited page images again (images cost many tokens; 0 = none).
CHAT_HISTORY_IMAGE_TURNS = env.int("CHAT_HISTORY_IMAGE_TURNS", default=2)
CHAT_DEFAULT_SYSTEM_PROMPT = env.str(
    "CHAT_DEFAULT_SYSTEM_PROMPT",
    default="You are a helpful assistant. When document pages are provided, answer from them and cite them as [n].",
)
CHAT_PAGE_TEXT_CHARS = env.int("CHAT_PAGE_TEXT_CHARS", default=4000)  # text layer per cited page sent to the model

# --- workflows ---
WORKFLOW_HTTP_ALLOWED_HOSTS = env.list("WORKFLOW_HTTP_ALLOWED_HOSTS", default=[])
WORKFLOW_HTTP_ALLOW_PRIVATE = env.bool("WORKFLOW_HTTP_ALLOW_PRIVATE", default=False)
WORKFLOW_HTTP_TIMEOUT_S = env.float("WORKFLOW_HTTP_TIMEOUT_S", default=10.0)
WORKFLOW_HTTP_MAX_RESPONSE_BYTES = env.int("WORKFLOW_HTTP_MAX_RESPONSE_BYTES", default=1_000_000)
WORKFLOW_HTTP_MAX_REDIRECTS = env.int("WORKFLOW_HTTP_MAX_REDIRECTS", default=5)
WORKFLOW_CODE_TIMEOUT_S = env.float("WORKFLOW_CODE_TIMEOUT_S", default=5.0)
WORKFLOW_CODE_MEMORY_MB = env.int("WORKFLOW_CODE_MEMORY_MB", default=256)
WORKFLOW_CODE_MAX_OUTPUT_BYTES = env.int("WORKFLOW_CODE_MAX_OUTPUT_BYTES", default=1_000_000)
# Code nodes run under bubblewrap (workflows/SANDBOX.md): per execution, processes and memory are per sandbox
# (RLIMIT_NPROC counted in its own user namespace, RLIMIT_AS per process); the work dir is a tmpfs of TMPFS_MB.
WORKFLOW_CODE_MAX_PROCESSES = env.int("WORKFLOW_CODE_MAX_PROCESSES", default=16)
WORKFLOW_CODE_MAX_FILE_MB = env.int("WORKFLOW_CODE_MAX_FILE_MB", default=10)
WORKFLOW_CODE_MAX_OPEN_FILES = env.int("WORKFLOW_CODE_MAX_OPEN_FILES", default=64)
WORKFLOW_CODE_TMPFS_MB = env.int("WORKFLOW_CODE_TMPFS_MB", default=16)
SANDBOX_BWRAP = env.str("SANDBOX_BWRAP", default="bwrap")
SANDBOX_PYTHON = env.str("SANDBOX_PYTHON", default="")  # "": /usr/bin/python3, /usr/local/bin/python3, the worker's
SANDBOX_UID = env.int("SANDBOX_UID", default=65534)  # the host uid a root worker switches to (nobody)
SANDBOX_GID = env.int("SANDBOX_GID", default=65534)
WORKFLOW_MAX_STEPS = env.int("WORKFLOW_MAX_STEPS", default=500)
WORKFLOW_SSE_POLL_SECONDS = env.float("WORKFLOW_SSE_POLL_SECONDS", default=0.3)  # a run's event stream
WORKFLOW_SSE_MAX_SECONDS = env.int("WORKFLOW_SSE_MAX_SECONDS", default=600)
WORKFLOW_MAX_RUN_SECONDS = env.int("WORKFLOW_MAX_RUN_SECONDS", default=600)
WORKFLOW_MAX_OUTPUT_BYTES = env.int("WORKFLOW_MAX_OUTPUT_BYTES", default=2_000_000)
WORKFLOW_LOOP_MAX_ITERATIONS = env.int("WORKFLOW_LOOP_MAX_ITERATIONS", default=1000)
WORKFLOW_STUCK_AFTER_S = env.int("WORKFLOW_STUCK_AFTER_S", default=300)
WORKFLOW_MAX_RESUMES = env.int("WORKFLOW_MAX_RESUMES", default=3)
# A chatflow message waits this long for its run's answer, then answers 202 with the run id (turn recorded later).
CHATFLOW_REPLY_TIMEOUT_S = env.float("CHATFLOW_REPLY_TIMEOUT_S", default=60.0)
CELERY_BEAT_SCHEDULE["workflows-runs-check-stuck"] = {"task": "workflows.runs_check_stuck", "schedule": 60.0}

# --- operators ---
OPS_STUCK_JOB_AFTER_S = env.int("OPS_STUCK_JOB_AFTER_S", default=1800)  # stalled: requeue once, then fail
OPS_SOFT_DELETE_RETENTION_DAYS = env.int("OPS_SOFT_DELETE_RETENTION_DAYS", default=7)
OPS_CLEANUP_HOUR = env.int("OPS_CLEANUP_HOUR", default=3)  # nightly cleanup, UTC
OPS_STUCK_CHECK_EVERY_S = env.int("OPS_STUCK_CHECK_EVERY_S", default=300)
# Keep LOGGING's JSON handler in workers (Celery would otherwise replace the root logger's handlers).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
from celery.schedules import crontab as _crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    **CELERY_BEAT_SCHEDULE,
    "operations.nightly_cleanup": {"task": "operations.nightly_cleanup",
                              "schedule": _crontab(minute=0, hour=OPS_CLEANUP_HOUR),
                              "options": {"queue": "default"}},
    "operations.stuck_jobs": {"task": "operations.stuck_jobs", "schedule": float(OPS_STUCK_CHECK_EVERY_S),
                         "options": {"queue": "default"}},
}

# --- query embedding (embeddings/query.py) ---
# Where a search's query is embedded. Unset: in-process for CPU embedders (minilm), on the GPU worker for colqwen
# (the web process never loads a 3.75B model on CPU); "true"/"false" overrides. Eager Celery (no broker) always
# embeds in-process.
QUERY_EMBED_REMOTE = env.bool("QUERY_EMBED_REMOTE") if env.str("QUERY_EMBED_REMOTE", default="") else None
# How long a search waits for a GPU worker to answer before a 503 (`embedder_unavailable`); the message expires
# on the broker after the same time, so a worker that comes back later drops stale queries.
QUERY_EMBED_TIMEOUT_S = env.float("QUERY_EMBED_TIMEOUT_S", default=10.0)
# Its own queue, so a query never waits behind a page-embedding batch on the "gpu" queue.
CELERY_TASK_ROUTES["embeddings.embed_query"] = {"queue": "gpu_query"}
# GPU workers: load the embedder as each worker process starts (embeddings/tasks.py), not on its first task.
WORKER_PRELOAD_EMBEDDER = env.bool("WORKER_PRELOAD_EMBEDDER", default=False)
# --- abuse limits (issue 20): client address, throttles, login backoff, upload and render caps ---
# Reverse proxies of ours in front of the app. 0: X-Forwarded-For is ignored (anyone can send it); N: the N-th
# address from its right is the client's (layra.client_ip, the one place the address is read).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
REST_FRAMEWORK["NUM_PROXIES"] = NUM_PROXIES
# Every authenticated API request counts against its user's "read" (GET/HEAD/OPTIONS) or "write" budget;
# chat turns, workflow runs and chatflow messages also against their own (accounts.throttling).
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["accounts.throttling.UserRateThrottle"]
_TURN_RATE = env.str("RATE_LIMIT_TURN", default=RATE_LIMITS["chat"])
RATE_LIMITS = {
    "read": env.str("RATE_LIMIT_READ", default="600/60"),
    "write": env.str("RATE_LIMIT_WRITE", default="120/60"),
    "workflow_run": _TURN_RATE,
    "chatflow_message": _TURN_RATE,
    **RATE_LIMITS,
    "chat": _TURN_RATE,
}
# Login: failures are counted per username + client address (a stranger elsewhere never locks the owner out).
# After LOGIN_BACKOFF_FREE_FAILURES, each failure closes that pair for LOGIN_BACKOFF_BASE_S, doubling per further
# failure up to LOGIN_BACKOFF_MAX_S; the count is forgotten LOGIN_BACKOFF_RESET_S after the last failure.
LOGIN_BACKOFF_FREE_FAILURES = env.int("LOGIN_BACKOFF_FREE_FAILURES", default=3)
LOGIN_BACKOFF_BASE_S = env.float("LOGIN_BACKOFF_BASE_S", default=1.0)
LOGIN_BACKOFF_MAX_S = env.float("LOGIN_BACKOFF_MAX_S", default=15 * 60.0)
LOGIN_BACKOFF_RESET_S = env.int("LOGIN_BACKOFF_RESET_S", default=24 * 3600)
AUTHENTICATION_BACKENDS = ["accounts.backends.BackoffModelBackend"]  # the admin's login form backs off too
# One upload request, all files together (a larger Content-Length answers 413 before the body is read); other
# bodies (JSON, form fields) at most DATA_UPLOAD_MAX_MEMORY_SIZE. Uploaded files over FILE_UPLOAD_MAX_MEMORY_SIZE
# are spooled to a temporary file (FILE_UPLOAD_TEMP_DIR) and copied to storage in chunks.
MAX_UPLOAD_REQUEST_BYTES = env.int("MAX_UPLOAD_REQUEST_BYTES", default=2 * KNOWLEDGE_MAX_UPLOAD_BYTES)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
FILE_UPLOAD_TEMP_DIR = env.str("FILE_UPLOAD_TEMP_DIR", default="") or None
MIDDLEWARE.insert(MIDDLEWARE.index("layra.middleware.RequestIdMiddleware") + 1,
                  "layra.middleware.RequestSizeLimitMiddleware")
# A text upload is at most this many bytes (1,000 full pages of text are about 5 MB); its pages are counted at
# upload against KNOWLEDGE_MAX_PAGES like a PDF's.
KNOWLEDGE_MAX_TEXT_BYTES = env.int("KNOWLEDGE_MAX_TEXT_BYTES", default=10 * 1024 * 1024)
# A rendered page never has more pixels than this: a page with a huge MediaBox is rendered at a smaller scale.
MAX_PAGE_PIXELS = env.int("MAX_PAGE_PIXELS", default=5_000_000)
# --- security boundary (issue 20): secrets, outbound requests, metrics ---
# Fernet keys for model API keys at rest (chat.crypto), comma-separated: the first encrypts, all decrypt; rotate
# with `manage.py rotate_field_keys`. From FIELD_ENCRYPTION_KEYS (FIELD_ENCRYPTION_KEY, one key, is read too),
# FIELD_ENCRYPTION_KEYS_FILE, or DATA_DIR/secrets/field_encryption_keys (`make run` writes it).
try:
    FIELD_ENCRYPTION_KEYS = _keyfiles.field_keys_parse(
        _keyfiles.read_secret(environ=os.environ, name="FIELD_ENCRYPTION_KEYS", data_dir=DATA_DIR)
        or env.str("FIELD_ENCRYPTION_KEY", default=""))
except ValueError as _exc:
    raise ImproperlyConfigured(str(_exc)) from None
FIELD_ENCRYPTION_KEYS_EPHEMERAL = DEBUG and not FIELD_ENCRYPTION_KEYS
if FIELD_ENCRYPTION_KEYS_EPHEMERAL:
    FIELD_ENCRYPTION_KEYS = [_keyfiles.new_field_key()]
if not DEBUG:
    _keys = {"SECRET_KEY": SECRET_KEY}
    if JWT_SIGNING_KEY != SECRET_KEY:
        _keys["JWT_SIGNING_KEY"] = JWT_SIGNING_KEY
    _problems = [f"{name} {problem}" for name, value in _keys.items()
                 if (problem := _keyfiles.secret_key_problem(value))]
    if not FIELD_ENCRYPTION_KEYS:
        _problems.append("FIELD_ENCRYPTION_KEYS is not set")
    if _problems:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off: " + "; ".join(_problems) + ". Set SECRET_KEY (50+ "
            "random characters) and FIELD_ENCRYPTION_KEYS (Fernet keys), or their *_FILE variables; "
            "`python -m layra.keyfiles DATA_DIR` writes both under DATA_DIR/secrets.")

# Model endpoints (chat answers, workflow LLM nodes) reach public addresses only. Operators allow a local model
# server here: URLs (that scheme, host and port, paths below) or CIDRs (any port), comma-separated. Users cannot.
MODEL_ENDPOINT_ALLOWLIST = env.list("MODEL_ENDPOINT_ALLOWLIST", default=[])
try:
    from layra.netguard import parse_allowlist as _parse_allowlist

    _parse_allowlist(MODEL_ENDPOINT_ALLOWLIST)
except ValueError as _exc:
    raise ImproperlyConfigured(f"MODEL_ENDPOINT_ALLOWLIST: {_exc}") from None

# /metrics: a request with `Authorization: Bearer <METRICS_TOKEN>` (when set), or from an address in
# METRICS_ALLOWED_NETWORKS (CIDRs; loopback by default: a Prometheus on the host or a sidecar).
METRICS_TOKEN = _keyfiles.read_secret(environ=os.environ, name="METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
try:
    [ipaddress.ip_network(_n, strict=False) for _n in METRICS_ALLOWED_NETWORKS]
except ValueError as _exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_exc}") from None

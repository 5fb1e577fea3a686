"""Settings of each app, below its header (keeps parallel work mergeable), read from the environment with
embedded defaults. Read after layra/settings/core.py, whose values some of these extend."""

import ipaddress
import os

from django.core.exceptions import ImproperlyConfigured

from layra import keyfiles as _keyfiles
from layra.settings.core import (
    CELERY_BEAT_SCHEDULE,
    CELERY_TASK_ROUTES,
    DATA_DIR,
    DEBUG,
    JWT_SIGNING_KEY,
    MIDDLEWARE,
    RATE_LIMITS,
    REST_FRAMEWORK,
    SECRET_KEY,
    env,
)

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
# A KB whose float32 rows fit SEARCH_EXACT_MAX_MB is scored exactly in process (no ANN call; 0 turns it off),
# holding up to SEARCH_EXACT_CACHE_MB of such matrices per process (embeddings/exact.py).
SEARCH_EXACT_MAX_MB = env.float("SEARCH_EXACT_MAX_MB", default=64.0)
SEARCH_EXACT_CACHE_MB = env.int("SEARCH_EXACT_CACHE_MB", default=256)
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
# Search filters (file_ids, filename, upload dates) resolve to at most this many file ids; more is a 400.
SEARCH_FILTER_MAX_FILES = env.int("SEARCH_FILTER_MAX_FILES", default=10000)
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
# Per-file step lock (layra.locks): a heartbeat thread renews it every TTL/4. A killed worker's lock is taken over
# at once by a redelivery on the same host (its pid is gone) and lapses after the TTL for one on another host.
KNOWLEDGE_STEP_LOCK_TTL = env.int("KNOWLEDGE_STEP_LOCK_TTL", default=20)
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
# A running run's heartbeat (every WORKFLOW_STUCK_AFTER_S / 5, by a thread) older than this: its worker is gone.
# A redelivered run whose owner process is gone on the same host is claimed at once (layra.owner).
WORKFLOW_STUCK_AFTER_S = env.int("WORKFLOW_STUCK_AFTER_S", default=60)
WORKFLOW_MAX_RESUMES = env.int("WORKFLOW_MAX_RESUMES", default=3)
# A chatflow message waits this long for its run's answer, then answers 202 with the run id (turn recorded later).
CHATFLOW_REPLY_TIMEOUT_S = env.float("CHATFLOW_REPLY_TIMEOUT_S", default=60.0)
CELERY_BEAT_SCHEDULE["workflows-runs-check-stuck"] = {"task": "workflows.runs_check_stuck", "schedule": 60.0}

# --- operators ---
OPS_STUCK_JOB_AFTER_S = env.int("OPS_STUCK_JOB_AFTER_S", default=1800)  # stalled: requeue once, then fail
# Items in the trash (knowledge bases, files, conversations, workflows) are purged by the nightly cleanup this many
# days after their delete (OPS_SOFT_DELETE_RETENTION_DAYS: its older name).
TRASH_RETENTION_DAYS = env.int("TRASH_RETENTION_DAYS", default=env.int("OPS_SOFT_DELETE_RETENTION_DAYS", default=7))
# Conversations with no activity for this many days are purged by the nightly cleanup; unset keeps them.
CONVERSATION_RETENTION_DAYS = env.int("CONVERSATION_RETENTION_DAYS", default=None)
OPS_CLEANUP_HOUR = env.int("OPS_CLEANUP_HOUR", default=3)  # nightly cleanup, UTC
OPS_STUCK_CHECK_EVERY_S = env.int("OPS_STUCK_CHECK_EVERY_S", default=300)
# Scheduled backup (operations/backup_schedule.py): daily at OPS_BACKUP_HOUR UTC into OPS_BACKUP_DIR, then rotation
# keeps the newest backup of each of the last KEEP_DAILY days and of each of the last KEEP_WEEKLY ISO weeks.
# OPS_BACKUP_ENABLED=false leaves it out of the beat schedule (backups made another way).
OPS_BACKUP_ENABLED = env.bool("OPS_BACKUP_ENABLED", default=True)
OPS_BACKUP_DIR = env.str("OPS_BACKUP_DIR", default=str(DATA_DIR / "backups"))
OPS_BACKUP_HOUR = env.int("OPS_BACKUP_HOUR", default=2)
OPS_BACKUP_KEEP_DAILY = env.int("OPS_BACKUP_KEEP_DAILY", default=7)
OPS_BACKUP_KEEP_WEEKLY = env.int("OPS_BACKUP_KEEP_WEEKLY", default=4)
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
if OPS_BACKUP_ENABLED:
    CELERY_BEAT_SCHEDULE["operations.scheduled_backup"] = {
        "task": "operations.scheduled_backup", "schedule": _crontab(minute=0, hour=OPS_BACKUP_HOUR),
        "options": {"queue": "default"}}

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

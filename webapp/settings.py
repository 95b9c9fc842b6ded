"""Reverie settings: every value comes from the environment, with embedded defaults.

With no variables set the service boots on SQLite and a bundled Redis (see
`webapp.embedded_redis`); production passes DATABASE_URL, REDIS_URL, SECRET_KEY and friends.
Env variables have the same name as the setting they fill.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url

from inference import SHIPPED_CHECKPOINT
from webapp.env import env_bool, env_float, env_int, env_json, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent


def redis_url_with_db(url: str, db_offset: int) -> str:
    """The same Redis with the database number moved by `db_offset` (redis://h:p/0 -> /1)."""
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0) + db_offset
    return urlunsplit(parts._replace(path=f"/{db}"))


DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
(DATA_DIR / "static").mkdir(exist_ok=True)

DEBUG = env_bool("DEBUG", False)
# An embedded default key is fine for the laptop setup; check `reverie.E005` refuses it when it is
# used with DEBUG off and a non-local ALLOWED_HOSTS.
SECRET_KEY = env_str("SECRET_KEY", "reverie-insecure-development-key-change-me")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_NAME = env_str("SITE_NAME", "Reverie")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "webapp.accounts",
    "webapp.worlds",
    "webapp.fleet",
    "webapp.queue",
    "webapp.play",
    "webapp",
]

MIDDLEWARE = [
    "webapp.health.HealthMiddleware",  # first: probes by IP are answered, see webapp/health.py
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.context_processors.site",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
SQLITE_PATH = DATA_DIR / "reverie.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}")
# Seconds a database connection is kept for the next request or websocket call (0: a new one
# each time). On PostgreSQL every new connection forks a server process, which costs more than
# the queries of a queue page's heartbeat; deploy/ sets 60. Kept connections are checked before
# reuse, so a restarted database costs one failed check, not an error page.
DATABASE_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 0)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=DATABASE_CONN_MAX_AGE,
        conn_health_checks=DATABASE_CONN_MAX_AGE > 0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and IMMEDIATE transactions let the web server, beat and the workers share one file
    # without "database is locked"; the test database is a file so that other processes
    # (dispatcher races, the e2e server) see it.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # One file per test run, so two runs in one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-reverie-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache ------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
EMBEDDED_REDIS_DIR = DATA_DIR / "redis"
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 0)  # 0: derived from DATA_DIR
# Without REDIS_URL the service uses the embedded Redis; importing the settings only names it,
# and what needs it starts it (webapp.embedded_redis.start_if_embedded).
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    from webapp.embedded_redis import default_port, embedded_url

    EMBEDDED_REDIS_PORT = EMBEDDED_REDIS_PORT or default_port(DATA_DIR)
    REDIS_URL = embedded_url(EMBEDDED_REDIS_DIR, EMBEDDED_REDIS_PORT)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNEL_PREFIX", "reverie")},
    }
}
# The cache (rate-limit counters) lives in the next database number, so clearing it never
# touches Celery's queues or the channel layer.
CACHE_URL = env_str("CACHE_URL", "") or redis_url_with_db(REDIS_URL, 1)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": env_str("CACHE_PREFIX", "reverie"),
    }
}

# --- Accounts --------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts-login"
LOGIN_REDIRECT_URL = "worlds-lobby"
LOGOUT_REDIRECT_URL = "worlds-lobby"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["webapp.accounts.backends.CaseInsensitiveModelBackend"]
LOGIN_RATE = env_str("LOGIN_RATE", "10/m")
SIGNUP_RATE = env_str("SIGNUP_RATE", "5/m")
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
# Reverse proxies (IPs or CIDRs) whose X-Forwarded-For names the client; empty: none, and the
# client is the connection's address. Rate limits count that client (webapp/accounts/client_ip.py).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
RATELIMIT_IP_META_KEY = "webapp.accounts.client_ip.client_ip"
# Whether players reach the site over TLS (here or at a proxy in front): cookies are then sent
# only over HTTPS. Off for plain-HTTP serving (compose as shipped, `make up`), where secure
# cookies would make every log-in fail its CSRF check.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)

# --- Queue and session limits ------------------------------------------------------------------
QUEUE_CONFIRM_SECONDS = env_int("QUEUE_CONFIRM_SECONDS", 20)
QUEUE_HEARTBEAT_SECONDS = env_int("QUEUE_HEARTBEAT_SECONDS", 5)
QUEUE_HEARTBEAT_TIMEOUT = env_int("QUEUE_HEARTBEAT_TIMEOUT", 30)
QUEUE_PRIORITY_SHARE = env_float("QUEUE_PRIORITY_SHARE", 0.5)
QUEUE_FRONT_PASS_SECONDS = env_int("QUEUE_FRONT_PASS_SECONDS", 600)
SESSION_SECONDS = env_int("SESSION_SECONDS", 300)
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 60)
SESSION_IDLE_WARNING_SECONDS = env_int("SESSION_IDLE_WARNING_SECONDS", 15)
SESSION_DISCONNECT_GRACE = env_int("SESSION_DISCONNECT_GRACE", 20)
DAILY_SESSIONS = env_int("DAILY_SESSIONS", 20)
DAILY_MINUTES = env_int("DAILY_MINUTES", 60)

WORLD_UPLOAD_MAX_BYTES = env_int("WORLD_UPLOAD_MAX_BYTES", 5 * 1024 * 1024)
WORLD_UPLOADS_PER_USER = env_int("WORLD_UPLOADS_PER_USER", 10)
DATA_UPLOAD_MAX_MEMORY_SIZE = WORLD_UPLOAD_MAX_BYTES + 1024 * 1024

# --- Fleet -----------------------------------------------------------------------------------
WORKER_POOL = env_str("WORKER_POOL", "default")
WORKER_SLOTS = env_int("WORKER_SLOTS", 0)  # 0: take the pool's slots_per_worker
WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", 2.0)
WORKER_TIMEOUT = env_int("WORKER_TIMEOUT", 10)
# Empty: the rollout engine for a pool with a checkpoint, the placeholder picture otherwise.
WORKER_RUNTIME = env_str("WORKER_RUNTIME", "")
# Threads a CPU pool's model computes with; 0: all cores but one, which the video encoder, the
# peer connections and (on a laptop) the player's own browser need. Measured on two cores: one
# thread plays the default model in the browser faster than two that fight the browser.
WORKER_CPU_THREADS = env_int("WORKER_CPU_THREADS", 0)
# The model runs in a child process of the worker, sharing no GIL with the video streaming
# (inference/process_runtime.py); off, it runs on the worker's device-loop thread.
WORKER_MODEL_PROCESS = env_bool("WORKER_MODEL_PROCESS", True)
# A player's key or button change brings the next frame forward when the device has slack
# (webapp/worker/device_loop.py); off, frames keep the fixed cadence. Measured: bench/players.py.
WORKER_EARLY_TICKS = env_bool("WORKER_EARLY_TICKS", True)
REAPER_INTERVAL = env_float("REAPER_INTERVAL", 2.0)
# SIGTERM (or admin's drain) lets live sessions play on for at most this long, then ends them
# as "worker shut down" with the front of the queue; orchestrators' grace periods exceed it.
WORKER_DRAIN_SECONDS = env_float("WORKER_DRAIN_SECONDS", 300.0)
# A GPU worker's /healthz, /readyz and /metrics (webapp/worker/observe.py); port 0: none.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)
WORKER_METRICS_ADDRESS = env_str("WORKER_METRICS_ADDRESS", "0.0.0.0")
# When set, /metrics (web and workers) needs "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Where models live: a pool's checkpoint is stored relative to this directory, so a database
# seeded on one host serves workers whose checkout (or image) sits elsewhere.
MODELS_DIR = Path(env_str("MODELS_DIR", str(BASE_DIR / "models")))
# The one default model file: the default pool runs it (seedservice), and so does a pool without
# a checkpoint of its own whose WORKER_RUNTIME is the engine. Default: the model this repository
# ships (inference.SHIPPED_CHECKPOINT) when present; "none": the placeholder picture plays.
DEFAULT_CHECKPOINT = env_str(
    "DEFAULT_CHECKPOINT", str(SHIPPED_CHECKPOINT) if SHIPPED_CHECKPOINT.exists() else "none"
)
DEFAULT_CHECKPOINT = "" if DEFAULT_CHECKPOINT.lower() == "none" else DEFAULT_CHECKPOINT
# Starting scenes recorded from the teacher game; placeholders are drawn when absent.
WORLD_SCENES_DIR = Path(env_str("WORLD_SCENES_DIR", str(MODELS_DIR / "worlds")))

# --- WebRTC / streaming ----------------------------------------------------------------------
# JSON list of RTCIceServer dicts; empty by default so nothing is contacted unasked.
ICE_SERVERS = env_json("ICE_SERVERS", "[]")
# A TURN relay (coturn with use-auth-secret): its turn:/turns: URLs, and the shared secret
# from which the server mints each session's own short-lived credentials (streaming/turn.py).
TURN_URLS = env_list("TURN_URLS", "")
TURN_SECRET = env_str("TURN_SECRET", "")
TURN_CREDENTIAL_TTL = env_int("TURN_CREDENTIAL_TTL", 3600)
# "relay": workers behind NAT send media only through the TURN relay; "all": any path ICE finds.
WEBRTC_ICE_POLICY = env_str("WEBRTC_ICE_POLICY", "all").lower()
# Addresses a worker offers as ICE host candidates; empty: every interface except loopback
# (aioice's choice). "127.0.0.1" is the loopback-only mode for tests and a laptop: the worker
# then also ignores the page's non-loopback candidates, so no packet leaves 127.0.0.0/8.
WEBRTC_HOST_ADDRESSES = env_list("WEBRTC_HOST_ADDRESSES", "")
# Video bitrate bounds (bits/s) the encoder adapts within, and where it starts.
WEBRTC_MIN_BITRATE = env_int("WEBRTC_MIN_BITRATE", 150_000)
WEBRTC_START_BITRATE = env_int("WEBRTC_START_BITRATE", 600_000)
WEBRTC_MAX_BITRATE = env_int("WEBRTC_MAX_BITRATE", 1_500_000)
# Small model pictures are upscaled by whole pixels until the short side reaches this.
WEBRTC_VIDEO_MIN_SIDE = env_int("WEBRTC_VIDEO_MIN_SIDE", 256)
# Frames waiting for a session's video encoder; more are dropped oldest first. One keeps the
# newest picture next in line; two absorb one slow encode without skipping a frame.
WEBRTC_FRAME_QUEUE = env_int("WEBRTC_FRAME_QUEUE", 2)

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "control"
# A play session task runs for the whole session; the broker must not redeliver it meanwhile.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through LOGGING above (one format, the ids on every JSON line), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic tasks expire after one period: a control worker that was down does not come back
# to a pile of stale copies.
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": period, "options": {"expires": period}}
    for name, task, period in [
        ("reap-workers", "webapp.fleet.tasks.reap_workers", REAPER_INTERVAL),
        ("expire-tickets", "webapp.queue.tasks.expire_tickets", 2.0),
        ("dispatch-all", "webapp.queue.tasks.dispatch_all", 5.0),
        ("end-overdue-sessions", "webapp.play.tasks.end_overdue_sessions", 5.0),
    ]
}

# --- Static, media, i18n ----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
WHITENOISE_USE_FINDERS = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# LOG_FORMAT=json: one JSON object per line for log collectors, with the session, ticket and
# worker ids as fields (webapp/logcontext.py); plain: for people.
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "webapp.logcontext.IdsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "webapp.logcontext.json_formatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["ids"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

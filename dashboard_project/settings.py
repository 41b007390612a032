"""Floorview settings: everything comes from the environment, with defaults that run on a laptop."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    """Return the variable NAME, or the contents of the file named by NAME_FILE, or DEFAULT."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """Return NAME as a boolean; refuse anything but the usual spellings."""
    value = env(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    """Return NAME as a number no smaller than MINIMUM."""
    value = env(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str, default: str) -> list[str]:
    """Return NAME split on commas, blanks dropped."""
    return [part.strip() for part in (env(name, default) or "").split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG and env_bool("FLOORVIEW_REQUIRE_SECRETS", False):
        raise ImproperlyConfigured("SECRET_KEY must be set")
    # Laptop default only; production sets SECRET_KEY (or SECRET_KEY_FILE).
    SECRET_KEY = "floorview-insecure-development-key-change-me"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "streams",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dashboard_project.urls"
ASGI_APPLICATION = "dashboard_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# SQLite on a laptop; DATABASE_URL (e.g. postgres://...) in production.
import dj_database_url  # noqa: E402

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'floorview.sqlite3'}",
        conn_max_age=int(env_float("DATABASE_CONN_MAX_AGE", 0)),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# Redis carries the channel layer, the snapshot store, leases and the token cache in
# production; without REDIS_URL everything stays in this process (the embedded mode).
def redis_channel_layer(url: str, prefix: str) -> dict:
    """Return the channel layer settings for Redis at URL."""
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 gives up reading after 5 s by default, exactly as long as channels_redis
            # blocks in BZPOPMIN for an idle consumer: every quiet viewer would die with a read
            # timeout. Reads get more room than the block; a dead server is still noticed.
            "hosts": [{"address": url, "socket_timeout": 15, "socket_connect_timeout": 5}],
            "prefix": prefix,
            "capacity": 1000,
            "expiry": 30,
        },
    }


REDIS_URL = env("REDIS_URL") or ""
# Prefix of every key Floorview keeps in Redis (snapshots, leases); the channel layer has its own.
REDIS_PREFIX = env("REDIS_PREFIX", "floorview") or "floorview"
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": redis_channel_layer(REDIS_URL, env("CHANNEL_LAYER_PREFIX", "floorview") or "floorview")
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY") or ""

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Live board tuning.
FLOORVIEW = {
    # Default coalescing window for boards that do not set their own (seconds).
    "COALESCE_WINDOW": env_float("FLOORVIEW_COALESCE_WINDOW", 0.25, minimum=0.01),
    # The browser marks data older than this stale (seconds).
    "STALE_AFTER": env_float("FLOORVIEW_STALE_AFTER", 5.0, minimum=1.0),
    # How often the publisher tells boards that their data is still live (seconds).
    "LIVENESS_PERIOD": env_float("FLOORVIEW_LIVENESS_PERIOD", 1.0, minimum=0.1),
    # How often the worker looks for admin changes (seconds).
    "CONFIG_POLL": env_float("FLOORVIEW_CONFIG_POLL", 3.0, minimum=0.1),
    # Lifetime of a worker's leases on its sources (seconds): a dead worker's sources move on after this.
    "LEASE_TTL": env_float("FLOORVIEW_LEASE_TTL", 10.0, minimum=1.0),
    # How long the admin keeps connection events (days); the newest 1,000 per connection at most.
    "EVENT_RETENTION_DAYS": env_float("FLOORVIEW_EVENT_RETENTION_DAYS", 7.0, minimum=0.01),
    # An interaction not heard of for this long is dropped from boards (seconds): a feed that lost an
    # interaction's last record must not show it for ever.
    "INTERACTION_TTL": env_float("FLOORVIEW_INTERACTION_TTL", 4 * 3600.0, minimum=10.0),
    # Webhook deliveries waiting per source for the worker; past this the platform is told 503 (retry later).
    "WEBHOOK_BACKLOG": int(env_float("FLOORVIEW_WEBHOOK_BACKLOG", 10_000, minimum=1)),
    # The largest webhook body any connection may receive (bytes): refused before Django buffers it.
    # A connection's own size limit above this cannot take effect.
    "WEBHOOK_MAX_BODY": int(env_float("FLOORVIEW_WEBHOOK_MAX_BODY", 8 * 1024 * 1024, minimum=1024)),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "aiohttp.access": {"level": "WARNING"},
        "websockets": {"level": "WARNING"},
    },
}

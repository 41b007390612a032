"""Floorview settings: everything comes from the environment, with defaults that run on a laptop."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

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


def env_float(name: str, default: float, minimum: float = 0.0, maximum: float | None = None) -> float:
    """Return NAME as a number no smaller than MINIMUM (and no larger than MAXIMUM, if given)."""
    value = env(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {number}")
    return number


def env_header(name: str) -> str:
    """Return the request.META key of the HTTP header NAME names (X-Forwarded-Proto: HTTP_X_FORWARDED_PROTO), or ""."""
    header = (env(name) or "").strip()
    if header and not all(c.isalnum() or c == "-" for c in header):
        raise ImproperlyConfigured(f"{name} must be an HTTP header name, not {header!r}")
    return "HTTP_" + header.upper().replace("-", "_") if header else ""


def env_list(name: str, default: str) -> list[str]:
    """Return NAME split on commas, blanks dropped."""
    return [part.strip() for part in (env(name, default) or "").split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)

# The one rule for secrets: outside DEBUG, SECRET_KEY and FIELD_ENCRYPTION_KEY must be set, unless
# FLOORVIEW_REQUIRE_SECRETS=false says this is a laptop (manage.py sets it for the demo). Otherwise a
# forgotten variable would sign sessions and encrypt vendor secrets with a key printed in this file.
REQUIRE_SECRETS = not DEBUG and env_bool("FLOORVIEW_REQUIRE_SECRETS", True)
SECRET_KEY = env("SECRET_KEY") or ""
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY") or ""
if REQUIRE_SECRETS:
    _missing = [
        name
        for name, value in (("SECRET_KEY", SECRET_KEY), ("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY))
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured(
            f"{' and '.join(_missing)} must be set (or {' and '.join(n + '_FILE' for n in _missing)}, naming a "
            "file that holds it). For development only, DEBUG=true or FLOORVIEW_REQUIRE_SECRETS=false runs on "
            "public development keys."
        )
SECRET_KEY = SECRET_KEY or "floorview-insecure-development-key-change-me"
# The development encryption key is derived from SECRET_KEY, so the demo needs no setup. (Setting
# FIELD_ENCRYPTION_KEY to "derived:" followed by SECRET_KEY reproduces it, for secrets stored that way.)
FIELD_ENCRYPTION_KEY = FIELD_ENCRYPTION_KEY or "derived:" + SECRET_KEY

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
    "axes",
    "django_htmx",
    "channels",
    "streams",
    "dashboard",
    # The built-in vendor simulator (``manage.py simulate`` and the demo); nothing else imports it.
    "simulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After the sessions: gives each session the cookie that lets its board sockets skip the slow lane.
    "dashboard.handshake.SocketPassMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
            # {% versioned_static %}: static URLs that change with the file, so a deploy's script is fetched anew.
            "libraries": {"floorview_static": "dashboard_project.static_version"},
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The site's own sign-in page; the admin keeps its own (staff only).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes): every sign-in, the admin's included, goes through its backend first.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# This many failures within the cool-off lock an account, or a client address, for the cool-off.
AXES_FAILURE_LIMIT = int(env_float("FLOORVIEW_LOGIN_FAILURE_LIMIT", 5, minimum=1))
AXES_COOLOFF_TIME = env_float("FLOORVIEW_LOGIN_COOLOFF_MINUTES", 15, minimum=1) / 60
AXES_LOCKOUT_BY = env_list("FLOORVIEW_LOGIN_LOCKOUT_BY", "username,ip_address")
if not AXES_LOCKOUT_BY or set(AXES_LOCKOUT_BY) - {"username", "ip_address"}:
    raise ImproperlyConfigured("FLOORVIEW_LOGIN_LOCKOUT_BY must list username, ip_address or both")
AXES_LOCKOUT_PARAMETERS = "dashboard_project.login_throttle.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "dashboard.client_address.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "dashboard_project.login_throttle.lockout_response"
# Failures are logged with the account and address (never the password, which django-axes always masks).
AXES_SENSITIVE_PARAMETERS: list[str] = []
# Behind a proxy, the header holding the client's address (e.g. X-Forwarded-For), and how many proxies
# append to it. Unset: the socket's peer, as a header any client can send must not be believed.
FLOORVIEW_CLIENT_IP_HEADER = env_header("FLOORVIEW_CLIENT_IP_HEADER")
FLOORVIEW_TRUSTED_PROXIES = int(env_float("FLOORVIEW_TRUSTED_PROXIES", 1, minimum=1))

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# HTTPS. Behind a TLS-terminating proxy, SECURE_PROXY_SSL_HEADER names the header it sets to "https"
# (e.g. X-Forwarded-Proto); only set it when the proxy overwrites that header on every request.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers poll the health check over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
_proxy_ssl_header = env_header("SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
SECURE_HSTS_SECONDS = int(env_float("SECURE_HSTS_SECONDS", 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# Content-Security-Policy: the pages load scripts, styles and images from this site only, with no
# inline script or style, and open their sockets back to it; nothing may frame them.
_csp = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
if env_bool("CSP_REPORT_ONLY", False):
    SECURE_CSP_REPORT_ONLY = _csp
else:
    SECURE_CSP = _csp

# Live board tuning.
FLOORVIEW = {
    # The coalescing window new boards start with (seconds); each board's own window then rules. Within
    # the bounds a board accepts (20 ms to 10 s).
    "COALESCE_WINDOW": env_float("FLOORVIEW_COALESCE_WINDOW", 0.25, minimum=0.02, maximum=10.0),
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
    # Every web process re-checks all its board sockets' access this often (seconds, jittered): the safety
    # net for changes no signal announced (raw SQL, expired sessions, an announcement lost with the layer).
    "ACCESS_RECHECK": env_float("FLOORVIEW_ACCESS_RECHECK", 60.0, minimum=1.0),
    # Bytes a board socket may leave unread (not acknowledged by the page), its newest frame and its newest
    # unacknowledged snapshot aside; past this the socket is closed (4008), so a page that stops reading
    # cannot make the server queue without end (a client faking acks meets SOCKET_BUFFER_CAP instead).
    "SOCKET_UNREAD_CAP": int(env_float("FLOORVIEW_SOCKET_UNREAD_CAP", 8 * 1024 * 1024, minimum=65536)),
    # A board snapshot larger than this (bytes) goes to the page in parts of at most this size (a part is
    # larger only to carry one row larger than this): well under any WebSocket server's message limit
    # (Daphne's 1 MiB default), and small enough for the page to apply without freezing.
    "SNAPSHOT_PART_BYTES": int(
        env_float("FLOORVIEW_SNAPSHOT_PART_BYTES", 256 * 1024, minimum=16 * 1024, maximum=1024 * 1024 - 4096)
    ),
    # Board sockets one user may hold open in one web process; past this a new one is closed with 4008.
    "SOCKETS_PER_USER": int(env_float("FLOORVIEW_SOCKETS_PER_USER", 20, minimum=1)),
    # The web server's backstop for clients that fake their acknowledgements: bytes a WebSocket may leave
    # waiting in the server's write buffer (beyond Twisted's own 64 KiB) before the connection is aborted.
    "SOCKET_BUFFER_CAP": int(
        env_float(
            "FLOORVIEW_SOCKET_BUFFER_CAP",
            env_float("FLOORVIEW_SOCKET_UNREAD_CAP", 8 * 1024 * 1024, minimum=65536) + 4 * 1024 * 1024,
            minimum=65536,
        )
    ),
    # Connections the web server's listening socket lets wait for accept (the kernel caps it at somaxconn):
    # a deploy or a network blip brings every viewer back at once, and the listen() default of 50 refuses most.
    "LISTEN_BACKLOG": int(env_float("FLOORVIEW_LISTEN_BACKLOG", 4096, minimum=16)),
    # Several web processes on one port (SO_REUSEPORT: the kernel spreads new connections over them), so a
    # machine's cores serve one address without a proxy in front.
    "REUSE_PORT": env_bool("FLOORVIEW_REUSE_PORT", False),
    # Board socket handshakes one web process takes a second: a crowd it closes or refuses is asked to spread its
    # return over crowd / rate seconds (dashboard.reconnect_spread). Measured with bench/storm.py (PERFORMANCE.md).
    "RECONNECT_RATE": env_float("FLOORVIEW_RECONNECT_RATE", 60, minimum=10),
    # The largest request body the web server reads on any path (bytes), refused with 413 as it arrives.
    "MAX_REQUEST_BODY": int(
        env_float("FLOORVIEW_MAX_REQUEST_BODY", env_float("FLOORVIEW_WEBHOOK_MAX_BODY", 8 * 1024 * 1024), minimum=1024)
    ),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "dashboard_project.logs.OneRecordPerLine",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "filters": {"refusals_on_one_line": {"()": "dashboard_project.logs.RefusalsOnOneLine"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["refusals_on_one_line"]}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "aiohttp.access": {"level": "WARNING"},
        "websockets": {"level": "WARNING"},
        # Failures and lockouts are warnings; its info lines (several per successful sign-in) are noise.
        "axes": {"level": "WARNING"},
    },
}

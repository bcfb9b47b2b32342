"""Settings of the example project: the embedded default (SQLite, in-memory channel layer)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "channels_sio",
    "chat",  # the chat demo (/chat/); its sockets.py registers the "/chat" namespace
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"

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

ASGI_APPLICATION = "example_project.asgi.application"

# DATABASE_URL (postgres://user@host:5432/name, sqlite:///path, ...) replaces the embedded
# SQLite database, read by dj-database-url.
DATABASE_URL = os.environ.get("DATABASE_URL")
if DATABASE_URL:
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
        }
    }

# With REDIS_URL set, every server process shares channels-redis and forms one Socket.IO server;
# without it, the in-memory layer (one process: runserver, or a single daphne / uvicorn).
REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 defaults (5 s socket timeout, 100-connection pools) break
                # channels-redis: see the checks channels_sio.W001 / W002.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 10, "max_connections": 1000}],
                # A node's channel takes the other nodes' forwarded polls and relayed frames:
                # channels-redis's default of 100 fills under a few hundred polling clients.
                "capacity": 1000,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CHANNELS_SIO: dict[str, object] = {
    # The chat demo recovers dropped connections: the sessions and the packet log live in this
    # project's database (the default store), so any number of processes share them.
    "connection_state_recovery": {"store": "database"},
}

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The browser build of socket.io-client, installed by `npm ci` in example_project/ (run.sh does
# it) and served as {% static "socket.io-client/socket.io.min.js" %}: no CDN.
STATICFILES_DIRS = [("socket.io-client", BASE_DIR / "node_modules" / "socket.io-client" / "dist")]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "index"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Not propagated: daphne's command line gives the root logger a handler of its own, and
    # every line would be written twice.
    "loggers": {"channels_sio": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# Raw Engine.IO endpoints the project serves besides Socket.IO: {path: "module.attribute"},
# the attribute being a server or a zero-argument callable returning one.
ENGINEIO_ENDPOINTS = {"/engine.io/": "example_project.protocol.engineio_echo"}

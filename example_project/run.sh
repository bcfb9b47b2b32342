#!/usr/bin/env bash
# Installs everything and runs the example project on http://127.0.0.1:8000/ (or $PORT) with daphne:
# SQLite, the in-memory channel layer, and an admin user whose login is printed below.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python 3.11+ is required (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[example]'

cd example_project
# socket.io-client for the chat page, served by Django as a static file (never from a CDN).
command -v npm >/dev/null || { echo "Node.js 20+ with npm is required (for the chat demo's socket.io-client)" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-example_project.settings}
../.venv/bin/python manage.py migrate --noinput
password=$(../.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')
DEMO_ADMIN_PASSWORD="$password" ../.venv/bin/python manage.py shell -c '
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
user.is_staff = user.is_superuser = True
user.set_password(os.environ["DEMO_ADMIN_PASSWORD"])
user.save()
for name in ("alice", "bob"):  # two chat users, to chat with yourself from two browsers
    chatter, _ = get_user_model().objects.get_or_create(username=name)
    chatter.set_password(os.environ["DEMO_ADMIN_PASSWORD"])
    chatter.save()
'
echo
echo "  channels_sio example project: http://127.0.0.1:${PORT:-8000}/"
echo "  admin: http://127.0.0.1:${PORT:-8000}/admin/  login: admin / $password"
echo "  chat:  http://127.0.0.1:${PORT:-8000}/chat/   login: alice or bob / $password"
echo
# daphne's runserver: the ASGI server of INSTALLED_APPS["daphne"], serving static files too.
exec ../.venv/bin/python manage.py runserver "127.0.0.1:${PORT:-8000}"

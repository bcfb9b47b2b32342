"""ASGI entry point: Engine.IO / Socket.IO endpoints in front of the Django application."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from channels_sio.asgi import get_application  # noqa: E402

application = get_application(
    django_asgi_app,
    engines={path: import_string(target) for path, target in settings.ENGINEIO_ENDPOINTS.items()},
)

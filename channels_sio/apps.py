"""Django app configuration for channels_sio."""

from importlib import import_module

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class ChannelsSioConfig(AppConfig):
    """Registers the system checks and imports the Socket.IO handler modules."""

    name = "channels_sio"
    verbose_name = "Socket.IO"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf  # noqa: F401  (registers checks and the setting_changed hook)

        # Handler modules register on channels_sio.sio when imported, as admin.py modules do.
        autodiscover_modules("sockets")
        raw = conf.user_settings()
        modules = raw.get("handlers", []) if isinstance(raw, dict) else []
        if isinstance(modules, list | tuple):  # anything else is reported by check E010
            for module in modules:
                import_module(module)

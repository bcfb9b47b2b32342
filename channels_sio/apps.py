"""Django app configuration for channels_sio."""

from django.apps import AppConfig


class ChannelsSioConfig(AppConfig):
    """Registers the system checks and the settings reset hook."""

    name = "channels_sio"
    verbose_name = "Socket.IO"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf  # noqa: F401  (registers checks and the setting_changed hook)

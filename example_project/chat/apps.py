"""The chat demo app. Its ``sockets.py`` is imported by channels_sio at startup."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat demo"

"""URLs of the example project."""

from django.conf import settings
from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]

if getattr(settings, "PROTOCOL_STATE_VIEW", False):
    from . import protocol

    urlpatterns.append(path("_protocol/state/", protocol.state))

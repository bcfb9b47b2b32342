"""URLs of the example project."""

from django.conf import settings
from django.contrib import admin
from django.urls import path
from django.views.generic import TemplateView

urlpatterns = [
    path(
        "",
        TemplateView.as_view(
            template_name="index.html",
            extra_context={"engineio_paths": list(settings.ENGINEIO_ENDPOINTS)},
        ),
        name="index",
    ),
    path("admin/", admin.site.urls),
]

if getattr(settings, "PROTOCOL_STATE_VIEW", False):
    from . import protocol

    urlpatterns.append(path("_protocol/state/", protocol.state))

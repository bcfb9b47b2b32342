"""URLs of the example project."""

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
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
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]

if apps.is_installed("chat"):  # left out by the protocol and benchmark settings
    urlpatterns.append(path("chat/", include("chat.urls")))

if getattr(settings, "PROTOCOL_STATE_VIEW", False):
    from . import protocol

    urlpatterns.append(path("_protocol/state/", protocol.state))

if getattr(settings, "LOAD_STATS_VIEW", False):
    from . import load

    urlpatterns.append(path("_load/stats/", load.stats))

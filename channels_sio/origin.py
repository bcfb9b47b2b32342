"""A request's own origin as Django sees it: its host checked against ``ALLOWED_HOSTS``, and a
proxy's headers trusted only where Django's settings say so."""

from __future__ import annotations

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from .engineio import HttpRequest

__all__ = ["own_origin"]

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def own_origin(request: HttpRequest) -> str | None:
    """``scheme://host[:port]`` of the site ``request`` was sent to, or None when its host is not
    one of ``ALLOWED_HOSTS``.

    As Django's ``HttpRequest.get_host()`` and ``scheme``: the host is ``X-Forwarded-Host`` with
    ``USE_X_FORWARDED_HOST``, otherwise ``Host``; the scheme is read from
    ``SECURE_PROXY_SSL_HEADER`` when that is set and the header is present, otherwise the ASGI
    server's. A default port (80 for http, 443 for https) is left out, as browsers leave it out
    of ``Origin``.
    """
    headers = request.headers
    host = headers.get("x-forwarded-host") if settings.USE_X_FORWARDED_HOST else None
    if host is None:
        host = headers.get("host")
    if not host:
        return None
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # as Django's get_host()
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, allowed):
        return None
    scheme = request.scheme
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        # Django names it as a META key ("HTTP_X_FORWARDED_PROTO"); ASGI as the header.
        value = headers.get(header.removeprefix("HTTP_").replace("_", "-").lower())
        if value is not None:
            scheme = "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    host = host.lower()
    if port and port == _DEFAULT_PORTS.get(scheme):
        host = host[: -len(port) - 1]
    return f"{scheme}://{host}"

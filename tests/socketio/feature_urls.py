"""Views that emit from Django code to Socket.IO clients (settings_features only).

POST a JSON body ``{"event", "args", "to", "except", "namespace"}`` (``{"$bin": "<hex>"}``
stands for bytes); the answer is
``{"ok": true}``, or ``{"error": "<ValueError text>"}`` with status 400 when the emit raised.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from example_project.urls import urlpatterns as project_urlpatterns

import channels_sio


def _with_bytes(value: Any) -> Any:
    """JSON with ``{"$bin": "<hex>"}`` markers -> the same data with bytes in their place."""
    if isinstance(value, dict):
        if list(value) == ["$bin"]:
            return bytes.fromhex(value["$bin"])
        return {key: _with_bytes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_bytes(item) for item in value]
    return value


def _emit_arguments(request: HttpRequest) -> tuple[str, list[Any], dict[str, Any]]:
    body = _with_bytes(json.loads(request.body))
    options = {
        "to": body.get("to"),
        "except_": body.get("except"),
        "namespace": body.get("namespace", "/"),
    }
    return body["event"], list(body.get("args", [])), options


@csrf_exempt
def emit_sync(request: HttpRequest) -> JsonResponse:
    """A plain ``def`` view: Django runs it in a thread, where ``channels_sio.emit`` is called."""
    event, args, options = _emit_arguments(request)
    try:
        channels_sio.emit(event, *args, **options)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"ok": True})


@csrf_exempt
async def emit_async(request: HttpRequest) -> JsonResponse:
    """An ``async def`` view awaiting ``channels_sio.async_emit``."""
    event, args, options = _emit_arguments(request)
    try:
        await channels_sio.async_emit(event, *args, **options)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"ok": True})


urlpatterns = [
    path("_features/emit-sync/", emit_sync),
    path("_features/emit-async/", emit_async),
    *project_urlpatterns,
]

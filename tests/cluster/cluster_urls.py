"""Test-only views of the cluster suite (ROOT_URLCONF of its settings modules).

``GET /_cluster/node/``  this process's node (started if no connection started it yet): id,
                         peers, channel-layer messages sent.
``POST /_cluster/emit/`` a plain ``def`` view calling ``channels_sio.emit`` with the JSON body
                         ``{"event", "args", "to", "namespace"}``.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from example_project.urls import urlpatterns as project_urlpatterns

import channels_sio
from channels_sio.asgi import socketio_engine

from .cluster_sockets import NSP, node_info


async def node(request: HttpRequest) -> JsonResponse:
    # An async view runs on the server's event loop, where the node must be started.
    socketio_engine()
    return JsonResponse(node_info())


@csrf_exempt
def emit(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    channels_sio.emit(
        body["event"],
        *body.get("args", []),
        to=body.get("to"),
        namespace=body.get("namespace", NSP),
    )
    return JsonResponse({"ok": True})


urlpatterns = [
    path("_cluster/node/", node),
    path("_cluster/emit/", emit),
    *project_urlpatterns,
]

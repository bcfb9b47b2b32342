"""The chat page: the socket does the rest."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from channels_sio import conf


@login_required
def chat(request: HttpRequest) -> HttpResponse:
    return render(request, "chat/chat.html", {"socketio_path": conf.get("path")})

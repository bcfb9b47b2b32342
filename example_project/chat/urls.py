"""URLs of the chat demo, included at /chat/."""

from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [path("", views.chat, name="index")]

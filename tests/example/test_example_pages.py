"""The example project's pages under runserver: index links, login redirect, static client."""

from __future__ import annotations

import httpx

from tests.support.servers import ServerProcess


def test_index_links_chat_and_admin(chat_server: ServerProcess) -> None:
    index = httpx.get(chat_server.url + "/")
    assert index.status_code == 200
    assert 'href="/chat/"' in index.text
    assert 'href="/admin/"' in index.text


def test_chat_page_requires_login(chat_server: ServerProcess) -> None:
    response = httpx.get(chat_server.url + "/chat/")
    assert response.status_code == 302
    assert response.headers["location"] == "/accounts/login/?next=/chat/"


def test_socketio_client_is_a_static_file(chat_server: ServerProcess) -> None:
    script = httpx.get(chat_server.url + "/static/socket.io-client/socket.io.min.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "Socket.IO" in script.text[:300]
    for asset in ("chat/chat.js", "chat/chat.css"):
        assert httpx.get(f"{chat_server.url}/static/{asset}").status_code == 200

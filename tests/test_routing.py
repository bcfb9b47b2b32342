"""EndpointRouter: which application each connection reaches."""

from __future__ import annotations

from typing import Any

import pytest

from channels_sio.routing import EndpointRouter, endpoint_key


def recorder(name: str, seen: list[str]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(name)

    return app


@pytest.fixture
def seen() -> list[str]:
    return []


@pytest.fixture
def router(seen: list[str]) -> EndpointRouter:
    return EndpointRouter(
        http={"/socket.io/": recorder("sio-http", seen), "/engine.io": recorder("eio-http", seen)},
        websocket={"/socket.io/": recorder("sio-ws", seen)},
        django=recorder("django", seen),
        lifespan=recorder("lifespan", seen),
    )


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/socket.io/", "socket.io"),
        ("/socket.io", "socket.io"),
        ("socket.io/", "socket.io"),
        ("/socket.io//", "socket.io/"),
        ("/a/b/", "a/b"),
        ("/", ""),
    ],
)
def test_endpoint_key(path: str, key: str) -> None:
    assert endpoint_key(path) == key


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"type": "http", "path": "/socket.io/"}, "sio-http"),
        ({"type": "http", "path": "/socket.io"}, "sio-http"),
        ({"type": "http", "path": "/engine.io/"}, "eio-http"),
        ({"type": "http", "path": "/socket.io//"}, "django"),
        ({"type": "http", "path": "/socket.io/x"}, "django"),
        ({"type": "http", "path": "/admin/"}, "django"),
        ({"type": "http", "path": "/app/socket.io/", "root_path": "/app"}, "sio-http"),
        ({"type": "http", "path": "/socket.io/", "root_path": "/app"}, "django"),
        ({"type": "websocket", "path": "/socket.io/"}, "sio-ws"),
        ({"type": "websocket", "path": "/app/socket.io", "root_path": "/app"}, "sio-ws"),
        ({"type": "lifespan"}, "lifespan"),
    ],
)
async def test_routes(
    router: EndpointRouter, seen: list[str], scope: dict[str, Any], expected: str
) -> None:
    await router(scope, None, None)
    assert seen == [expected]


@pytest.mark.parametrize("path", ["/engine.io/", "/chat/"])
async def test_websocket_without_an_endpoint_is_refused(router: EndpointRouter, path: str) -> None:
    with pytest.raises(ValueError, match="No route found"):
        await router({"type": "websocket", "path": path}, None, None)


async def test_unknown_scope_type(router: EndpointRouter) -> None:
    with pytest.raises(ValueError, match="No application configured for scope type 'webtransport'"):
        await router({"type": "webtransport", "path": "/socket.io/"}, None, None)


async def test_other_websockets_go_to_the_fallback(seen: list[str]) -> None:
    router = EndpointRouter(
        http={},
        websocket={"/socket.io/": recorder("sio-ws", seen)},
        django=recorder("django", seen),
        lifespan=recorder("lifespan", seen),
        websocket_fallback=recorder("project-ws", seen),
    )
    await router({"type": "websocket", "path": "/ws/echo/"}, None, None)
    await router({"type": "websocket", "path": "/socket.io/"}, None, None)
    assert seen == ["project-ws", "sio-ws"]

"""Engine.IO HTTP errors (exact status and JSON body), origins and CORS, on both servers."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.eio import (
    PATH,
    TIMEOUT,
    close_reason,
    error_json,
    parse_open,
    polling_session,
    polling_url,
    websocket,
    websocket_session,
    websocket_url,
)
from tests.support.servers import ServerProcess

UNKNOWN_SID = "AAAAAAAAAAAAAAAAAAAA"


def assert_error(response: httpx.Response, code: int, message: str) -> None:
    assert (response.status_code, response.content) == (
        403 if code == 4 else 400,
        error_json(code, message),
    )
    assert response.headers["content-type"] == "application/json"
    assert_length_declared(response)


def assert_length_declared(response: httpx.Response) -> None:
    assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers


async def test_answers_declare_their_length(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(protocol_server, client) as session:
        posted = await session.post("4hello")
        assert posted.content == b"ok"
        assert_length_declared(posted)
        polled = await session.get()
        assert polled.content == b"4hello"  # the protocol server echoes
        assert_length_declared(polled)


async def test_unknown_transport(protocol_server: ServerProcess, client: httpx.AsyncClient) -> None:
    response = await client.get(protocol_server.url + PATH, params={"EIO": "4", "transport": "foo"})
    assert_error(response, 0, "Transport unknown")
    response = await client.get(protocol_server.url + PATH, params={"EIO": "4"})
    assert_error(response, 0, "Transport unknown")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unknown_sid(
    protocol_server: ServerProcess, client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(
        method, polling_url(protocol_server, sid=UNKNOWN_SID), content=b"4x"
    )
    assert_error(response, 1, "Session ID unknown")


async def test_closed_sid_is_unknown(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(protocol_server, client) as session:
        await session.send("1")
        assert await close_reason(protocol_server, session.sid) == "transport close"
        assert_error(await session.get(), 1, "Session ID unknown")
        assert_error(await session.post("4x"), 1, "Session ID unknown")


async def test_post_handshake(protocol_server: ServerProcess, client: httpx.AsyncClient) -> None:
    response = await client.post(polling_url(protocol_server), content=b"4hello")
    assert_error(response, 2, "Bad handshake method")
    assert (await asyncio.to_thread(protocol_server.state))["sessions"] == {}


async def test_websocket_handshake_over_plain_http(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    response = await client.get(websocket_url(protocol_server).replace("ws", "http", 1))
    assert_error(response, 3, "Bad request")


async def test_polling_request_for_websocket_session(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with websocket_session(protocol_server) as (sock, handshake):
        url = polling_url(protocol_server, sid=handshake["sid"])
        assert_error(await client.get(url), 3, "Bad request")
        assert_error(await client.post(url, content=b"4x"), 3, "Bad request")
        # The session is not touched by the bad requests.
        await sock.echo("4still here")
        await sock.close()
    assert await close_reason(protocol_server, handshake["sid"]) == "transport close"


@pytest.mark.parametrize(
    "params",
    [
        {"EIO": "3", "transport": "polling"},
        {"transport": "polling"},
        {"EIO": "5", "transport": "polling"},
        {"EIO": "3", "transport": "polling", "sid": UNKNOWN_SID},
    ],
    ids=["EIO=3", "no-EIO", "EIO=5", "EIO=3-with-sid"],
)
async def test_unsupported_protocol_version(
    protocol_server: ServerProcess, client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get(protocol_server.url + PATH, params=params)
    assert_error(response, 5, "Unsupported protocol version")


async def test_websocket_unsupported_protocol_version_refused(
    protocol_server: ServerProcess,
) -> None:
    url = websocket_url(protocol_server).replace("EIO=4", "EIO=3")
    with pytest.raises(InvalidStatus) as refused:
        await asyncio.wait_for(connect(url), TIMEOUT)
    assert refused.value.response.status_code == 403


# -- CORS -------------------------------------------------------------------------------


async def test_preflight(protocol_server: ServerProcess, client: httpx.AsyncClient) -> None:
    response = await client.options(
        polling_url(protocol_server),
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-custom",
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    headers = response.headers
    assert "transfer-encoding" not in headers
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert headers["access-control-allow-headers"] == "content-type, x-custom"
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["vary"] == "Origin"


async def test_cors_headers_on_every_answer(
    protocol_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    origin = {"Origin": "https://app.example"}

    def assert_cors(response: httpx.Response) -> None:
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["vary"] == "Origin"

    async with polling_session(protocol_server, client) as session:
        handshake = await client.get(polling_url(protocol_server), headers=origin)
        assert handshake.status_code == 200
        assert_cors(handshake)
        other = parse_open(handshake.text)["sid"]
        post = await client.post(session.url, content=b"4hi", headers=origin)
        assert post.content == b"ok"
        assert_cors(post)
        get = await client.get(session.url, headers=origin)
        assert get.text == "4hi"
        assert_cors(get)
        error = await client.get(polling_url(protocol_server, sid=UNKNOWN_SID), headers=origin)
        assert_error(error, 1, "Session ID unknown")
        assert_cors(error)
        await session.send("1")
        # Without an Origin header, no CORS header at all.
        plain = await client.post(polling_url(protocol_server, sid=other), content=b"1")
        assert plain.content == b"ok"
        assert not [name for name in plain.headers if name.startswith("access-control-")]


# -- origins: same-origin only (settings_strict) ----------------------------------------


async def test_same_origin_accepted(
    strict_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    own = {"Origin": strict_server.url}
    response = await client.get(polling_url(strict_server), headers=own)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == strict_server.url
    sid = parse_open(response.text)["sid"]
    post = await client.post(polling_url(strict_server, sid=sid), content=b"4x", headers=own)
    assert post.content == b"ok"
    assert (await client.get(polling_url(strict_server, sid=sid), headers=own)).text == "4x"
    # Requests without an Origin (not from a browser) are not subject to the rule.
    assert (await client.post(polling_url(strict_server, sid=sid), content=b"1")).content == b"ok"
    assert await close_reason(strict_server, sid) == "transport close"


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://127.0.0.1", "https://127.0.0.1:{port}", "null"],
)
async def test_foreign_origin_forbidden(
    strict_server: ServerProcess, client: httpx.AsyncClient, origin: str
) -> None:
    foreign = {"Origin": origin.format(port=strict_server.port)}
    response = await client.get(polling_url(strict_server), headers=foreign)
    assert_error(response, 4, "Forbidden")
    assert "access-control-allow-origin" not in response.headers
    async with polling_session(strict_server, client) as session:
        # Requests of an existing session are checked too, and refusing one closes nothing.
        assert_error(await client.post(session.url, content=b"4x", headers=foreign), 4, "Forbidden")
        assert_error(await client.get(session.url, headers=foreign), 4, "Forbidden")
        await session.send("4after")
        assert await session.receive(1) == ["4after"]
        await session.send("1")
    assert (await asyncio.to_thread(strict_server.state))["sessions"] == {}


async def test_origin_of_a_host_not_in_allowed_hosts_forbidden(
    strict_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    """DNS rebinding: a page of rebound.example, whose name now resolves to this server, sends
    Host and Origin that agree. The host is not in ALLOWED_HOSTS, so that origin is not ours."""
    rebound = {"Host": f"rebound.example:{strict_server.port}"}
    origin = f"http://rebound.example:{strict_server.port}"
    response = await client.get(polling_url(strict_server), headers={**rebound, "Origin": origin})
    assert_error(response, 4, "Forbidden")
    url = websocket_url(strict_server)
    with pytest.raises(InvalidStatus) as refused:
        await asyncio.wait_for(
            connect(url, origin=origin, additional_headers=rebound),
            TIMEOUT,  # type: ignore[arg-type]
        )
    assert refused.value.response.status_code == 403
    # Without an Origin (not a browser), the Host alone decides nothing.
    async with polling_session(strict_server, client) as session:
        await session.send("1")
    assert (await asyncio.to_thread(strict_server.state))["sessions"] == {}


async def test_websocket_same_origin_accepted(strict_server: ServerProcess) -> None:
    url = websocket_url(strict_server)
    async with asyncio.timeout(TIMEOUT), connect(url, origin=strict_server.url) as ws:
        first = await ws.recv()
        assert isinstance(first, str)
        assert first.startswith("0{")
        await ws.send("4over ws")
        assert await ws.recv() == "4over ws"


async def test_websocket_foreign_origin_refused(strict_server: ServerProcess) -> None:
    url = websocket_url(strict_server)
    with pytest.raises(InvalidStatus) as refused:
        await asyncio.wait_for(connect(url, origin="https://evil.example"), TIMEOUT)
    assert refused.value.response.status_code == 403
    assert (await asyncio.to_thread(strict_server.state))["sessions"] == {}


async def test_websocket_probe_foreign_origin_refused(
    strict_server: ServerProcess, client: httpx.AsyncClient
) -> None:
    async with polling_session(strict_server, client) as session:
        url = websocket_url(strict_server, sid=session.sid)
        with pytest.raises(InvalidStatus) as refused:
            await asyncio.wait_for(connect(url, origin="https://evil.example"), TIMEOUT)
        assert refused.value.response.status_code == 403
        # The session can still upgrade from its own origin.
        async with websocket(strict_server, sid=session.sid) as probe:
            await probe.send("2probe")
            assert await probe.recv() == "3probe"
            assert await session.poll() == ["6"]
            await probe.send("5")
            await probe.echo("4upgraded")
            await probe.close()
    assert await close_reason(strict_server, session.sid) == "transport close"

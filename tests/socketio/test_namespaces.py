"""Namespaces with the official client: middlewares and refusals (CONNECT_ERROR message and
data), connect handlers returning False, dynamic namespaces by regex and by callable."""

from __future__ import annotations

import secrets

import pytest

from tests.socketio.sio import scenario
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.node

REJECTED = {"message": "Connection rejected by server", "data": None}


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_middlewares_and_refusals(features_server: ServerProcess, transports: str) -> None:
    auths = {
        "ok": {"token": "secret"},
        "wrong": {"token": "nope"},
        "none": None,
        "blocked": {"token": "secret", "block": True},
        "refused_in_connect": {"token": "secret", "refuse_in_connect": True},
    }
    result = scenario("sio_namespaces.js", features_server, "guarded", {"auths": auths}, transports)
    outcomes = result["outcomes"]
    ready = {"middlewares": ["require_token", "tag_sync"], "middleware_on_loop": False}
    assert outcomes["ok"] == {
        "connected": True,
        "ready": [ready],
        "events": [["ready", ready]],
    }
    assert outcomes["wrong"] == {
        "connect_error": {
            "message": "unauthorized",
            "data": {"reason": "bad token", "token": "nope"},
        }
    }
    assert outcomes["none"] == {
        "connect_error": {"message": "unauthorized", "data": {"reason": "bad token", "token": None}}
    }
    # A middleware returning False refuses with the default message and no data.
    assert outcomes["blocked"] == {"connect_error": REJECTED}
    assert outcomes["refused_in_connect"] == {
        "connect_error": {"message": "refused in connect", "data": None}
    }
    assert result["refuse"] == {"connect_error": REJECTED}  # connect handler returned False
    assert result["free"] == {"connected": True}


def test_refused_namespace_beside_a_connected_one(features_server: ServerProcess) -> None:
    result = scenario("sio_namespaces.js", features_server, "refused-beside-connected")
    assert result["refused"] == {
        "message": "unauthorized",
        "data": {"reason": "bad token", "token": "wrong"},
    }
    assert result["echo"] == ["alive"]
    assert result["connected"] == [True, False]


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_dynamic_namespaces(features_server: ServerProcess, transports: str) -> None:
    # Digits only: the regex family is /dyn-\d+, and children outlive a test on the server.
    n = str(secrets.randbelow(10**9))
    result = scenario("sio_namespaces.js", features_server, "dynamic", {"suffix": n}, transports)
    names = {
        "regexA": f"/dyn-{n}1",
        "regexB": f"/dyn-{n}2",
        "syncOk": f"/fn-sync-{n}",
        "asyncOk": f"/fn-async-{n}",
    }
    assert result["hello"] == {label: [name, True] for label, name in names.items()}
    assert result["whoami"] == names
    assert result["family"] == "sent"
    assert result["asyncFamily"] == "sent"
    assert result["news"] == {
        "regexA": [["family-news", "regex news"]],
        "regexB": [["family-news", "regex news"]],
        "syncOk": [],
        "asyncOk": [["family-news", "async news"]],
    }
    invalid = {"connect_error": {"message": "Invalid namespace", "data": None}}
    assert result["refused"] == {
        "regexLetters": invalid,
        "regexSuffix": invalid,
        "regexPrefix": invalid,
        "syncNoAuth": invalid,
        "syncFalse": invalid,
    }

"""The Engine.IO error table and the close reasons: every wire word, exactly."""

from __future__ import annotations

import json

import pytest

from channels_sio.engineio.errors import CloseReason, ErrorCode, error_body

ERRORS = [
    pytest.param(ErrorCode.UNKNOWN_TRANSPORT, 0, "Transport unknown", 400, id="transport"),
    pytest.param(ErrorCode.UNKNOWN_SID, 1, "Session ID unknown", 400, id="sid"),
    pytest.param(
        ErrorCode.BAD_HANDSHAKE_METHOD, 2, "Bad handshake method", 400, id="handshake-method"
    ),
    pytest.param(ErrorCode.BAD_REQUEST, 3, "Bad request", 400, id="bad-request"),
    pytest.param(ErrorCode.FORBIDDEN, 4, "Forbidden", 403, id="forbidden"),
    pytest.param(
        ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
        5,
        "Unsupported protocol version",
        400,
        id="protocol-version",
    ),
]


def test_the_table_is_complete() -> None:
    assert [int(code) for code in ErrorCode] == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(("code", "number", "message", "status"), ERRORS)
def test_code(code: ErrorCode, number: int, message: str, status: int) -> None:
    assert int(code) == number
    assert ErrorCode(number) is code


@pytest.mark.parametrize(("code", "number", "message", "status"), ERRORS)
def test_message(code: ErrorCode, number: int, message: str, status: int) -> None:
    assert code.message == message


@pytest.mark.parametrize(("code", "number", "message", "status"), ERRORS)
def test_http_status(code: ErrorCode, number: int, message: str, status: int) -> None:
    assert code.http_status == status


@pytest.mark.parametrize(("code", "number", "message", "status"), ERRORS)
def test_error_body(code: ErrorCode, number: int, message: str, status: int) -> None:
    body = error_body(code)
    assert type(body) is bytes
    assert body == f'{{"code":{number},"message":"{message}"}}'.encode()
    assert json.loads(body) == {"code": number, "message": message}


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (ErrorCode.UNKNOWN_TRANSPORT, b'{"code":0,"message":"Transport unknown"}'),
        (ErrorCode.UNKNOWN_SID, b'{"code":1,"message":"Session ID unknown"}'),
        (ErrorCode.BAD_HANDSHAKE_METHOD, b'{"code":2,"message":"Bad handshake method"}'),
        (ErrorCode.BAD_REQUEST, b'{"code":3,"message":"Bad request"}'),
        (ErrorCode.FORBIDDEN, b'{"code":4,"message":"Forbidden"}'),
        (
            ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
            b'{"code":5,"message":"Unsupported protocol version"}',
        ),
    ],
    ids=lambda v: v.name if isinstance(v, ErrorCode) else None,
)
def test_error_body_literal(code: ErrorCode, body: bytes) -> None:
    assert error_body(code) == body


def test_only_forbidden_is_403() -> None:
    assert [code for code in ErrorCode if code.http_status == 403] == [ErrorCode.FORBIDDEN]
    assert {code.http_status for code in ErrorCode} == {400, 403}


def test_close_reasons_are_exactly_the_engineio_words() -> None:
    assert [reason.value for reason in CloseReason] == [
        "transport close",
        "transport error",
        "parse error",
        "ping timeout",
        "forced close",
        "server shutting down",
        "send queue full",  # this server's own: a client that does not read what it is sent
    ]


@pytest.mark.parametrize(
    ("reason", "word"),
    [
        (CloseReason.TRANSPORT_CLOSE, "transport close"),
        (CloseReason.TRANSPORT_ERROR, "transport error"),
        (CloseReason.PARSE_ERROR, "parse error"),
        (CloseReason.PING_TIMEOUT, "ping timeout"),
        (CloseReason.FORCED_CLOSE, "forced close"),
        (CloseReason.SERVER_SHUTTING_DOWN, "server shutting down"),
        (CloseReason.SEND_QUEUE_FULL, "send queue full"),
    ],
    ids=lambda v: v.name if isinstance(v, CloseReason) else None,
)
def test_close_reason_is_its_word(reason: CloseReason, word: str) -> None:
    # A StrEnum: it formats, compares and serialises as the bare word.
    assert reason == word
    assert str(reason) == word
    assert f"{reason}" == word
    assert json.dumps(reason) == json.dumps(word)
    assert CloseReason(word) is reason

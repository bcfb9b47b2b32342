"""A Socket.IO test client that talks to the ASGI application in-process.

Built on Channels' ``WebsocketCommunicator``: the real consumers, Engine.IO session and
Socket.IO server run, with no network and no server process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from channels.testing import WebsocketCommunicator

from ..engineio.packet import PacketType as EnginePacketType
from ..engineio.packet import decode_packet
from ..socketio.exceptions import ConnectionRefusedError
from ..socketio.packet import Decoder, Packet, PacketType, encode

__all__ = ["SocketIOCommunicator"]


class SocketIOCommunicator:
    """Connect to one namespace, emit, and await events and acknowledgements.

    ::

        async def test_chat():
            client = SocketIOCommunicator(application, namespace="/chat", auth={"token": "t"})
            await client.connect()
            assert await client.emit_with_ack("join", "lobby") == ["ok"]
            event, args = await client.receive_event()
            await client.disconnect()

    Server pings are answered while waiting. ``headers`` is a list of ``(bytes, bytes)`` pairs,
    e.g. ``[(b"cookie", b"sessionid=...")]`` to be a logged-in user.

    With connection state recovery on, it does what socket.io-client does: it keeps the
    ``pid`` of the CONNECT reply and the ``offset`` of the last event it received;
    :meth:`drop` loses the connection as a network failure would, and :meth:`reconnect`
    comes back with both, after which ``recovered`` says whether the server restored the
    socket (the missed events are then the first ones :meth:`receive_event` returns).
    """

    def __init__(
        self,
        application: Any,
        *,
        path: str = "/socket.io/",
        namespace: str = "/",
        auth: dict[str, Any] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        query: str = "",
    ) -> None:
        self._application = application
        self._url = f"{path}?EIO=4&transport=websocket" + (f"&{query}" if query else "")
        self._headers = headers or []
        self.ws = WebsocketCommunicator(application, self._url, headers=self._headers)
        self.namespace = namespace
        self.auth = auth
        self.sid: str | None = None
        self.handshake: dict[str, Any] = {}
        self._decoder = Decoder(from_server=True)
        self._events: list[Packet] = []
        self._acks: dict[int, list[Any]] = {}
        self._next_id = 0
        self._reading = asyncio.Lock()
        self._answers: dict[str, Callable[..., Any]] = {}
        #: Connection state recovery: the private session id, the last offset received, and
        #: whether the last connect restored the socket.
        self.pid: str | None = None
        self.offset: str | None = None
        self.recovered = False

    async def connect(self, timeout: float = 1) -> dict[str, Any]:
        """Open the connection and join the namespace; return the CONNECT payload.

        Raises :class:`ConnectionRefusedError` with the server's message and data when the
        namespace refuses (the connection is closed then; :meth:`disconnect` stays harmless).
        """
        connected, _ = await self.ws.connect(timeout)
        if not connected:
            raise ConnectionError("the server refused the WebSocket handshake")
        opening = decode_packet(await self.ws.receive_from(timeout))
        if opening.type is not EnginePacketType.OPEN:
            raise AssertionError(f"expected the Engine.IO open packet, got {opening}")
        self.handshake = json.loads(str(opening.data))
        auth = self.auth
        if self.pid is not None:
            # As socket.io-client: the application's own auth keys win over these two.
            recovery = {"pid": self.pid, **({"offset": self.offset} if self.offset else {})}
            auth = {**recovery, **(auth or {})}
        await self._send(Packet(PacketType.CONNECT, self.namespace, auth))
        packet = await self._next_packet(timeout, (PacketType.CONNECT, PacketType.CONNECT_ERROR))
        if packet.type is PacketType.CONNECT_ERROR:
            # Close the connection, as socket.io-client does when its only namespace is
            # refused: otherwise the server keeps the session until connect_timeout.
            await self.ws.disconnect()
            data = packet.data if isinstance(packet.data, dict) else {"message": packet.data}
            raise ConnectionRefusedError(data.get("message", ""), data.get("data"))
        self.sid = packet.data["sid"]
        pid = packet.data.get("pid")
        self.recovered = pid is not None and pid == self.pid
        self.pid = pid
        return dict(packet.data)

    async def drop(self) -> None:
        """Lose the connection as a network failure would: no DISCONNECT, no Engine.IO close
        packet; the server sees ``transport close``."""
        await self.ws.disconnect()

    async def reconnect(self, timeout: float = 1) -> dict[str, Any]:
        """Connect again after :meth:`drop`, with the pid and offset kept; return the CONNECT
        payload. Events the server replays are queued before anything else."""
        self.ws = WebsocketCommunicator(self._application, self._url, headers=self._headers)
        self._decoder = Decoder(from_server=True)
        return await self.connect(timeout)

    async def emit(self, event: str, *args: Any) -> None:
        """Send an event with no acknowledgement."""
        await self._send(Packet(PacketType.EVENT, self.namespace, [event, *args]))

    async def emit_with_ack(self, event: str, *args: Any, timeout: float = 1) -> list[Any]:
        """Send an event and return the arguments of the server's acknowledgement."""
        ack_id = self._next_id
        self._next_id += 1
        await self._send(Packet(PacketType.EVENT, self.namespace, [event, *args], ack_id))
        async with asyncio.timeout(timeout):
            await self._pump_until(lambda: ack_id in self._acks)
        return self._acks.pop(ack_id)

    async def receive_event(self, timeout: float = 1) -> tuple[str, list[Any]]:
        """The next event the server sent to this namespace: ``(name, args)``."""
        async with asyncio.timeout(timeout):
            await self._pump_until(lambda: bool(self._events))
        packet = self._events.pop(0)
        return packet.data[0], packet.data[1:]

    async def expect_event(self, name: str, timeout: float = 1) -> list[Any]:
        """Assert that the next event is ``name``; return its arguments."""
        event, args = await self.receive_event(timeout)
        if event != name:
            raise AssertionError(f"expected event {name!r}, got {event!r} with {args!r}")
        return args

    async def receive_nothing(self, timeout: float = 0.1) -> bool:
        """True when no event arrives within ``timeout``; one that does stays queued."""
        try:
            async with asyncio.timeout(timeout):
                await self._pump_until(lambda: bool(self._events))
        except TimeoutError:
            return True
        return False

    def answer(self, event: str, handler: Callable[..., Any]) -> None:
        """Acknowledge the server's ``event`` with ``handler(*args)`` (a tuple for several
        arguments), as a client's ack callback would. The event is still queued for
        :meth:`receive_event`. Answers go out while the communicator is reading."""
        self._answers[event] = handler

    async def disconnect(self) -> None:
        """Leave the namespace and close the WebSocket."""
        await self._send(Packet(PacketType.DISCONNECT, self.namespace))
        await self.ws.disconnect()

    async def _send(self, packet: Packet) -> None:
        for index, part in enumerate(encode(packet)):
            if isinstance(part, bytes):
                # Not ws.send_to(): it refuses empty frames, and b"" is a valid attachment.
                await self.ws.send_input({"type": "websocket.receive", "bytes": part})
            else:
                await self.ws.send_to(text_data=("4" + part) if index == 0 else part)

    async def _next_packet(self, timeout: float, kinds: tuple[PacketType, ...]) -> Packet:
        async with asyncio.timeout(timeout):
            while True:
                packet = await self._pump(kinds)
                if packet is not None:
                    return packet

    async def _pump_until(self, done: Callable[[], bool]) -> None:
        """Read frames until ``done()``. One task reads at a time: concurrent waiters (say two
        ``emit_with_ack`` calls) must not wait on the socket for a frame the other one took."""
        while not done():
            async with self._reading:
                if not done():
                    await self._pump(None)

    async def _pump(self, kinds: tuple[PacketType, ...] | None) -> Packet | None:
        """Read one frame: answer pings, store events and acks; return a packet of ``kinds``."""
        frame = await self.ws.receive_from(timeout=3600)
        engine_packet = decode_packet(frame)
        if engine_packet.type is EnginePacketType.PING:
            await self.ws.send_to(text_data="3")
            return None
        if engine_packet.type is not EnginePacketType.MESSAGE:
            return None
        packet = self._decoder.feed(engine_packet.data)
        if packet is None or packet.namespace != self.namespace:
            return None
        if kinds is not None and packet.type in kinds:
            return packet
        if packet.type is PacketType.EVENT:
            self._events.append(packet)
            if self.pid is not None and isinstance(packet.data[-1], str) and len(packet.data) > 1:
                self.offset = packet.data[-1]
            answer = self._answers.get(packet.data[0])
            if answer is not None and packet.id is not None:
                result = answer(*packet.data[1:])
                args = list(result) if isinstance(result, tuple) else [result]
                await self._send(Packet(PacketType.ACK, self.namespace, args, packet.id))
        elif packet.type is PacketType.ACK and packet.id is not None:
            self._acks[packet.id] = packet.data
        return None

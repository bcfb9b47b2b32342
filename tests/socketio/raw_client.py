"""A Socket.IO session driven by hand over long-polling, at the project's /socket.io/ path."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tests.support.eio import Polling, parse_open
from tests.support.servers import ServerProcess

PATH = "/socket.io/"


def sio_polling_url(server: ServerProcess, **params: str) -> str:
    query = {"EIO": "4", "transport": "polling", **params}
    return f"{server.url}{PATH}?{urlencode(query)}"


class SioPolling(Polling):
    """:class:`tests.support.eio.Polling` against the Socket.IO endpoint."""

    @property
    def url(self) -> str:
        return sio_polling_url(self.server, sid=self.sid)

    async def open(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(sio_polling_url(self.server), headers=headers)
        assert response.status_code == 200, (response.status_code, response.content)
        self.handshake = parse_open(response.text)
        self.sid = self.handshake["sid"]
        return self.handshake

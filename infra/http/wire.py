"""The server's connections: HTTP/1.1 parsed by httptools, each answer leaving in one write.

uvicorn writes an answer's head when the application starts it and the body when it sends
it: two writes, and on a connection with TCP_NODELAY (which the server sets, or each answer
would wait 40 ms for the client's delayed ACK) two segments and two system calls each way.
Here a connection's writes made in one turn of the event loop are joined and leave as one,
at the end of that turn; closing the connection sends what is pending first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class JoinedWrites:
    """A transport whose writes within one turn of the loop are sent together."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # the rest is the connection's own
        return getattr(self._transport, name)


class JoinedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, its answers written through `JoinedWrites`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # (uvloop's transports are not subclasses of asyncio.Transport, only alike)
        super().connection_made(JoinedWrites(transport, self.loop))  # type: ignore[arg-type]

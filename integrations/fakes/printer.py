"""In-process fake of a network label printer's raw port (JetDirect-style TCP 9100, as TSPL and ZPL printers have).

A client connects, writes the job, shuts its side; the printer takes the bytes and closes its own side. Each job
taken is recorded whole in `jobs` (bytes). Trouble on demand: `refuse_next()` resets the connection (RST) after
the first bytes (the job is not taken), `stall_next()` reads the job but never closes (a jammed printer), `down()` stops
listening (connection refused: switched off) and `up()` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType
from typing import Self


class FakeRawPrinter:
    def __init__(self, scheme: str = "tspl") -> None:
        self.scheme = scheme
        self.jobs: list[bytes] = []
        self.connections = 0
        self._refuse = 0
        self._stall = 0
        self._server: asyncio.Server | None = None
        self._port = 0
        self._held: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._port}"

    def refuse_next(self, times: int = 1) -> None:
        self._refuse += times

    def stall_next(self, times: int = 1) -> None:
        self._stall += times

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._job, "127.0.0.1", self._port)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def down(self) -> None:
        for writer in self._held:
            writer.transport.abort()
        self._held.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _job(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._refuse:
            self._refuse -= 1
            await reader.read(1)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = reset (RST)
            writer.transport.abort()
            return
        data = await reader.read()  # until the client shuts its side
        if self._stall:
            self._stall -= 1
            self._held.append(writer)  # never closed: the client's send time-out decides
            return
        self.jobs.append(data)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    async def __aenter__(self) -> Self:
        await self.up()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.down()

"""What every fake outside system shares: an aiohttp app served on a free local port."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Failure(Protocol):
    def response(self) -> web.Response: ...


@dataclass(frozen=True)
class ErrorOrStatus:
    """A queued failure of the usual kind: the platform's own error answer for `code`, or a bare HTTP `status`
    (with `text` as its body) as a proxy in front of it would give."""

    code: Any
    status: int | None
    error: Callable[[Any], web.Response]  # the fake's answer for an error code
    text: str = "fake failure"

    def response(self) -> web.Response:
        if self.status is not None:
            return web.Response(status=self.status, text=self.text)
        assert self.code is not None
        return self.error(self.code)


async def json_body(request: web.Request) -> dict[str, Any] | None:
    """The request's body as a JSON object; None when it is not JSON or not an object."""
    try:
        payload = json.loads(await request.read())
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


class FakeServer:
    """Subclasses build `self.app` with `self.injected_trouble` as middleware and fill `_path_failures` and
    `_path_stalls` (per path) from their own fail_next / stall_next; tests use `async with Fake() as fake:`."""

    app: web.Application
    _runner: web.AppRunner | None = None
    _port: int | None = None
    _path_failures: dict[str, deque[Any]]
    _path_stalls: dict[str, deque[float]]

    def _queue_stall(self, seconds: float, times: int, path: str) -> None:
        """Sleep before answering; a request whose client gave up meanwhile is dropped unprocessed."""
        self._path_stalls.setdefault(path, deque()).extend(seconds for _ in range(times))

    def stalls_waiting(self, path: str) -> int:
        """Stalls queued for `path` and not yet taken by a request (0: a request is stalling or done)."""
        return len(self._path_stalls.get(path, ()))

    @web.middleware
    async def injected_trouble(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        stall = self._pop(self._path_stalls, request.path)
        if stall is not None:
            await request.read()  # the request arrived whole; only the answer is late
            await asyncio.sleep(stall)
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499, text="client went away")
        failure: Failure | None = self._pop(self._path_failures, request.path)
        if failure is not None:
            return failure.response()
        return await handler(request)

    @staticmethod
    def _pop(queues: dict[str, deque[Any]], request_path: str) -> Any:
        for path, queue in queues.items():
            if queue and request_path.endswith(path):  # endswith: the app may be mounted under a prefix
                return queue.popleft()
        return None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024).start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

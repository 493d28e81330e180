"""uvicorn's HTTP protocol with a deadline for a request's headers (slow-header clients, "Slowloris").

uvicorn has no timeout covering a request's transmission: ``timeout_keep_alive`` covers the idle time
*between* requests and is reset by every byte, so a client trickling its headers holds a connection
for as long as it likes. ``HeaderDeadline`` closes a connection whose request headers have not all
arrived within ``HEADER_SECONDS`` of the connection opening (or of the previous response, on a kept
connection), and at most ``MAX_WAITING`` connections may wait for their headers at once: beyond,
the one that has waited longest is closed (a real client's headers take milliseconds), so slow-header
sockets can never fill the server's connection limit and make every request 503. The body is the
guard's business (``guards.py``: idle or trickling bodies get 408).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0
MAX_WAITING = 64  # connections waiting for their headers at once (the server's limit is 512)


class HeaderDeadline(H11Protocol):
    """``H11Protocol`` that closes connections whose request headers are late (module doc)."""

    header_seconds = HEADER_SECONDS
    max_waiting = MAX_WAITING
    _waiting: dict[HeaderDeadline, None] = {}  # insertion-ordered: the longest-waiting first

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_seconds, self._expired)
        waiting = HeaderDeadline._waiting
        waiting[self] = None
        while len(waiting) > self.max_waiting:  # the longest-waiting connection makes room
            oldest = next(iter(waiting))
            oldest._disarm()
            oldest.transport.close()

    def _disarm(self) -> None:
        HeaderDeadline._waiting.pop(self, None)
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:  # still waiting for headers
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # headers are in: a request is being served

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers on this kept connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

"""Slow work for requests (transcoding previews, decoding thumbnails, embedding uploads) through
bounded queues, so that it can never take the server hostage.

A ``WorkQueue`` runs at most ``running`` jobs at once in worker threads and lets at most ``waiting``
more wait; a request beyond that gets 503 with ``Retry-After`` at once, and the rest of the API keeps
answering (its requests never wait behind this work). A job whose client has gone away is told so
(``cancelled()`` turns true) and stops at its next check, freeing its slot.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException, Request

R = TypeVar("R")
POLL_SECONDS = 0.25  # how often a job's client is checked while the job runs


class Cancelled(Exception):
    """Raised inside a job (by its own check) when its client has gone away."""


class WorkQueue:
    """At most ``running`` jobs at once, ``waiting`` more queued; ``retry_after`` seconds suggested."""

    def __init__(self, name: str, running: int, waiting: int, retry_after: int = 5) -> None:
        self.name = name
        self.running = running
        self.waiting = waiting
        self.retry_after = retry_after
        self._slots: asyncio.Semaphore | None = None  # made in the serving loop, on first use
        self._admitted = 0
        self._lock = threading.Lock()

    async def run(self, request: Request | None, job: Callable[[Callable[[], bool]], R]) -> R:
        """``job(cancelled)`` in a worker thread once a slot is free; 503 if the queue is full.
        ``cancelled()`` is true once ``request``'s client disconnected: the job should stop then
        (raising ``Cancelled``)."""
        with self._lock:
            if self._admitted >= self.running + self.waiting:
                raise HTTPException(status_code=503, detail=f"too many {self.name} requests at once; try again shortly",
                                    headers={"Retry-After": str(self.retry_after)})
            self._admitted += 1
        try:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.running)
            gone = threading.Event()
            async with self._slots:
                if request is not None and await request.is_disconnected():
                    raise HTTPException(status_code=499, detail="client closed the request")
                watcher = asyncio.create_task(_watch(request, gone)) if request is not None else None
                try:
                    return await asyncio.to_thread(job, gone.is_set)
                except Cancelled:
                    raise HTTPException(status_code=499, detail="client closed the request") from None
                finally:
                    if watcher is not None:
                        watcher.cancel()
        finally:
            with self._lock:
                self._admitted -= 1


async def _watch(request: Request, gone: threading.Event) -> None:
    while not gone.is_set():
        if await request.is_disconnected():
            gone.set()
            return
        await asyncio.sleep(POLL_SECONDS)

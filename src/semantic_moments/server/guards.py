"""Request guards, in one place, before any route runs: Host, Origin and body size.

* **Host**: only the names the server is bound to (127.0.0.1, localhost, [::1], what ``--host``
  names) and any ``--allowed-host`` are answered; a DNS-rebinding page, whose requests carry its
  own host name, gets 400.
* **Origin**: a state-changing request (anything but GET/HEAD/OPTIONS) whose ``Origin`` (or, without
  one, ``Referer``) is another site's is refused with 403, so a page elsewhere cannot post uploads
  or searches. Browsers send ``Origin`` on every cross-origin POST, including ``mode: "no-cors"``;
  clients that send neither (curl, scripts) are local by the Host rule.
* **Size**: a body is refused with 413 as soon as its ``Content-Length`` says it is too large, and
  otherwise counted while it streams in and cut off at the limit, so nothing larger than the limit
  is ever read, spooled or written: ``max_upload_bytes`` for uploads, ``max_body_bytes`` (1 MB)
  for everything else.
* **Time**: a body that stops arriving for ``body_idle_seconds`` is answered 408. A refused body
  (413, 408) is answered with ``Connection: close``, so the server closes the connection instead of
  reading the rest of it. (Slow request *headers* are cut off by ``protocol.py``.)
"""

from __future__ import annotations

import asyncio
import time
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

MAX_BODY_BYTES = 1 << 20
BODY_IDLE_SECONDS = 30.0  # a request body that sends nothing for this long is answered 408
BODY_GRACE_SECONDS = 10.0  # after this long, a body must arrive at MIN_BODY_RATE on average...
MIN_BODY_RATE = 16 * 1024  # ...bytes per second, or it is answered 408 (a trickle holds a slot forever)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def host_name(value: str) -> str:
    """``"[::1]:8000"`` -> ``"::1"``, ``"Example.com:80"`` -> ``"example.com"``; "" for garbage."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.index("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _netloc(value: str) -> str:
    """``"LocalHost:80"`` -> ``"localhost"``: host and port as compared for same-origin (default port dropped)."""
    value = value.strip().lower()
    return value[:-3] if value.endswith(":80") else value


class RequestGuard:
    """ASGI middleware applying the module's three rules.

    Args:
        app: the ASGI app to guard.
        allowed_hosts: host names answered (ports are ignored).
        max_upload_bytes: body limit of the paths in ``upload_paths``.
        max_body_bytes: body limit of every other request.
    """

    def __init__(self, app, allowed_hosts: Iterable[str], max_upload_bytes: int,
                 max_body_bytes: int = MAX_BODY_BYTES, upload_paths: Iterable[str] = ("/api/uploads",),
                 body_idle_seconds: float = BODY_IDLE_SECONDS) -> None:
        self.app = app
        self.body_idle_seconds = float(body_idle_seconds)
        self.allowed_hosts = {host_name(host) for host in allowed_hosts}
        self.max_upload_bytes = int(max_upload_bytes)
        self.max_body_bytes = int(max_body_bytes)
        self.upload_paths = frozenset(upload_paths)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        host = host_name(headers.get("host", ""))
        if host not in self.allowed_hosts:
            await _refuse(send, 400, f"host {host or '(none)'!r} is not served here; start the server with "
                                     f"--allowed-host {host or 'NAME'} to allow it")
            return
        if scope["method"] not in SAFE_METHODS:
            source = headers.get("origin") or headers.get("referer")
            # same origin = same host *and port*: a page on another port of 127.0.0.1 is another site
            if source and source != "null" and _netloc(urlsplit(source).netloc) != _netloc(headers.get("host", "")):
                await _refuse(send, 403, f"cross-origin request from {urlsplit(source).netloc!r} refused")
                return
            if source == "null":
                await _refuse(send, 403, "request from an opaque origin refused")
                return
        limit = self.max_upload_bytes if scope["path"] in self.upload_paths else self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "invalid Content-Length")
                return
            if int(declared) > limit:
                await _refuse(send, 413, f"request body of {int(declared)} bytes is over the {limit}-byte limit")
                return
        received = 0
        started = False
        refused = False  # the body was cut off: the connection must close, not be drained
        began = time.monotonic()

        async def counted_receive():
            nonlocal received, refused
            try:
                message = await asyncio.wait_for(receive(), self.body_idle_seconds)
            except asyncio.TimeoutError:
                refused = True
                raise HTTPException(408, f"the request body sent nothing for {self.body_idle_seconds:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise HTTPException(413, f"request body is over the {limit}-byte limit")
                elapsed = time.monotonic() - began
                if message.get("more_body") and elapsed > BODY_GRACE_SECONDS and received < MIN_BODY_RATE * elapsed:
                    refused = True
                    raise HTTPException(408, f"the request body arrives slower than {MIN_BODY_RATE // 1024} KB/s")
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if refused:
                    message = {**message, "headers": [*[(key, value) for key, value in message.get("headers", [])
                                                         if key.lower() != b"connection"], (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except HTTPException as error:  # raised by counted_receive outside a route's handler
            if started:
                raise
            await _refuse(send, error.status_code, str(error.detail))  # _refuse closes the connection


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

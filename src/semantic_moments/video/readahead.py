"""Reading sources in worker threads while the caller works: decoding overlaps the backbone."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(sources: Sequence[T], read: Callable[[T], R], workers: int,
               ahead: int | None = None) -> Iterator[tuple[T, R | Exception]]:
    """Yield (source, read(source)) in input order, or (source, the exception it raised), reading in
    ``workers`` threads and keeping ``ahead`` reads (default: ``workers``) in flight beyond the one
    handed out, so decoding goes on while the caller works on the current clip."""
    ahead = workers if ahead is None else ahead
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        position = 0
        while position < len(sources) or pending:
            while position < len(sources) and len(pending) <= ahead:
                pending.append((sources[position], pool.submit(read, sources[position])))
                position += 1
            source, future = pending.popleft()
            try:
                result: R | Exception = future.result()
            except Exception as error:  # noqa: BLE001 - handed to the caller, which reports it
                result = error
            yield source, result

"""Fetch the next page while the current one lands.

An extract alternates between waiting on the source (the request, the
server's work, the transfer) and landing what came back (serialising the
page and compressing it). Done in turn, the landing time adds to every page's
wait; with the next request already in flight it is mostly hidden behind it.
Only reading moves ahead: a page is landed, and the checkpoint that names the
page after it is written, in order in the caller's thread, so a crash still
resumes from the last page durably landed and a prefetched page is simply
fetched again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield what `items` yields, pulling up to `depth` items ahead in a thread.

    An error raised while pulling is raised here, in order, once the items
    before it have been yielded. Closing this generator early (the caller
    failed) does not wait for a request in flight: the thread stops after it.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pull() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Failed(error))
            return
        put(_DONE)

    thread = threading.Thread(target=pull, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()

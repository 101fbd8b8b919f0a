"""`ahead`: the next page is fetched while the current one lands, and nothing else changes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from extract_load.sources.prefetch import ahead


def test_yields_everything_in_order() -> None:
    assert list(ahead(iter(range(1000)))) == list(range(1000))
    assert list(ahead(iter([]))) == []


def test_the_next_item_is_pulled_while_the_current_one_is_handled() -> None:
    second_requested = threading.Event()

    def pages() -> Iterator[int]:
        yield 1
        second_requested.set()
        yield 2

    items = ahead(pages())
    assert next(items) == 1
    # The caller is still "landing" page 1, and page 2 is already being fetched.
    assert second_requested.wait(timeout=30)
    assert list(items) == [2]


def test_an_error_comes_after_the_items_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("the API went away")

    items = ahead(pages())
    assert next(items) == 1
    assert next(items) == 2
    with pytest.raises(ConnectionError, match="went away"):
        next(items)


def test_closing_early_stops_pulling() -> None:
    pulled: list[int] = []
    release = threading.Event()

    def pages() -> Iterator[int]:
        for page in range(100):
            pulled.append(page)
            yield page
            release.wait(timeout=30)

    items = ahead(pages(), depth=1)
    assert next(items) == 0
    items.close()  # the caller failed while landing page 0
    release.set()
    threading.Event().wait(1)  # time enough to pull all 100, were it not stopped
    # The page in flight, and the one after it waiting for a free slot; nothing more.
    assert len(pulled) <= 3

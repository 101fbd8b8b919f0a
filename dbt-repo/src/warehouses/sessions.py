"""One connection for a series of reads, or one per read: the part DuckDB's and PostgreSQL's readers share."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Self


class Sessions:
    """Mixed into a dataclass reader with a `connection` field (None outside a session).

    Outside `session()` each read opens its own connection and closes it, so an
    idle reader holds nothing a build waits for; inside, every read shares one.
    """

    connection: Any

    def _open(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    @contextmanager
    def session(self) -> Iterator[Self]:
        if self.connection is not None:
            yield self
            return
        with self._open() as con:
            yield dataclasses.replace(self, connection=con)  # type: ignore[type-var]

    @contextmanager
    def _connected(self) -> Iterator[Any]:
        if self.connection is not None:
            yield self.connection
            return
        with self._open() as con:
            yield con

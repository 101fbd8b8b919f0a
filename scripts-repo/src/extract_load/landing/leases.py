"""A lease on an interval's landing: one batch writer at a time, and a crashed one's turn ends.

The manifest's compare-and-swap (manifest.py) already keeps two writers of one
interval from corrupting it: the second to commit fails. Without a lease both
still extract the whole interval first (an API's quota, an hour of a pod),
and the loser learns only at the end. The lease makes the second writer wait
for the first, or take over once the first stops renewing (a killed pod), and
makes a writer that lost its lease stop before it commits.

`_lease.json` beside the manifest names its owner (run, host, process) and
when it expires. It is taken and renewed only by compare-and-swap on the
object's generation (GCS `if_generation_match`; locally an exclusive lock and
the content's digest), so two writers can never both believe they hold it.
A heartbeat thread renews it every third of its time to live; expiry is
judged by wall clocks, so the writers' clocks must agree to well within the
time to live (NTP on every node and pod does).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from extract_load.landing.bucket import Bucket
from extract_load.landing.manifest import ConcurrentCommitError
from extract_load.settings import settings

log = logging.getLogger(__name__)

LEASE = "_lease.json"
# Long enough that a renewal can miss twice on a slow bucket; short enough that a killed
# pod's interval is free again before Airflow's second retry (30 s, then 60 s).
# (EXTRACT_LOAD_LEASE_SECONDS, default 60 s.) A writer waits this many leases' time for another's lease to
# be released or to expire before it gives up (exit 4, retried): a crashed holder's expires within one.
WAIT_LEASES = 2.5


class IntervalBusyError(ConcurrentCommitError):
    """Another live writer holds the interval's lease."""


class LeaseLostError(ConcurrentCommitError):
    """This writer's lease expired or was taken over: it must not commit."""


@dataclass(eq=False)
class Lease:
    bucket: Bucket
    prefix: str
    ttl: float = field(default_factory=lambda: settings().lease_seconds)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    generation: str = field(default="0", init=False)
    expires_at: float = field(default=0.0, init=False)
    _lost: str | None = field(default=None, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _heartbeat: threading.Thread | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def key(self) -> str:
        return f"{self.prefix}/{LEASE}"

    def _body(self, now: float) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "renewed_at": now,
                "expires_at": now + self.ttl,
            },
            sort_keys=True,
        ).encode()

    def acquire(self, wait: float | None = None) -> Lease:
        """Take the lease: free, expired or already ours; else wait up to `wait` seconds, then refuse."""
        wait = WAIT_LEASES * self.ttl if wait is None else wait
        deadline = time.monotonic() + wait
        while True:
            data, generation = self.bucket.read_versioned(self.key)
            holder = _parse(data)
            now = time.time()
            if holder is None or holder.get("owner") == self.owner or float(holder["expires_at"]) <= now:
                if written := self.bucket.write_if(self.key, self._body(now), generation):
                    self.generation = written
                    self.expires_at = now + self.ttl
                    if holder is not None and holder.get("owner") != self.owner:
                        log.warning(
                            "took over %s from %s, whose lease had expired", self.prefix, _who(holder)
                        )
                    return self
                continue  # another writer moved first: look again
            if time.monotonic() >= deadline:
                raise IntervalBusyError(
                    f"{self.bucket.url}/{self.prefix} is being written by {_who(holder)} until "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(float(holder['expires_at'])))} "
                    f"(renewed while it runs); waited {wait:g} s: retry once it finishes"
                )
            time.sleep(min(1.0, max(0.05, self.ttl / 10)))

    def renew(self) -> None:
        """Extend the lease by compare-and-swap; lost when someone else wrote it meanwhile."""
        with self._lock:
            if self._lost:
                raise LeaseLostError(self._lost)
            now = time.time()
            written = self.bucket.write_if(self.key, self._body(now), self.generation)
            if written is None:
                data, _ = self.bucket.read_versioned(self.key)
                self._lost = (
                    f"{self.bucket.url}/{self.prefix}: this run's lease was taken over by "
                    f"{_who(_parse(data))} after it expired (this run stalled over {self.ttl:.0f} s); "
                    "it stops without committing: extract the interval again"
                )
                raise LeaseLostError(self._lost)
            self.generation = written
            self.expires_at = now + self.ttl

    def ensure_held(self) -> None:
        """Before a part or the commit: stop if the lease was lost or has run out unrenewed."""
        if self._lost:
            raise LeaseLostError(self._lost)
        if time.time() >= self.expires_at:
            self.renew()

    def release(self) -> None:
        """Give the interval back at once (not after the time to live); only if still ours."""
        with self._lock:
            if not self._lost:
                self.bucket.delete_if(self.key, self.generation)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except LeaseLostError:
                return
            except Exception as error:  # noqa: BLE001 - a bucket hiccup: the next beat tries again
                log.warning("could not renew the lease on %s: %s", self.prefix, error)

    def __enter__(self) -> Lease:
        if self.expires_at == 0.0:
            self.acquire()
        self._heartbeat = threading.Thread(target=self._beat, name=f"lease {self.prefix}", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self.release()


def _parse(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        holder = json.loads(data)
        float(holder["expires_at"])
    except (ValueError, KeyError, TypeError):
        return {"owner": "?", "expires_at": 0.0}  # unreadable: treat as expired, never as a hold for ever
    return dict(holder)


def _who(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another run"
    return f"run {holder.get('owner')} (host {holder.get('host')}, pid {holder.get('pid')})"

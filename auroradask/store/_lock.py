"""The store's lock: one writer at a time, a dead writer's lock taken over, atomically.

A writer holds ``<store>.lock`` and refreshes its heartbeat while it runs; a second writer is
refused while the lock is fresh. A lock whose process is gone (same host) or whose heartbeat is
older than ``stale_after`` seconds is stale and is taken over.

How atomic each step is depends on what the filesystem offers:

- Local (or shared POSIX) filesystems: a lock appears whole (written to a temporary file,
  then hard-linked into place, which fails if a lock exists), and a stale lock is taken over
  by renaming it aside, which only one contender can do; the contender then checks that what
  it moved is the stale lock it judged, and puts back anything else.
- S3 (s3fs; AWS S3 and servers with conditional writes: MinIO, Ceph RGW, moto): every step is
  one conditional request. The lock is created with ``If-None-Match: *`` (exactly one of
  racing creators gets it); a stale lock is taken over by overwriting it with
  ``If-Match: <the ETag judged stale>``, a compare-and-swap that only one contender wins and
  that fails if the holder's heartbeat came in between; heartbeats are written with
  ``If-Match`` of the holder's own last ETag, so a writer whose lock was taken over stops
  beating instead of overwriting the new holder; release deletes with ``If-Match`` too. A
  server that answers that it does not implement ``If-Match`` falls back to the steps below.
- Other object stores (GCS, Azure, ...): the lock is created with fsspec's ``mode="create"``,
  which is a conditional create where the fsspec implementation makes it one (and an
  exists-then-write otherwise); taking over a stale lock is a delete then a create, so two
  writers that judged one lock stale in the same instant are told apart by the create only
  if that create is conditional. The README says so.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import warnings
from typing import Any

import fsspec
from fsspec.asyn import sync

from ..errors import ArgumentError, StoreError, StoreLockedError
from ._layout import write_whole

LOCK_SUFFIX = ".lock"
#: Said by the lock's errors on filesystems where its steps are not known to be atomic.
_NOT_ATOMIC = (
    " (on this filesystem the lock is not known to be atomic: taking over a stale lock is a "
    "delete then a create, so do not start two writers on one store at once)"
)
HEARTBEAT_SECONDS = 20.0


class StoreLock:
    """An advisory lock file beside the store, refreshed by a heartbeat thread while held."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, stale_after: float) -> None:
        if not stale_after >= 3 * HEARTBEAT_SECONDS:
            raise ArgumentError(
                f"stale_after: {stale_after!r} s would let a second writer take a live "
                f"writer's lock between two heartbeats; use at least {3 * HEARTBEAT_SECONDS:g}"
            )
        self.fs, self.path, self.stale_after = fs, f"{root.rstrip('/')}{LOCK_SUFFIX}", stale_after
        #: True once another writer took this lock over: the writer must stop writing
        self.lost = False
        self.record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": os.urandom(8).hex(),
        }
        protocol = fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        self.local = bool(protocols & {"file", "local"})
        # s3fs speaks to S3 itself: its conditional requests (If-Match) are used directly
        self.s3 = not self.local and hasattr(fs, "_call_s3") and bool(protocols & {"s3", "s3a"})
        self._etag: str | None = None  # of the lock as this writer last wrote it (S3)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ reading a lock

    def _payload(self) -> bytes:
        return json.dumps({**self.record, "heartbeat": time.time()}).encode()

    def _read(self, path: str | None = None) -> dict[str, Any] | None:
        """The lock's record; None if there is no lock; ``{}`` if it cannot be parsed.

        On S3 the record also carries ``"_etag"``: the version read, which a takeover names
        in its conditional overwrite so that it replaces exactly the lock judged stale.
        """
        etag = None
        try:
            if self.s3 and path is None:
                response = self._s3("get_object")
                raw, etag = response["Body"], response.get("ETag")
            else:
                raw = self.fs.cat_file(path or self.path)
            holder = json.loads(raw)
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            holder = {}
        holder = holder if isinstance(holder, dict) else {}
        if etag is not None:
            holder["_etag"] = etag
        return holder

    # ------------------------------------------------------------------ S3 requests

    def _s3(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """One S3 request on the lock object through s3fs (its session, retries, errors)."""
        bucket, key, _ = self.fs.split_path(self.path)

        async def call() -> dict[str, Any]:
            response = await self.fs._call_s3(method, Bucket=bucket, Key=key, **kwargs)
            if method == "get_object":
                async with response["Body"] as body:
                    response["Body"] = await body.read()
            return response

        return sync(self.fs.loop, call)

    def _s3_conditional(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        """A conditional S3 request: its response, or None if its precondition failed.

        Raises ``NotImplementedError`` if the server does not implement the condition, so
        that the caller can fall back to the non-atomic steps (and say so).
        """
        try:
            return self._s3(method, **kwargs)
        except FileNotFoundError:
            return None  # the object the condition names is gone: the condition failed
        except OSError as error:
            code, status = _s3_error(error)
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (
                409,
                412,
            ):
                return None
            if code in ("NotImplemented", "InvalidArgument") or status == 501:
                raise NotImplementedError(
                    f"{self.path}: the S3 server refuses conditional {method} ({code}); "
                    "a stale lock's takeover there is not atomic"
                ) from error
            raise

    def _is_stale(self, holder: dict[str, Any]) -> bool:
        if not {k: v for k, v in holder.items() if k != "_etag"}:
            # unreadable: on an object store possibly a lock being written; stale only once
            # the file itself is older than a heartbeat could leave it
            modified = self._modified()
            return modified is not None and time.time() - modified > self.stale_after
        if holder.get("host") == self.record["host"]:
            # on this host the process itself says: a live writer's lock is never taken,
            # however late its heartbeat (a busy machine can delay the thread)
            try:
                pid = int(holder["pid"])
                if isinstance(holder["pid"], bool) or pid <= 0:
                    # 0 and -1 name a process group and every process: os.kill finds them
                    # alive, but no writer wrote them
                    return True
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except (PermissionError, KeyError, ValueError, TypeError, OverflowError):
                pass
            else:
                return False
        age = self._age(holder)
        return age is None or age > self.stale_after

    def _age(self, holder: dict[str, Any]) -> float | None:
        """Seconds since the holder's last heartbeat, by this machine's clock, never negative.

        A heartbeat that is missing, not a finite number or dated in the future (another
        host's clock, or a damaged record) says nothing: the lock file's modification time
        (the filesystem's clock, refreshed by every heartbeat) is used instead. None if
        neither tells: the lock is then judged stale, as a lock that no live writer could
        have left as it is.
        """
        now = time.time()
        try:
            beat = float(holder.get("heartbeat"))
        except (TypeError, ValueError):
            beat = math.nan
        if math.isfinite(beat) and beat <= now:
            return now - beat
        modified = self._modified()
        if modified is not None:
            return max(now - modified, 0.0)
        if math.isfinite(beat) and beat - now <= self.stale_after:  # a clock a little ahead
            return 0.0
        return None

    def _modified(self) -> float | None:
        """The lock file's modification time (seconds since the epoch), None if unknown."""
        try:
            return self.fs.modified(self.path).timestamp()
        except (FileNotFoundError, NotImplementedError, OSError, AttributeError, ValueError):
            return None

    def _refuse(self, holder: dict[str, Any]) -> StoreLockedError:
        age = self._age(holder)
        return StoreLockedError(
            f"store: another writer holds {self.path} (host {holder.get('host')}, pid "
            f"{holder.get('pid')}, heartbeat "
            + ("unknown" if age is None else f"{age:.0f} s ago")
            + "); wait for it to finish, or delete the lock file if you are sure no writer "
            "is running" + ("" if self.local or self.s3 else _NOT_ATOMIC)
        )

    def _not_a_lock(self) -> StoreError:
        return StoreError(
            f"store: {self.path} is a folder, where the store's lock file goes; auroradask "
            "leaves it alone: move it away, or write the store elsewhere"
        )

    def holder(self) -> dict[str, Any] | None:
        """The record of the writer holding the lock now, or None if there is no lock or it
        is stale: what a reader asks, without taking the lock, to tell a store being written
        from one whose writer died."""
        try:
            if self.fs.isdir(self.path):  # not a lock at all
                return None
            holder = self._read()
        except OSError:  # unreadable: no live writer's lock that can be told
            return None
        if holder is None or self._is_stale(holder):
            return None
        return holder

    # ------------------------------------------------------------------ taking the lock

    def acquire(self) -> None:
        parent = self.path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self.fs.isdir(self.path):  # never judged, and never moved aside: it is not a lock
            raise self._not_a_lock()
        for _ in range(3):  # a takeover that loses a race looks once more
            if self._create():
                break
            holder = self._read()
            if holder is None:
                continue  # released in between: try again
            if holder.get("token") == self.record["token"]:
                # our own create went through but its answer was lost (a retried request)
                self._etag = holder.get("_etag")
                break
            if not self._is_stale(holder):
                raise self._refuse(holder)
            if self._take_over(holder):
                break
        else:
            raise StoreLockedError(
                f"store: {self.path} changed hands while taking it; try again"
                + ("" if self.local or self.s3 else _NOT_ATOMIC)
            )
        self._thread = threading.Thread(target=self._beat, daemon=True, name="auroradask-lock")
        self._thread.start()

    def _create(self) -> bool:
        """Create the lock whole, only if there is none; True if this writer now holds it."""
        payload = self._payload()
        if self.local:
            tmp = f"{self.path}.{self.record['token']}.partial"
            try:  # atomic, and fails if a lock exists
                write_whole(self.path, payload, tmp, link=True)
                return True
            except FileExistsError:
                return False
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        if self.s3:
            response = self._s3_conditional("put_object", Body=payload, IfNoneMatch="*")
            if response is None:
                return False
            self._etag = response.get("ETag")
            return True
        try:
            self.fs.pipe_file(self.path, payload, mode="create")
            return True
        except FileExistsError:
            return False

    def _take_over(self, stale: dict[str, Any]) -> bool:
        """Replace or remove a stale lock, making sure it is the one judged stale.

        Returns True if this writer now holds the lock (S3: the stale lock was overwritten
        with ours in one conditional request), False if the caller must create it anew.
        """
        if self.s3 and stale.get("_etag"):
            try:
                response = self._s3_conditional(
                    "put_object", Body=self._payload(), IfMatch=stale["_etag"]
                )
            except NotImplementedError as error:
                warnings.warn(str(error), stacklevel=3)
            else:
                if response is None:
                    return False  # it changed since we judged it: look again
                self._etag = response.get("ETag")
                return True
        if not self.local:
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass
            return False
        aside = f"{self.path}.{self.record['token']}.stale"
        if os.path.isdir(self.path):
            raise self._not_a_lock()
        try:
            os.rename(self.path, aside)  # of two contenders, one moves it
        except FileNotFoundError:
            return False
        if os.path.isdir(aside):  # a folder came in its place just now: it goes back
            os.rename(aside, self.path)
            raise self._not_a_lock()
        moved = self._read(aside)
        if moved is not None and moved.get("token") != stale.get("token"):
            # someone took the stale lock over just before: put theirs back
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
            os.unlink(aside)
            raise self._refuse(moved)
        os.unlink(aside)
        return False

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                beating = self._beat_once()
            except OSError:  # a full disk, a network hiccup: a missed beat, the next tries
                continue
            if not beating:
                self.lost = True  # taken over: the writer stops before its next step
                return

    def check(self) -> None:
        """Raise if another writer took this lock over (this writer hung too long)."""
        if self.lost:
            raise StoreLockedError(
                f"store: another writer took {self.path} over while this one ran (its "
                "heartbeat was late); stopped writing. Run again when the other has finished"
            )

    def _beat_once(self) -> bool:
        """Refresh the heartbeat; False if the lock is no longer this writer's.

        On S3 the refresh is conditional on the lock being the one this writer last wrote,
        so a writer that was taken over (it hung longer than ``stale_after``) never
        overwrites the new holder's lock; elsewhere the lock is read first.
        """
        if self.s3 and self._etag:
            try:
                response = self._s3_conditional(
                    "put_object", Body=self._payload(), IfMatch=self._etag
                )
            except NotImplementedError:
                pass  # falls back to read-then-write below
            except OSError:
                return True  # a missed beat: the next one tries again
            else:
                if response is None:
                    return False
                self._etag = response.get("ETag")
                return True
        holder = self._read()
        if holder is None or holder.get("token") != self.record["token"]:
            return False
        if self.local:
            write_whole(self.path, self._payload(), f"{self.path}.{self.record['token']}.beat")
        else:
            self.fs.pipe_file(self.path, self._payload())
        return True

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.s3 and self._etag:
            try:  # delete only the lock as we last wrote it, never a new holder's
                self._s3_conditional("delete_object", IfMatch=self._etag)
                return
            except NotImplementedError:
                pass
        holder = self._read()
        if holder is not None and holder.get("token") == self.record["token"]:
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _s3_error(error: BaseException) -> tuple[str | None, int | None]:
    """The S3 error code and HTTP status behind an error s3fs translated (its ``__cause__``)."""
    for cause in (error, error.__cause__, error.__context__):
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return response.get("Error", {}).get("Code"), status
    return None, None

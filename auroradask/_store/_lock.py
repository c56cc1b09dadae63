"""The store's lock: one writer at a time, a dead writer's lock taken over, atomically.

A writer holds ``<store>.lock`` and refreshes its heartbeat while it runs; a second writer is
refused while the lock is fresh. A lock whose process is gone (same host) or whose heartbeat is
older than ``stale_after`` seconds is stale and is taken over.

On a local (or shared POSIX) filesystem every step is atomic: a lock appears whole (written
to a temporary file, then hard-linked into place, which fails if a lock exists), and a stale
lock is taken over by renaming it aside, which only one contender can do; the contender then
checks that what it moved is the stale lock it judged, and puts back anything else. On object
stores the lock is created with a conditional write (``If-None-Match: *`` through fsspec's
``mode="create"``) where the filesystem supports one; taking over a stale lock there is a
delete and a conditional create, so two writers that both judged one lock stale in the same
instant are told apart by the create, but a store without conditional writes cannot make
that atomic (the README says so).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

import fsspec

from ..errors import StoreLockedError

LOCK_SUFFIX = ".lock"
HEARTBEAT_SECONDS = 20.0


class StoreLock:
    """An advisory lock file beside the store, refreshed by a heartbeat thread while held."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, stale_after: float) -> None:
        self.fs, self.path, self.stale_after = fs, f"{root.rstrip('/')}{LOCK_SUFFIX}", stale_after
        self.record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": os.urandom(8).hex(),
        }
        protocol = fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        self.local = bool(protocols & {"file", "local"})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ reading a lock

    def _payload(self) -> bytes:
        return json.dumps({**self.record, "heartbeat": time.time()}).encode()

    def _read(self, path: str | None = None) -> dict[str, Any] | None:
        """The lock's record; None if there is no lock; ``{}`` if it cannot be parsed."""
        try:
            holder = json.loads(self.fs.cat_file(path or self.path))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def _is_stale(self, holder: dict[str, Any]) -> bool:
        if not holder:
            # unreadable: on an object store possibly a lock being written; stale only once
            # the file itself is older than a heartbeat could leave it
            try:
                modified = self.fs.modified(self.path).timestamp()
            except (FileNotFoundError, NotImplementedError, OSError, AttributeError):
                return False
            return time.time() - modified > self.stale_after
        try:
            beat = float(holder.get("heartbeat", 0))
        except (TypeError, ValueError):
            beat = 0.0
        if time.time() - beat > self.stale_after:
            return True
        if holder.get("host") == self.record["host"]:
            try:
                os.kill(int(holder["pid"]), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, KeyError, ValueError, TypeError, OverflowError):
                return False
        return False

    def _refuse(self, holder: dict[str, Any]) -> StoreLockedError:
        try:
            age = f"{time.time() - float(holder.get('heartbeat', 0)):.0f} s ago"
        except (TypeError, ValueError):
            age = "unknown"
        return StoreLockedError(
            f"store: another writer holds {self.path} (host {holder.get('host')}, pid "
            f"{holder.get('pid')}, heartbeat {age}); wait for it to finish, or delete the "
            "lock file if you are sure no writer is running"
        )

    # ------------------------------------------------------------------ taking the lock

    def acquire(self) -> None:
        parent = self.path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        for _ in range(3):  # a takeover that loses a race looks once more
            if self._create():
                break
            holder = self._read()
            if holder is None:
                continue  # released in between: try again
            if not self._is_stale(holder):
                raise self._refuse(holder)
            self._take_over(holder)
        else:
            raise StoreLockedError(f"store: {self.path} changed hands while taking it; try again")
        self._thread = threading.Thread(target=self._beat, daemon=True, name="auroradask-lock")
        self._thread.start()

    def _create(self) -> bool:
        """Create the lock whole, only if there is none; True if this writer now holds it."""
        payload = self._payload()
        if self.local:
            tmp = f"{self.path}.{self.record['token']}.partial"
            with open(tmp, "wb") as f:
                f.write(payload)
            try:
                os.link(tmp, self.path)  # atomic, and fails if a lock exists
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        try:
            self.fs.pipe_file(self.path, payload, mode="create")
            return True
        except FileExistsError:
            return False

    def _take_over(self, stale: dict[str, Any]) -> None:
        """Remove a stale lock, making sure it is the one judged stale."""
        if not self.local:
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass
            return
        aside = f"{self.path}.{self.record['token']}.stale"
        try:
            os.rename(self.path, aside)  # of two contenders, one moves it
        except FileNotFoundError:
            return
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

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            holder = self._read()
            if holder is None or holder.get("token") != self.record["token"]:
                return  # taken over: the writer's next store step is no longer protected
            if self.local:
                tmp = f"{self.path}.{self.record['token']}.beat"
                with open(tmp, "wb") as f:
                    f.write(self._payload())
                os.replace(tmp, self.path)
            else:
                self.fs.pipe_file(self.path, self._payload())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
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

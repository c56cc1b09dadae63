"""The store's lock: one writer at a time, a dead writer's lock taken over.

A run writes ``<store>.lock`` beside the store and refreshes its heartbeat while it holds
it; a second writer is refused while it is fresh. A lock whose process is gone (same host)
or whose heartbeat is older than ``stale_after`` seconds is stale and is taken over.
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
    """An advisory lock file in the store, refreshed by a heartbeat thread while held."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, stale_after: float) -> None:
        self.fs, self.path, self.stale_after = fs, f"{root.rstrip('/')}{LOCK_SUFFIX}", stale_after
        self.record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": os.urandom(8).hex(),
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _payload(self) -> bytes:
        return json.dumps({**self.record, "heartbeat": time.time()}).encode()

    def _holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {"heartbeat": 0}  # unreadable lock: treat as stale

    def _is_stale(self, holder: dict[str, Any]) -> bool:
        if time.time() - float(holder.get("heartbeat", 0)) > self.stale_after:
            return True
        if holder.get("host") == self.record["host"]:
            try:
                os.kill(int(holder["pid"]), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, KeyError, ValueError, TypeError):
                return False
        return False

    def acquire(self) -> None:
        holder = self._holder()
        if holder is not None:
            if not self._is_stale(holder):
                age = time.time() - float(holder.get("heartbeat", 0))
                raise StoreLockedError(
                    f"store: another writer holds {self.path} (host {holder.get('host')}, pid "
                    f"{holder.get('pid')}, heartbeat {age:.0f} s ago); wait for it to finish, or "
                    "delete the lock file if you are sure no writer is running"
                )
            self.fs.rm_file(self.path)
        self.fs.makedirs(self.path.rsplit("/", 1)[0], exist_ok=True)
        if isinstance(self.fs, fsspec.implementations.local.LocalFileSystem):
            try:  # exclusive create: of two writers starting at once, one wins
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise StoreLockedError(f"store: another writer took {self.path} just now") from None
            with os.fdopen(fd, "wb") as f:
                f.write(self._payload())
        else:
            self.fs.pipe_file(self.path, self._payload())
        self._thread = threading.Thread(target=self._beat, daemon=True, name="auroradask-lock")
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.fs.pipe_file(self.path, self._payload())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self._holder()
        if holder is not None and holder.get("token") == self.record["token"]:
            self.fs.rm_file(self.path)

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

"""The store's lock: a second writer is refused, a dead writer's lock is taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest
from utils import classify_sample

import auroradask
from auroradask._store import StoreLock


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_stale(tmp_path):
    store = tmp_path / "results.zarr"
    fs = fsspec.filesystem("file")
    with StoreLock(fs, str(store), stale_after=300):
        with pytest.raises(auroradask.StoreLockedError, match="another writer holds"):
            auroradask.to_zarr(classify_sample(), store)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = {
        "host": os.uname().nodename,
        "pid": int(dead.stdout),
        "token": "x",
        "heartbeat": time.time(),
    }
    Path(f"{store}.lock").write_text(json.dumps(lock))
    assert auroradask.to_zarr(classify_sample(), store).written == 120
    old = {**lock, "host": "elsewhere", "heartbeat": time.time() - 3600}
    Path(f"{store}.lock").write_text(json.dumps(old))
    assert auroradask.to_zarr(classify_sample(), store).skipped == 120

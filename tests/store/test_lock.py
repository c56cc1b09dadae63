"""The store's lock: a second writer is refused, a dead writer's lock is taken over."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

import auroradask
from auroradask.store import StoreLock
from tests.support.utils import classify_sample


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


def _contend(path: str, barrier, wins, stale_after: float) -> None:
    fs = fsspec.filesystem("file")
    lock = StoreLock(fs, path, stale_after=stale_after)
    barrier.wait()
    try:
        lock.acquire()
    except auroradask.StoreLockedError:
        return
    wins.put(os.getpid())
    time.sleep(0.2)  # hold it while the other one looks
    lock._stop.set()  # leave the lock file: the next trial finds it held or stale


@pytest.mark.slow
@pytest.mark.parametrize("start", ["fresh", "stale"])
def test_two_writers_racing_for_the_lock_exactly_one_wins(tmp_path, start):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for trial in range(40):
        path = str(tmp_path / f"store-{trial}.zarr")
        if start == "stale":  # a dead writer's lock, an hour old
            Path(f"{path}.lock").write_text(
                json.dumps({"host": "elsewhere", "pid": 1, "token": "old", "heartbeat": 0})
            )
        barrier, wins = context.Barrier(2), context.Queue()
        racers = [
            context.Process(target=_contend, args=(path, barrier, wins, 300.0)) for _ in range(2)
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=30)
            assert racer.exitcode == 0, f"trial {trial}: a contender crashed"
        winners = []
        while not wins.empty():
            winners.append(wins.get())
        assert len(winners) == 1, f"trial {trial}: {len(winners)} writers took the lock"
        holder = json.loads(Path(f"{path}.lock").read_text())
        assert holder["pid"] == winners[0]
        assert not list(tmp_path.glob(f"store-{trial}.zarr.lock.*")), "debris left"


def test_a_lock_being_written_is_not_stale(tmp_path):
    fs = fsspec.filesystem("file")
    path = tmp_path / "store.zarr"
    Path(f"{path}.lock").write_text("")  # as an object store may show a lock mid-write
    with pytest.raises(auroradask.StoreLockedError):
        StoreLock(fs, str(path), stale_after=300).acquire()


def test_the_heartbeat_advances_and_a_taken_over_writer_stops(tmp_path, monkeypatch):
    from auroradask.store import _lock

    monkeypatch.setattr(_lock, "HEARTBEAT_SECONDS", 0.05)
    path = tmp_path / "store.zarr"
    lock = StoreLock(fsspec.filesystem("file"), str(path), stale_after=300)
    lock.acquire()
    try:
        first = json.loads(Path(f"{path}.lock").read_text())["heartbeat"]
        time.sleep(0.5)
        assert json.loads(Path(f"{path}.lock").read_text())["heartbeat"] > first
        lock.check()  # still held: nothing to say
        other = {"host": "elsewhere", "pid": 1, "token": "theirs", "heartbeat": time.time()}
        Path(f"{path}.lock").write_text(json.dumps(other))  # taken over by another writer
        time.sleep(0.5)
        with pytest.raises(auroradask.StoreLockedError, match="took .* over"):
            lock.check()
    finally:
        lock.release()
    assert json.loads(Path(f"{path}.lock").read_text())["token"] == "theirs"  # left theirs


def test_a_live_writer_on_this_host_keeps_its_lock_however_late_its_heartbeat(tmp_path):
    path = tmp_path / "store.zarr"
    late = {"host": os.uname().nodename, "pid": os.getpid(), "token": "x", "heartbeat": 0}
    Path(f"{path}.lock").write_text(json.dumps(late))
    with pytest.raises(auroradask.StoreLockedError, match="another writer holds"):
        StoreLock(fsspec.filesystem("file"), str(path), stale_after=300).acquire()
    with pytest.raises(auroradask.ArgumentError, match="^stale_after"):
        StoreLock(fsspec.filesystem("file"), str(path), stale_after=10)


def test_a_folder_where_the_lock_goes_is_refused_in_one_line_and_left_alone(tmp_path):
    store = tmp_path / "results.zarr"
    folder = Path(f"{store}.lock")
    folder.mkdir()
    (folder / "mine.txt").write_text("a user's file")
    old = time.time() - 7200
    os.utime(folder, (old, old))  # an old folder: it would look like a stale lock
    with pytest.raises(auroradask.StoreError, match="^store: .*lock is a folder") as error:
        auroradask.to_zarr(classify_sample(), store)
    assert len(str(error.value).splitlines()) == 1
    assert (folder / "mine.txt").read_text() == "a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.zarr.lock"]
    with pytest.raises(auroradask.StoreError, match="is a folder"):
        StoreLock(fsspec.filesystem("file"), str(store), stale_after=300).acquire()
    assert (folder / "mine.txt").exists() and not list(tmp_path.glob("*.stale"))


def _lock_file(store: Path, age: float, **record) -> Path:
    """A lock of another host with ``record``, its file last written ``age`` seconds ago."""
    path = Path(f"{store}.lock")
    record = {"host": "elsewhere", "pid": 4242, "token": "theirs", **record}
    path.write_text(json.dumps(record))  # NaN and Infinity as Python's json writes them
    written = time.time() - age
    os.utime(path, (written, written))
    return path


@pytest.mark.parametrize(
    "heartbeat",
    [float("inf"), float("nan"), time.time() + 10 * 365 * 86400, "soon", None],
    ids=["infinity", "nan", "ten-years-ahead", "not-a-number", "missing"],
)
def test_a_heartbeat_that_says_nothing_is_judged_by_the_lock_files_age(tmp_path, heartbeat):
    fs, store = fsspec.filesystem("file"), tmp_path / "results.zarr"
    record = {} if heartbeat is None else {"heartbeat": heartbeat}
    _lock_file(store, 5, **record)  # written 5 s ago: a live writer's
    with pytest.raises(auroradask.StoreLockedError, match="another writer holds") as error:
        StoreLock(fs, str(store), stale_after=300).acquire()
    assert re.search(r"heartbeat \d+ s ago\)", str(error.value)), str(error.value)
    assert "-" not in re.search(r"heartbeat (\S+)", str(error.value)).group(1)
    _lock_file(store, 3600, **record)  # not rewritten for an hour: its writer is gone
    lock = StoreLock(fs, str(store), stale_after=300)
    lock.acquire()
    lock.release()
    assert not Path(f"{store}.lock").exists()


def test_a_heartbeat_a_little_ahead_is_a_live_writer_on_a_clock_that_runs_fast(tmp_path):
    store = tmp_path / "results.zarr"
    _lock_file(store, 0, heartbeat=time.time() + 90)
    with pytest.raises(auroradask.StoreLockedError, match=r"heartbeat 0 s ago"):
        StoreLock(fsspec.filesystem("file"), str(store), stale_after=300).acquire()


@pytest.mark.parametrize("pid", [0, -1])
def test_pid_0_or_minus_1_on_this_host_is_no_writer(tmp_path, pid):
    store = tmp_path / "results.zarr"
    _lock_file(store, 0, host=os.uname().nodename, pid=pid, heartbeat=time.time())
    lock = StoreLock(fsspec.filesystem("file"), str(store), stale_after=300)
    lock.acquire()  # os.kill(0 or -1, 0) succeeds, but names no writer: taken over
    lock.release()

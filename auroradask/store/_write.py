"""Writing results into a store: pieces from the workers, one compaction per site-day.

The store keeps one chunk per site-day (see ``_layout``), but frames arrive in chunks of a
few minutes. Each results chunk is written by the worker that computed it:

- under dask's local scheduler, chunks are joined with their neighbours of the same site-day
  into pieces of up to ``auroradask.store-piece-minutes`` (120); on a distributed client
  each chunk is its own piece;
- a piece that covers a whole site-day is written straight into the day's chunks (the pieces
  an earlier run left staged for that day are removed first: they are older);
- any other piece is written as one ``.npz`` object, written whole, into the staging folder
  beside the store; once every piece of a site-day in the request is in, one task
  *compacts* the day: it overlays the pieces on the day's stored values, writes each
  variable's day chunk whole (``frame_status`` last), then removes the pieces.

A slot counts as done when its ``frame_status`` in the store is 0-3; slots whose file could not
be fetched (4) and slots never written (-1) are computed again by the next run. A kill at any
moment loses at most the pieces in flight: a staged piece is complete or absent, a day chunk
is old or new (Zarr writes local chunks by rename, object stores by one PUT), a compaction is
redone from the pieces it did not remove, and ``frame_status`` is written after the values it
vouches for.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import dask.base
import dask.threaded
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from .._config import setting, setting_or
from .._schema import (
    DAY_SLOTS,
    FILE_UNREACHABLE,
    FRAME_STATUS_MEANINGS,
    RESULT_VARIABLES,
    SITE_CODE,
    SLOT,
)
from ..distributed._progress import write_progress
from ..errors import ArgumentError, StoreError
from ._layout import (
    LAYOUT,
    StoreLocation,
    StoreState,
    _plain,
    adopt_identity,
    check_identity,
    create,
    day_axis,
    discard_unfinished_creation,
    extend,
    extra_variables,
    finish_interrupted,
    holds_results,
    locate,
    merged_provenance,
    quiet_zarr,
    read_state,
    remove,
    site_coords,
    write_attrs,
    write_bytes,
)
from ._lock import StoreLock
from ._workers import NO_WORKERS_ERRORS, no_workers_error, prepare_workers

_NAT = np.iinfo(np.int64).min


@dataclass
class WriteSummary:
    """What one :func:`to_zarr` call did.

    Attributes
    ----------
    written, skipped
        Slots written now, and slots skipped because the store already held them.
    status_counts
        Written slots by ``frame_status`` meaning.
    label_counts
        Written slots by class name.
    days_compacted
        Site-days whose chunks were (re)written.
    seconds
        Wall time of the writing.
    total
        Slots in the request (sites × times): ``written + skipped`` once it is done.
    site_done, site_total
        Per site: slots done so far (written or skipped), and slots in the request; what
        progress bars and the dashboard page show while the write runs.
    """

    written: int = 0
    skipped: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    days_compacted: int = 0
    seconds: float = 0.0
    total: int = 0
    site_done: dict[str, int] = field(default_factory=dict)
    site_total: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Slots done so far: written now or already in the store."""
        return self.written + self.skipped

    @property
    def frames(self) -> int:
        """Frames classified now: written slots that held a frame (status ok). An archive
        with gaps has many slots without one; rates are frames per second, not slots."""
        return self.status_counts.get("ok", 0)

    @property
    def frames_per_second(self) -> float:
        """:attr:`frames` over the wall time (0 when nothing was written)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def add(self, part: dict[str, Any], site: str | None = None) -> None:
        self.written += part["written"]
        if site is not None:
            self.site_done[site] = self.site_done.get(site, 0) + part["written"]
        for key in ("status_counts", "label_counts"):
            target = getattr(self, key)
            for name, count in part[key].items():
                target[name] = target.get(name, 0) + count


def to_zarr(
    results: xr.Dataset,
    store: str | os.PathLike,
    *,
    group: str | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: bool | Callable[[WriteSummary], None] = True,
    stale_after: float | None = None,
) -> WriteSummary:
    """Compute results and write them into a Zarr store, chunk by chunk, from the workers.

    Creates the store, or extends it with new days and new sites, then writes every slot of
    ``results`` that the store does not hold yet. The client never holds more than a per-chunk
    summary. Run it again after a crash or a kill and it resumes. Under the local scheduler,
    consecutive chunks of a site-day are written as one piece of up to
    ``auroradask.store-piece-minutes`` (120); on a distributed client each chunk is its own
    piece. A kill loses at most the pieces being computed.

    Parameters
    ----------
    results
        From :func:`auroradask.classify` (lazy), or any dataset of the same variables
        (in memory or dask-backed).
    store
        A local path (made absolute before the workers see it) or any fsspec URL. Workers
        must be able to reach it.
    group
        Zarr group inside the store (several models can share a store in separate groups).
    storage_options
        Passed to fsspec.
    progress
        True (default) shows a ``tqdm.auto`` bar (frames done of total, rate, time left; in a
        notebook a widget), False shows nothing (so does the environment variable
        ``TQDM_DISABLE=1``); a function is called with the running :class:`WriteSummary` as
        chunks complete, instead of the bar. On a distributed client the progress also goes
        to auroradask's dashboard page (:func:`auroradask.dashboard_page`).
    stale_after
        Seconds after which a lock whose heartbeat stopped counts as abandoned (default: the
        ``auroradask.lock-stale-after`` setting, 300).

    Returns
    -------
    WriteSummary

    Raises
    ------
    ArgumentError
        If ``results`` lack a result variable, hold no time slot, name a site that is no site
        code or have times off the 3-second grid; or if ``auroradask.store-piece-minutes`` is
        not a whole number of minutes.
    StoreError
        If the store holds results of another model or preset (unless it holds no result yet),
        starts after ``results``, is of the first release's layout (``auroradask upgrade``),
        or cannot be seen by the workers.
        Also if the store's place is full or cannot be written (a full disk or quota, a
        read-only filesystem, no permission): one line naming the store.
    StoreLockedError
        If another writer is running.
    ClusterError
        On a distributed client: if a worker cannot see the archive (each worker is probed
        before any data is read), or every worker is gone for the scheduler's
        ``distributed.scheduler.no-workers-timeout`` (a batch cluster sets it).
    """
    _check_results(results)
    loc = locate(store, group, storage_options)
    started = time.perf_counter()
    client = _client()
    try:
        with (
            write_progress(progress, client, loc.url) as report,
            StoreLock(loc.fs, loc.root, setting_or("lock-stale-after", stale_after)) as lock,
            quiet_zarr(),
        ):
            finish_interrupted(loc)
            state = _prepare(loc, results)
            if client is not None:
                _check_workers_see(client, loc, results)
            summary = _write(loc, state, results, client, report, lock)
            tidy_staging(loc)  # every task is done: no piece can arrive in a folder removed now
            summary.seconds = time.perf_counter() - started
    except OSError as error:
        if error.errno not in _CANNOT_WRITE:
            raise
        # the store's place, not auroradask, failed: one line; what was written stays, and
        # the same write resumes once there is room (or write access)
        raise StoreError(
            f"store: cannot write {loc.url}: {error.strerror or error}"
            + (f" ({error.filename})" if error.filename else "")
            + "; make room or choose a writable place, then run the same write again"
        ) from None
    return summary


def _check_results(results: xr.Dataset) -> None:
    """What ``to_zarr`` needs of ``results`` before it touches the store."""
    missing = [v for v in RESULT_VARIABLES if v not in results]
    if missing:
        raise ArgumentError(f"results: missing {missing}; pass the output of auroradask.classify")
    bad = [str(s) for s in results["site"].values if not SITE_CODE.fullmatch(str(s))]
    if bad:
        raise ArgumentError(
            f"results: sites {bad!r} are not site codes (lower-case letters and digits)"
        )
    times = results["time"].values
    if len(times) == 0:
        raise ArgumentError("results: no time slots to write (an empty selection of time)")
    if len(times) > 1 and not (np.diff(times) == SLOT).all():
        raise ArgumentError(
            "results: time must be consecutive 3-second slots (as classify makes them); "
            "select a contiguous range or reindex onto the slot grid"
        )


#: What a full disk, a quota or a read-only place say when a store is written there.
_CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


# ---------------------------------------------------------------------- creating, extending


def _prepare(loc: StoreLocation, results: xr.Dataset) -> StoreState:
    """Create the store or extend it to the results' sites and days; return its state."""
    request_sites = [str(s) for s in results["site"].values]
    request_times = results["time"].values
    state = read_state(loc)
    if state is None:
        if loc.fs.exists(loc.root) and loc.fs.ls(loc.root, detail=False):
            raise StoreError(
                f"store: {loc.url} holds files but no results store; choose another path"
            )
        create(loc, results, request_sites, day_axis(request_times[0], request_times[-1]))
        return read_state(loc)
    if state.layout != LAYOUT:
        raise StoreError(
            f"store: {loc.url} is in the first release's layout (chunks of 10 minutes); "
            f"rewrite it with: auroradask upgrade {loc.url}"
        )
    extras = extra_variables(results)
    if not holds_results(loc):  # an empty store belongs to no model yet
        classes = [str(c) for c in results["class"].values]
        if classes != state.classes or extras != state.extras:  # metadata only: made again
            discard_unfinished_creation(loc)
            create(loc, results, request_sites, day_axis(request_times[0], request_times[-1]))
            return read_state(loc)
        if any(state.attrs.get(k) != results.attrs.get(k) for k in ("model_sha256", "preset")):
            adopt_identity(loc, dict(results.attrs))
            state = read_state(loc)
    check_identity(state, results, loc.url)
    _check_extras(state, results, loc.url)
    provenance = merged_provenance(state, results, loc.url)
    if request_times[0] < state.times[0]:
        raise StoreError(
            f"store: {loc.url} starts at {state.first_day}; results from "
            f"{pd.Timestamp(request_times[0])} cannot be put before it: use a new store"
        )
    sites = state.sites + [s for s in request_sites if s not in state.sites]
    n_time = max(len(state.times), len(day_axis(state.times[0], request_times[-1])))
    if sites != state.sites or n_time != len(state.times):
        coords = site_coords(results, sites)
        for name in ("imager", "latitude", "longitude"):  # keep what the store knows
            stored = dict(zip(state.sites, state.dataset[name].values, strict=True))
            coords[name] = [
                _plain(stored[s]) if s in stored else v
                for s, v in zip(sites, coords[name], strict=True)
            ]
        extend(loc, sites, coords, n_time, state.times[0], len(state.times), state.extras)
        state = read_state(loc)
    if provenance:
        write_attrs(loc, provenance)
        state = read_state(loc)
    return state


def _check_extras(state: StoreState, results: xr.Dataset, url: str) -> None:
    """The results must carry exactly the store's extra variables, of the same shape and
    type: a store whose keogram is missing for some days would look complete but is not."""
    extras = extra_variables(results)
    if extras != state.extras:
        raise StoreError(
            f"store: {url} keeps the extra variables {state.extras}, the results carry "
            f"{extras}; write them with the same options (or into a new store or group)"
        )
    stored = state.dataset
    for name in extras:
        want, got = stored[name], results[name]
        if want.dims != got.dims or want.shape[2:] != got.shape[2:] or want.dtype != got.dtype:
            raise StoreError(
                f"store: {url} keeps {name!r} as {want.dtype} {want.dims} "
                f"{want.shape[2:]} per slot; the results' {name!r} is {got.dtype} "
                f"{got.dims} {got.shape[2:]}"
            )


def _client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _check_workers_see(client, loc: StoreLocation, results: xr.Dataset) -> None:
    """Each worker must write into this store and read the archive (a probe run on each
    worker, not a look from here), and have the model: see ``auroradask.store._workers``."""
    prepare_workers(client, loc, results)


# --------------------------------------------------------------------------------- writing


def _write(
    loc: StoreLocation,
    state: StoreState,
    results: xr.Dataset,
    client,
    progress: Callable[[WriteSummary], None] | None,
    lock: StoreLock,
) -> WriteSummary:
    request_times = results["time"].values
    time_index = int((request_times[0] - state.times[0]) // SLOT)
    site_index = [state.sites.index(str(s)) for s in results["site"].values]
    staged = _all_staged(loc)
    done = _done_slots(loc, site_index, time_index, time_index + len(request_times), staged)
    # on a cluster each chunk stays its own piece: the scheduler's cost per task outweighs a
    # piece's file there, and progress and pre-empted jobs then count in chunks, not hours
    piece_slots = _piece_slots() if client is None else 1
    time_chunks = _piece_chunks(
        _day_split_chunks(results, time_index), done, time_index, piece_slots
    )
    aligned = results.chunk({"site": 1, "time": time_chunks})
    edges = time_index + np.r_[0, np.cumsum(time_chunks)]

    names = [str(s) for s in results["site"].values]
    summary = WriteSummary(total=len(names) * results.sizes["time"])
    summary.site_total = {name: results.sizes["time"] for name in names}
    summary.site_done = dict.fromkeys(names, 0)
    todo: dict[tuple[int, int], list[int]] = {}  # (site, day) -> chunk numbers to compute
    for i, site in enumerate(site_index):
        for j in range(len(time_chunks)):
            day = int(edges[j] // DAY_SLOTS)
            if done[i, edges[j] - edges[0] : edges[j + 1] - edges[0]].all():
                summary.skipped += int(time_chunks[j])
                summary.site_done[names[i]] += int(time_chunks[j])
                todo.setdefault((site, day), [])
            else:
                todo.setdefault((site, day), []).append(j)

    _drop_superseded(loc, staged, todo, time_chunks)
    pieces = _piece_writers(loc, aligned, state, site_index, time_index)
    tasks, task_sites, piece_sites = [], [], {}
    for (site, day), chunks in todo.items():
        i = site_index.index(site)
        deps = [pieces[i, j] for j in chunks]
        for dep in deps:
            piece_sites[dep.key] = names[i]
        if chunks or staged.get((site, day)):
            name = "write-results-" + tokenize(loc.url, site, day, [d.key for d in deps])
            tasks.append(
                dask.delayed(_compact_day, pure=False)(
                    loc, site, day, state.variables, *deps, dask_key_name=name
                )
            )
            task_sites.append(names[i])
    if progress and tasks:  # the bar starts (and its clock) before the first chunk is done
        progress(summary)
    if client is not None and tasks:
        from distributed import as_completed

        # the pieces are asked for too, so that progress moves chunk by chunk, not day by
        # day; the counts come from the pieces, a day's compaction only counts as compacted
        piece_list = [d for (i, j), d in np.ndenumerate(pieces) if d.key in piece_sites]
        futures = client.compute([*tasks, *piece_list])
        pieces_left = {f.key for f in futures[len(tasks) :]}
        try:
            for future in as_completed(futures):
                lock.check()
                if future.key in pieces_left:
                    summary.add(future.result()[0, 0], piece_sites[future.key])
                else:
                    future.result()  # a failed compaction raises here
                    summary.days_compacted += 1
                future.release()
                if progress:
                    progress(summary)
        except NO_WORKERS_ERRORS as error:  # every batch job gone, none back in time
            raise no_workers_error(error) from None
    else:  # local scheduler: a few site-days per thread at a time, so progress can be reported
        threads = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
        step = 2 * threads
        with _threads_waited_for(threads) as pool:
            for first in range(0, len(tasks), step):
                lock.check()
                parts = dask.compute(*tasks[first : first + step], **pool)
                for part, site in zip(parts, task_sites[first : first + step], strict=True):
                    summary.add(part, site)
                    summary.days_compacted += 1
                if progress:
                    progress(summary)
    if progress and not tasks:
        progress(summary)
    return summary


def _drop_superseded(
    loc: StoreLocation,
    staged: dict[tuple[int, int], list[_Piece]],
    todo: dict[tuple[int, int], list[int]],
    time_chunks: tuple[int, ...],
) -> None:
    """Remove the staged pieces of each site-day that is about to be written whole.

    A whole-day piece goes straight into the day's chunks, and the compaction that follows
    would lay the day's older staged pieces on it: slots whose file could not be fetched
    then (status 4) overwrote the ones fetched now. They are removed before the day is
    computed: a kill in between loses only what the whole day gives again.
    """
    for (site, day), chunks in todo.items():
        if any(time_chunks[j] == DAY_SLOTS for j in chunks):
            folder = _staging_folder(loc, site, day)
            for piece in staged.pop((site, day), []):
                remove(loc.fs, f"{folder}/{piece.name}")


@contextlib.contextmanager
def _threads_waited_for(threads: int):
    """The ``pool=`` for ``dask.compute`` under the threaded scheduler: a pool of our own that
    is waited for on the way out, also when a task fails.

    Dask's threaded scheduler raises a task's error at once and leaves the other running
    tasks in its shared pool; they went on writing pieces after the lock was released and
    the staging folders tidied (a ``.partial`` file appeared after ``to_zarr`` had failed on
    a full disk, issue 30). Other schedulers (synchronous, processes) take no pool and get
    nothing.
    """
    if dask.base.get_scheduler() not in (None, dask.threaded.get):
        yield {}
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="auroradask-write")
    try:
        yield {"pool": pool}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _day_split_chunks(results: xr.Dataset, time_index: int) -> tuple[int, ...]:
    """The results' time chunks, also cut at every UT day boundary of the store."""
    n = results.sizes["time"]
    chunks = results["label"].chunks
    own = np.cumsum(chunks[1]) if chunks is not None else np.array([n])
    first_day_edge = (time_index // DAY_SLOTS + 1) * DAY_SLOTS - time_index
    day_edges = np.arange(first_day_edge, n, DAY_SLOTS)
    bounds = np.unique(np.r_[0, own, day_edges, n])
    return tuple(int(b) for b in np.diff(bounds))


def _piece_slots() -> int:
    """The ``auroradask.store-piece-minutes`` setting in 3-s slots, checked."""
    minutes = setting("store-piece-minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        raise ArgumentError(
            f"auroradask.store-piece-minutes: expected a whole number of minutes >= 1, "
            f"got {minutes!r}"
        )
    return minutes * 20


def _piece_chunks(
    chunks: tuple[int, ...], done: np.ndarray, time_index: int, piece_slots: int
) -> tuple[int, ...]:
    """Consecutive chunks of one day joined into pieces of up to ``piece_slots`` slots.

    Each piece costs a staged file, its read-back and a task, so 10-minute chunks written one
    by one made the store five times slower than its whole-day writes (issue 32); a kill
    loses the pieces in flight, so a piece is no larger than the setting. Chunks are joined
    only where every site has the same of them done, so that a rerun still computes only
    what is missing; a chunk larger than ``piece_slots`` stays as it is (never split).
    """
    edges = np.r_[0, np.cumsum(chunks)]
    merged: list[int] = []
    key = None  # (day, which sites have the chunk done) of the piece being grown
    for j, n in enumerate(chunks):
        this = (
            (time_index + int(edges[j])) // DAY_SLOTS,
            tuple(done[:, edges[j] : edges[j + 1]].all(axis=1)),
        )
        if merged and this == key and merged[-1] + n <= piece_slots:
            merged[-1] += n
        else:
            merged.append(n)
            key = this
    return tuple(merged)


def _done_slots(
    loc: StoreLocation,
    site_index: list[int],
    start: int,
    stop: int,
    staged: dict[tuple[int, int], list[_Piece]],
) -> np.ndarray:
    """``(sites, slots)`` bool: held by the store (status 0-3) or in a staged piece."""
    group = loc.open_group(mode="r")
    done = np.zeros((len(site_index), stop - start), dtype=bool)
    for i, site in enumerate(site_index):  # a site at a time: no int8 copy of the request
        status = group["frame_status"][site, start:stop]
        done[i] = (status >= 0) & (status != FILE_UNREACHABLE)
    for i, site in enumerate(site_index):
        for day in range(start // DAY_SLOTS, (stop - 1) // DAY_SLOTS + 1):
            for piece in staged.get((site, day), []):
                lo = max(day * DAY_SLOTS + piece.offset, start) - start
                hi = min(day * DAY_SLOTS + piece.offset + piece.n, stop) - start
                if hi > lo and piece.done:
                    done[i, lo:hi] = True
    return done


def _staging_folder(loc: StoreLocation, site: int, day: int) -> str:
    return f"{loc.staging}/{site}/{day}"


def tidy_staging(loc: StoreLocation) -> None:
    """Remove the staging folders left empty, and temporary files of pieces whose writer died.

    Only called while no piece can be written: by the lock's holder, after every task of its
    write is done. Removing a site's folder earlier, while a piece of another of its days may
    be creating its own folder inside it, made that piece's write fail (issue 30). Object
    stores have no folders, and a piece there is written whole in one request.
    """
    if not loc.is_local or not os.path.isdir(loc.staging):
        return
    for folder, _, files in os.walk(loc.staging, topdown=False):
        for name in files:
            if name.endswith(".partial"):  # a piece's temporary file, its writer gone
                remove(loc.fs, os.path.join(folder, name))
        try:
            os.rmdir(folder)  # only if empty: staged pieces stay for the next write
        except OSError:
            pass


@dataclass(frozen=True)
class _Piece:
    offset: int
    n: int
    made: int  # time.time_ns() of writing: overlapping pieces are laid on oldest first
    done: bool  # False if it holds transport failures, to be computed again
    name: str


def _staged(loc: StoreLocation, site: int, day: int) -> list[_Piece]:
    """The pieces staged for one site-day, oldest first (one listing: a worker compacting)."""
    folder = _staging_folder(loc, site, day)
    try:
        names = [p.rsplit("/", 1)[-1] for p in loc.fs.ls(folder, detail=False)]
    except FileNotFoundError:
        return []
    pieces = [piece for piece in map(_piece, names) if piece is not None]
    return sorted(pieces, key=lambda p: p.made)


def _all_staged(loc: StoreLocation) -> dict[tuple[int, int], list[_Piece]]:
    """Every staged piece, by (site, day), oldest first: one recursive listing for the
    client, not one per site-day (a site-year of 20 sites is 7,300 LIST requests on S3)."""
    try:
        paths = loc.fs.find(loc.staging)
    except FileNotFoundError:
        return {}
    staged: dict[tuple[int, int], list[_Piece]] = {}
    for path in paths:
        site, day, name = path.rstrip("/").split("/")[-3:]
        piece = _piece(name)
        if piece is not None and site.isdigit() and day.isdigit():
            staged.setdefault((int(site), int(day)), []).append(piece)
    return {key: sorted(pieces, key=lambda p: p.made) for key, pieces in staged.items()}


def _piece(name: str) -> _Piece | None:
    """A staged piece from its file name, or None for anything else (a temporary file of a
    write in progress)."""
    stem, _, ext = name.partition(".")
    parts = stem.split("-")
    if ext != "npz" or len(parts) != 3 or not parts[2][:-1].isdigit():
        return None
    if not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return _Piece(int(parts[0]), int(parts[1]), int(parts[2][:-1]), parts[2][-1] == "d", name)


def _piece_writers(
    loc: StoreLocation,
    aligned: xr.Dataset,
    state: StoreState,
    site_index: list[int],
    time_index: int,
) -> np.ndarray:
    """One delayed writer per results chunk: ``(sites, chunks)`` object array of Delayed."""
    names = state.variables
    data = {name: aligned[name].data for name in names}
    data = {k: v if isinstance(v, da.Array) else da.asarray(v) for k, v in data.items()}
    # every variable's own dimensions whole in each block: one piece holds whole slots
    data = {k: v.rechunk({i: -1 for i in range(2, v.ndim)}) for k, v in data.items()}
    # where each block goes, as arrays blocked like the results (named as the write stage)
    token = tokenize(loc.url, site_index, time_index, aligned.chunks["time"])
    sites = da.from_array(
        np.array(site_index), chunks=1, name="write-results-" + tokenize(token, "sites")
    )
    slots = da.from_array(
        np.arange(time_index, time_index + aligned.sizes["time"]),
        chunks=(aligned.chunks["time"],),
        name="write-results-" + tokenize(token, "slots"),
    )
    # blockwise indices: "s" site, "t" time, then letters of each variable's own dimensions
    own = iter("abcdefghijklmnopqruvwxyz")
    arguments = []
    for name in names:
        arguments += [data[name], "st" + "".join(next(own) for _ in range(data[name].ndim - 2))]
    written = da.blockwise(
        _write_piece,
        "st",
        *arguments,
        sites,
        "s",
        slots,
        "t",
        adjust_chunks={"t": lambda n: 1},
        concatenate=True,
        dtype=object,
        meta=np.empty((0, 0), dtype=object),
        name="write-results-" + tokenize(loc.url, *data.values(), site_index, time_index),
        loc=loc,
        classes=state.classes,
        names=names,
    )
    return written.to_delayed()


def _write_piece(*blocks, loc, classes, names):
    """Runs on a worker: one results chunk into a staged piece or straight into its day."""
    *arrays, site, slots = blocks
    site, first = int(site[0]), int(slots[0])
    day, offset = divmod(first, DAY_SLOTS)
    values = {name: array[0] for name, array in zip(names, arrays, strict=True)}
    values["timestamp"] = _timestamp_int(values["timestamp"])
    n = len(values["label"])
    if n == DAY_SLOTS:  # a whole day: no staging, written straight into its chunks
        _write_day(loc, site, day, values)
    else:
        buffer = io.BytesIO()
        np.savez(buffer, **values)
        folder = _staging_folder(loc, site, day)
        # the name says where the piece goes, when it was made (overlapping pieces are laid
        # on in that order) and whether it holds transport failures (then it is not done)
        retry = "r" if (values["frame_status"] == FILE_UNREACHABLE).any() else "d"
        name = f"{offset}-{n}-{time.time_ns()}{retry}.npz"
        write_bytes(loc.fs, f"{folder}/{name}", buffer.getvalue())
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = _counts(values["label"], values["frame_status"], classes)
    return out


def _timestamp_int(values: np.ndarray) -> np.ndarray:
    """Timestamps as the store keeps them: int64 microseconds (CF units), NaT as int64 min."""
    return values.astype("datetime64[us]").astype(np.int64)


def _counts(label: np.ndarray, status: np.ndarray, classes: list[str]) -> dict[str, Any]:
    status_counts = np.bincount(
        status[status >= 0].astype(np.int64), minlength=len(FRAME_STATUS_MEANINGS)
    )
    label_counts = np.bincount(label[label >= 0].astype(np.int64), minlength=len(classes))
    return {
        "written": int((status >= 0).sum()),
        "status_counts": {
            m: int(c) for m, c in zip(FRAME_STATUS_MEANINGS, status_counts, strict=False) if c
        },
        "label_counts": {n: int(c) for n, c in zip(classes, label_counts, strict=False) if c},
    }


def _compact_day(
    loc: StoreLocation, site: int, day: int, names: list[str], *pieces: np.ndarray
) -> dict[str, Any]:
    """Runs on a worker once the day's pieces are in: overlay them, write the day, tidy up."""
    total = {"written": 0, "status_counts": {}, "label_counts": {}}
    for piece in pieces:
        part = piece[0, 0]
        total["written"] += part["written"]
        for key in ("status_counts", "label_counts"):
            for name, count in part[key].items():
                total[key][name] = total[key].get(name, 0) + count
    staged = _staged(loc, site, day)
    if not staged:
        return total  # every piece went straight into whole days
    folder = _staging_folder(loc, site, day)
    group = loc.open_group()
    day_slice = slice(day * DAY_SLOTS, (day + 1) * DAY_SLOTS)
    covered = np.zeros(DAY_SLOTS, dtype=bool)
    for piece in staged:
        covered[piece.offset : piece.offset + piece.n] = True
    if covered.all():  # the pieces give every slot: nothing stored needs reading back
        values = {
            name: np.empty((DAY_SLOTS, *group[name].shape[2:]), group[name].dtype) for name in names
        }
    else:
        values = {name: group[name][site, day_slice] for name in names}
    values["timestamp"] = values["timestamp"].astype(np.int64)
    for piece in staged:  # oldest first: a newer piece of the same slots wins
        with loc.fs.open(f"{folder}/{piece.name}", "rb") as f:
            stored = np.load(io.BytesIO(f.read()), allow_pickle=False)
            for name in names:
                values[name][piece.offset : piece.offset + piece.n] = stored[name]
    _write_day(loc, site, day, values, group)
    for piece in staged:
        remove(loc.fs, f"{folder}/{piece.name}")
    # the folders stay: a piece of another day of this site may be inside os.makedirs right
    # now, and would fail if its parent vanished under it; tidy_staging removes them once
    # every task of the write is done
    return total


def _write_day(loc: StoreLocation, site: int, day: int, values: dict[str, np.ndarray], group=None):
    """Each variable's chunk of one site-day, written whole; ``frame_status`` last, because a
    slot with a status counts as done."""
    group = group if group is not None else loc.open_group()
    day_slice = slice(day * DAY_SLOTS, (day + 1) * DAY_SLOTS)
    for name in [n for n in values if n != "frame_status"] + ["frame_status"]:
        group[name][site, day_slice] = values[name]


__all__ = ["WriteSummary", "to_zarr"]

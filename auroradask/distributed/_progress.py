"""Progress of long operations: ``tqdm.auto`` bars, and what :func:`auroradask.to_zarr` reports.

A long write or read should never be silent (a notebook showing nothing for an hour looks
hung), and a script or a test should be able to silence it: every long operation takes
``progress=True`` (a bar; a widget in a notebook, text on a terminal) or ``progress=False``.
tqdm's own ``TQDM_DISABLE=1`` silences every bar at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ArgumentError

#: tqdm's default, with the unit after the counts: "120/120 frames [00:04<00:00, 24.2 frames/s]"
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_fmt}]"
#: a write's bar: slots done and time left, and frames with their rate in the postfix
WRITE_BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}{postfix}]"
)

#: Seconds before a task bar shows: a computation that ends sooner (most reads of a small
#: store) prints nothing, as dask's own ProgressBar(minimum=1) did in the command line.
TASK_BAR_DELAY_S = 1.0


def _tqdm(**kwargs):
    from tqdm.auto import tqdm

    # a bar redrawn in place on a terminal; in a log file (CI, a batch job) a line every 30 s
    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.5 if tty else 30.0)
    kwargs.setdefault("dynamic_ncols", True)
    # tqdm reads TQDM_* when it is imported; read here, it also works when set later
    if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
        kwargs["disable"] = True
    return tqdm(**kwargs)


def check_progress(progress: Any, argument: str = "progress") -> None:
    if not (isinstance(progress, bool) or progress is None or callable(progress)):
        raise ArgumentError(f"{argument}: expected True, False or a function, got {progress!r}")


class WriteBar:
    """A bar of the slots of a write: slots done of the total, time left, and the frames
    (slots that held one) classified so far with their rate.

    Slots already in the store start the bar (``initial``), so the time left counts only the
    slots computed now; a write with nothing left to do shows no bar at all. The rate shown is
    frames per second: an archive with gaps has many empty slots, written fast.
    """

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar = None

    def __call__(self, summary) -> None:
        if self.bar is None:
            if summary.total - summary.skipped <= 0:
                return
            self.bar = _tqdm(
                total=summary.total,
                initial=summary.skipped,
                unit=" slots",
                desc=self.desc,
                bar_format=WRITE_BAR_FORMAT,
            )
        elapsed = self.bar.format_dict["elapsed"]
        rate = summary.frames / elapsed if elapsed > 0 else 0.0
        self.bar.set_postfix_str(f"{summary.frames} frames, {rate:.1f} frames/s", refresh=False)
        self.bar.update(summary.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def write_progress(
    progress: bool | Callable | None, client, store_url: str
) -> Iterator[Callable | None]:
    """The callback :func:`auroradask.to_zarr` calls with its running WriteSummary.

    It draws the bar (``progress=True``) or calls the user's function, and, on a distributed
    client, publishes the run to auroradask's dashboard page.
    """
    from ._dashboard import RunPublisher

    check_progress(progress)
    reporters: list[Callable] = []
    bar = None
    if callable(progress):
        reporters.append(progress)
    elif progress:
        bar = WriteBar(os.path.basename(store_url.rstrip("/")) or store_url)
        reporters.append(bar)
    publisher = RunPublisher.for_client(client, store_url)
    if publisher is not None:
        reporters.append(publisher)

    def report(summary) -> None:
        for reporter in reporters:
            reporter(summary)

    outcome = "failed"
    try:
        yield report if reporters else None
        outcome = "finished"
    except KeyboardInterrupt:
        outcome = "interrupted"
        raise
    finally:
        if bar is not None:
            bar.close()
        if publisher is not None:
            publisher.finish(outcome)


@contextmanager
def compute_progress(progress: bool | Callable | None, desc: str) -> Iterator[None]:
    """A bar over the tasks of the dask computations inside the block (local schedulers),
    shown once they have run :data:`TASK_BAR_DELAY_S`.

    A dask callback: it sees the threaded and the synchronous schedulers, which is where
    analysis reads of a store run unless a distributed client is the default; on a client,
    the Dask dashboard shows the tasks instead. A function as ``progress`` is called with
    (tasks done, tasks in all).
    """
    check_progress(progress)
    if not progress:
        yield
        return
    call = progress if callable(progress) else None
    from dask.callbacks import Callback

    bar = None
    counts = [0, 0]  # tasks done, tasks in all (over every computation in the block)

    class _Bar(Callback):
        def _start_state(self, dsk, state):
            nonlocal bar
            counts[1] += sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
            if call is not None:
                return
            if bar is None:
                bar = _tqdm(total=counts[1], unit=" tasks", desc=desc, delay=TASK_BAR_DELAY_S)
            else:
                bar.total = counts[1]
                bar.refresh()

        def _posttask(self, key, result, dsk, state, worker_id):
            counts[0] += 1
            if call is not None:
                call(*counts)
            else:
                bar.update(1)

    try:
        with _Bar():
            yield
    finally:
        if bar is not None:
            bar.close()


@contextmanager
def counting(
    progress: bool | Callable | None, desc: str, total: int, unit: str
) -> Iterator[Callable[[int], None]]:
    """An ``advance(n)`` function for a loop over known work: a bar of ``total`` ``unit``
    (``progress=True``), the user's ``progress(done, total)``, or nothing."""
    check_progress(progress)
    if not progress:
        yield lambda n: None
        return
    if callable(progress):
        done = 0

        def call(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total)

        yield call
        return
    bar = _tqdm(total=total, unit=f" {unit}", desc=desc, bar_format=BAR_FORMAT)
    try:
        yield bar.update
    finally:
        bar.close()


__all__ = ["WriteBar", "check_progress", "compute_progress", "counting", "write_progress"]

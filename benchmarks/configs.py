"""One benchmark configuration, run in a fresh process: ``python -m benchmarks.configs SPEC``.

SPEC is JSON with ``config``, ``model``, ``archive``, ``sites``, ``start``, ``end``, ``cores``
and ``workdir``. Prints one JSON line: ``{"frames": n, "seconds": s, ...}``. The parent
(``benchmarks.__main__``) samples the memory of this process and all its children.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from multiprocessing import Pool

import cv2
import numpy as np
import pandas as pd

import auroradask
from auroradask.io._stream0 import read_minute_file
from auroradask.preprocessing._preprocess import (
    field_of_view,
    get_preset,
    preprocess_frames,
    preprocess_into,
    published_sequence,
)
from auroradask.skymaps._skymap import circle_elevation

FOV = field_of_view(circle_elevation(), 15)
#: frames preprocessed at once in the preprocessing ceiling: the demo model's batch size
MINI_BATCH = 32
MODEL_CEILING_FRAMES = 2000
_SESSION = None


def _files(spec) -> list[str]:
    return sorted(glob.glob(os.path.join(spec["archive"], "**", "*_full.pgm*"), recursive=True))


def _hours(spec) -> list[list[str]]:
    by_hour: dict[str, list[str]] = {}
    for path in _files(spec):
        by_hour.setdefault(os.path.dirname(path), []).append(path)
    return list(by_hour.values())


# ------------------------------------------------------------- today's workflow (baseline)


def _baseline_hour(args) -> int:
    """One per-hour task: read the hour, preprocess each frame, classify, write a text file."""
    global _SESSION
    import onnxruntime as ort
    from pyucalgarysrs.data.read import ReadManager

    model, files, outdir = args
    cv2.setNumThreads(1)
    if _SESSION is None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        _SESSION = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    # UCalgary's THEMIS reader (pyucalgarysrs; themis-imager-readfile before it, which pins
    # numpy < 2); it turns frames upside down for display, the flip undone here
    data = ReadManager().read_themis(files, quiet=True)
    images, metadata = data.data[::-1], data.metadata
    inputs = np.stack([published_sequence(images[:, :, i], FOV) for i in range(images.shape[2])])
    probability = np.concatenate(
        [_SESSION.run(None, {"image": inputs[i : i + 32]})[0] for i in range(0, len(inputs), 32)]
    )
    name = os.path.join(outdir, os.path.basename(files[0])[:13] + ".txt")
    with open(name, "w") as f:
        f.write("date,time,prediction,confidence\n")
        for meta, p in zip(metadata, probability, strict=True):
            f.write(f"{meta['Image request start']},{p.argmax()},{p.max():.4f}\n")
    return len(inputs)


def baseline(spec) -> dict:
    jobs = [(spec["model"], hour, spec["workdir"]) for hour in _hours(spec)]
    start = time.perf_counter()
    with Pool(spec["cores"]) as pool:
        frames = sum(pool.map(_baseline_hour, jobs))
    return {"frames": frames, "seconds": time.perf_counter() - start}


# ------------------------------------------------------------------------------ ceilings


def _read_file(path: str) -> int:
    with open(path, "rb") as f:
        return len(read_minute_file(f.read(), path).images)


def ceiling_read(spec) -> dict:
    files = _files(spec)
    start = time.perf_counter()
    with Pool(spec["cores"]) as pool:
        frames = sum(pool.map(_read_file, files))
    return {"frames": frames, "seconds": time.perf_counter() - start}


def _warm_kernel() -> None:
    """Load the compiled preprocessing kernel (from numba's cache; compiled if there is none),
    as importing a module: the first call is not what a run of frames costs."""
    frame = np.zeros((1, 256, 256), np.uint16)
    frame[0, 64:192] = 1000
    preprocess_frames(frame, FOV, get_preset("themis-pa"))


def _preprocess_files(files: list[str]) -> tuple[int, float]:
    """Frames read 60 files at a time, then preprocessed as ``classify`` does it: one channel,
    a mini-batch of :data:`MINI_BATCH` at a time into one reused buffer (the demo model's
    batch size). Only the preprocessing is timed.

    Before issue 16's last change this preprocessed 1,200 frames in one call to three
    channels, a fresh 720 MB array a call: page faults, not preprocessing, set that
    "ceiling", and auroradask beat it (1.25x in a medium run).
    """
    cv2.setNumThreads(1)
    _warm_kernel()
    preset, n, seconds = get_preset("themis-pa"), 0, 0.0
    rows, cols = preset.size
    buffer = np.empty((MINI_BATCH, rows, cols, 1), dtype=np.dtype(preset.dtype))
    for first in range(0, len(files), 60):
        frames = []
        for path in files[first : first + 60]:
            with open(path, "rb") as f:
                frames.append(read_minute_file(f.read(), path).images)
        stack = np.concatenate(frames)
        start = time.perf_counter()
        for begin in range(0, len(stack), MINI_BATCH):
            which = np.arange(begin, min(begin + MINI_BATCH, len(stack)))
            preprocess_into(stack, which, FOV, preset, buffer, np.arange(len(which)))
        seconds += time.perf_counter() - start
        n += len(stack)
    return n, seconds


def ceiling_preprocess(spec) -> dict:
    files = _files(spec)
    groups = [files[i :: spec["cores"]] for i in range(spec["cores"])]
    with Pool(spec["cores"]) as pool:
        parts = pool.map(_preprocess_files, groups)
    return {"frames": sum(n for n, _ in parts), "seconds": max(s for _, s in parts)}


def ceiling_model(spec) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = spec["cores"]
    session = ort.InferenceSession(spec["model"], options, providers=["CPUExecutionProvider"])
    # a rate: a few thousand frames measure it as well as a night would
    n = min(len(_files(spec)) * 20, MODEL_CEILING_FRAMES)
    batch = np.random.default_rng(0).uniform(0, 255, (32, 224, 224, 3)).astype(np.float32)
    session.run(None, {"image": batch})  # warm-up
    start = time.perf_counter()
    for first in range(0, n, 32):
        session.run(None, {"image": batch[: min(32, n - first)]})
    return {"frames": n, "seconds": time.perf_counter() - start}


# ---------------------------------------------------------------------------- auroradask


def run_auroradask(spec) -> dict:
    # as the command line chooses: one single-threaded worker per core, or for a big model one
    # worker with a thread per core, its weights in memory once ("threads_per_worker" forces)
    threads = spec.get("threads_per_worker") or auroradask.threads_for_model(
        spec["model"], spec["cores"]
    )
    client = auroradask.start_client(
        workers=max(1, spec["cores"] // threads),
        threads_per_worker=threads,
        dashboard_address="127.0.0.1:0",
    )
    client.run(_warm_worker)  # imports only, as the baseline's forked processes inherit them
    try:
        start = time.perf_counter()
        frames = auroradask.open_themis(spec["archive"], spec["sites"], spec["start"], spec["end"])
        results = auroradask.classify(frames, spec["model"])
        # a new store every run: with a reused --workdir the previous store would be resumed
        store = os.path.join(spec["workdir"], f"results-{time.time_ns()}.zarr")
        summary = auroradask.to_zarr(results, store)
        seconds = time.perf_counter() - start
    finally:
        client.close()
    if summary.skipped:
        raise RuntimeError(f"{store}: {summary.skipped} slots were already there")
    return {"frames": summary.status_counts.get("ok", 0), "seconds": seconds}


def _warm_worker() -> None:
    import onnxruntime  # noqa: F401

    import auroradask.models._classify  # noqa: F401

    _warm_kernel()


def preprocess_compare(spec) -> dict:
    """ms per frame: the preset through dask (threads = cores) vs the plain OpenCV loop."""
    import dask

    # an hour at most: both sides hold their frames and outputs in memory
    end = min(pd.Timestamp(spec["end"]), pd.Timestamp(spec["start"]) + pd.Timedelta(hours=1))
    frames = auroradask.open_themis(spec["archive"], spec["sites"], spec["start"], end)
    frames = frames.persist(scheduler="threads")
    valid = (frames.frame_status.values == 0).reshape(-1)
    raw = frames.images.values.reshape(-1, 256, 256)[valid]
    _warm_kernel()
    start = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=spec["cores"]):
        auroradask.preprocess(frames, "themis-pa").compute()
    dask_seconds = time.perf_counter() - start
    cv2.setNumThreads(1)
    start = time.perf_counter()
    for frame in raw:
        published_sequence(frame, FOV)
    loop_seconds = time.perf_counter() - start
    n = len(raw)
    return {"frames": n, "seconds": dask_seconds, "loop_seconds": loop_seconds}


def open_cost(spec) -> dict:
    from tests.support.archive import make_empty_tree

    root = os.path.join(spec["workdir"], "empty-stream0")
    files = make_empty_tree(root)
    sites = [f"s{i:03d}" for i in range(10)]
    start = time.perf_counter()
    frames = auroradask.open_themis(root, sites, "2014-03-10", "2014-03-12")
    seconds = time.perf_counter() - start
    return {
        "frames": int(frames.sizes["site"] * frames.sizes["time"]),
        "seconds": seconds,
        "files": files,
    }


CONFIGS = {
    "baseline": baseline,
    "ceiling_read": ceiling_read,
    "ceiling_preprocess": ceiling_preprocess,
    "ceiling_model": ceiling_model,
    "auroradask": run_auroradask,
    "preprocess_compare": preprocess_compare,
    "open_cost": open_cost,
}


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(CONFIGS[spec["config"]](spec)), flush=True)

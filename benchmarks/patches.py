"""Benchmark of auroral patch detection and tracking: frames/s per core.

    python -m benchmarks.patches --json benchmarks/results-patches.json   # < 3 minutes

- **detect_kernel**: the numpy kernels alone (running minimum over 21 frames, Otsu,
  ``skimage`` label + regionprops, georeferencing with the Athabasca skymap at 110 km) on
  frames already in memory, one thread;
- **detect_dask_1core**: ``patch_blocks(...).compute(scheduler="synchronous")``: reading the
  generated gzip archive, decompressing, the overlap along time, detection: one core;
- **detect_dask_threads**: the same on the threaded scheduler with one thread per core,
  divided by the cores (per core);
- **track_sample** / **track_dense**: :func:`link_patches` + :func:`summarize_tracks` on the
  table of the generated archive (real frames: about one patch per frame) and on a dense
  synthetic table (``--patches`` random walkers per frame, born and dying), one thread.

Frames are generated from the bundled sample (``benchmarks/archive.py``: real minutes with
rewritten headers), so reading costs what it costs on real data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import auroradask
from auroradask.patchtracking._detect import detect_frames, running_background
from auroradask.patchtracking._patches import PatchOptions, _site_geometry
from auroradask.patchtracking._tracks import link_patches, summarize_tracks
from tests.support.archive import make_archive

SKYMAP = str(
    Path(__file__).parent.parent / "tests" / "data" / "themis_skymap_atha_20230115-+_v02.sav"
)


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def dense_table(frames: int, patches: int, seed: int = 0) -> pd.DataFrame:
    """A patch table of ``patches`` random walkers per frame, each living ~40 frames."""
    rng = np.random.default_rng(seed)
    rows = []
    alive = []
    start = np.datetime64("2020-01-01T06:00", "ns")
    for i in range(frames):
        alive = [w for w in alive if w[3] > i]
        while len(alive) < patches:
            alive.append(
                [
                    rng.uniform(20, 236),
                    rng.uniform(20, 236),
                    rng.normal(0, 0.5, 2),
                    i + rng.integers(10, 70),
                ]
            )
        for w in alive:
            w[0] += w[2][0]
            w[1] += w[2][1]
            rows.append((start + np.timedelta64(3 * i, "s"), w[0], w[1]))
    table = pd.DataFrame(rows, columns=["time", "row", "col"])
    table["site"] = "synt"
    for c in ("area_px", "area_km2", "mean_excess", "peak_excess"):
        table[c] = 100.0
    table["latitude"] = 60 - table["row"] * 0.01
    table["longitude"] = -100 + table["col"] * 0.02
    return table  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--minutes", type=int, default=20, help="archive minutes (20 frames each)")
    parser.add_argument("--patches", type=int, default=30, help="walkers per frame, dense table")
    parser.add_argument("--workdir", help="archive folder (default: a temporary one)")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    results: dict = {
        "machine": platform.machine(),
        "cores": cores,
        "auroradask": auroradask.__version__,
        "command": "python -m benchmarks.patches" + (f" --minutes {args.minutes}"),
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        make_archive(tmp, ["gill"], "2014-03-10T06:00", hours=1, minutes_per_hour=args.minutes)
        end = pd.Timestamp("2014-03-10T06:00") + pd.Timedelta(minutes=args.minutes)
        frames = auroradask.open_themis(
            tmp, "gill", "2014-03-10T06:00", end, chunk_minutes=10, cache=False
        )
        n = frames.sizes["time"]
        results["frames"] = n

        # numpy kernels only, frames in memory
        images = frames["images"].values[0].astype(np.float32)
        options = PatchOptions()
        geometries, fovs = _site_geometry(["gill"], None, SKYMAP, 110.0, options)
        (_, dt_bg) = _timed(running_background, images, "min", 21)
        background = running_background(images, "min", 21)
        (table, _), dt_det = _timed(
            detect_frames, images, background, fovs[0], geometry=geometries[0], floor=options.floor
        )
        results["detect_kernel"] = {
            "frames_per_s_per_core": n / (dt_bg + dt_det),
            "background_ms_per_frame": 1000 * dt_bg / n,
            "detect_ms_per_frame": 1000 * dt_det / n,
            "patches": len(table),
        }

        blocks = auroradask.patch_blocks(frames, skymap=SKYMAP)
        _, dt = _timed(blocks.compute, scheduler="synchronous")
        results["detect_dask_1core"] = {"frames_per_s_per_core": n / dt, "seconds": dt}
        _, dt = _timed(blocks.compute, scheduler="threads", num_workers=cores)
        results["detect_dask_threads"] = {
            "frames_per_s_per_core": n / dt / cores,
            "frames_per_s": n / dt,
            "threads": cores,
        }

        result = auroradask.patches(frames, skymap=SKYMAP)
        table = result.table.drop(columns="track")
        _, dt = _timed(lambda t: summarize_tracks(t.assign(track=link_patches(t))), table)
        results["track_sample"] = {
            "frames_per_s_per_core": n / dt,
            "patches_per_frame": len(table) / n,
            "tracks": len(result.tracks),
        }
    dense = dense_table(2000, args.patches)
    (_, dt_link) = _timed(link_patches, dense)
    dense["track"] = link_patches(dense)
    (tracks, dt_sum) = _timed(summarize_tracks, dense)
    results["track_dense"] = {
        "frames_per_s_per_core": 2000 / (dt_link + dt_sum),
        "link_frames_per_s": 2000 / dt_link,
        "patches_per_frame": args.patches,
        "tracks": len(tracks),
    }
    text = json.dumps(results, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark of keograms, quicklooks and movies: what seeing the labels costs.

    python -m benchmarks.visual --json benchmarks/results-visual.json   # ~3 minutes on 2 cores

- **read_only**: ``open_themis(...).images`` reduced to a sum (threaded scheduler, one thread
  per core): the reading ceiling of everything below;
- **keogram**: :func:`auroradask.keogram` computed alone: it costs the read and a fancy index;
- **classify_with_keogram / classify_without_keogram**: the demo model's results computed in
  memory with and without ``keogram=True`` (same graph otherwise): the keogram's share of a
  classification, since it comes from the same read of each chunk;
- **movie**: :func:`auroradask.movie` of the archive (512 px high, speedup 60: every frame
  drawn, libx264), frames drawn and encoded per second, keogram pass included;
- **quicklook_stored**: :func:`auroradask.quicklook` of a whole synthetic night from a results
  dataset in memory holding a keogram (no archive read): seconds per figure.

Frames are generated from the bundled sample (``benchmarks/archive.py``), so reading costs
what it costs on real data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import dask
import numpy as np

import auroradask
from tests.support.archive import make_archive

sys.path.insert(
    0, str(Path(__file__).parent.parent)
)  # tests.support: the synthetic-results builder


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--minutes", type=int, default=30, help="archive minutes (20 frames each)")
    parser.add_argument("--workdir", help="archive folder (default: a temporary one)")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="auroradask-visual-"))
    root = workdir / "stream0"
    make_archive(root, ["gill"], "2014-03-10T06:00", hours=1, minutes_per_hour=args.minutes)
    end = f"2014-03-10T06:{args.minutes:02d}"
    frames = auroradask.open_themis(root, "gill", "2014-03-10T06:00", end, cache=False)
    n = frames.sizes["time"]
    out: dict = {
        "machine": {"cores": cores, "python": platform.python_version()},
        "frames": n,
    }
    with dask.config.set(scheduler="threads", num_workers=cores):
        t, _ = _timed(lambda: frames["images"].data.sum(axis=(2, 3)).compute())
        out["read_only_frames_per_s"] = n / t
        t, _ = _timed(lambda: auroradask.keogram(frames).compute())
        out["keogram_frames_per_s"] = n / t
        model = auroradask.demo_model()
        names = ["label", "confidence", "probability", "frame_status"]
        t0, _ = _timed(lambda: auroradask.classify(frames, model, keogram=False)[names].compute())
        t1, results = _timed(lambda: auroradask.classify(frames, model).compute())
        out["classify_without_keogram_s"] = t0
        out["classify_with_keogram_s"] = t1
        out["keogram_share_of_classify"] = t1 / t0 - 1
        t, info = _timed(
            lambda: auroradask.movie(frames, workdir / "movie.mp4", results=results, speedup=60)
        )
        out["movie_frames_per_s"] = info.frames / t
        out["movie_bytes_per_frame"] = (workdir / "movie.mp4").stat().st_size / info.frames
    # a whole night from a dataset in memory with a keogram: the figure alone
    print(json.dumps(out), flush=True)
    from tests.support.synthetic import synthetic_results  # tests/synthetic.py

    night = synthetic_results(["gill"], "2014-03-09", days=2, chunk=28_800).compute()
    rng = np.random.default_rng(0)
    keo = rng.integers(3000, 9000, (1, night.sizes["time"], 256), dtype=np.uint16)
    night["keogram"] = (("site", "time", "keogram_row"), keo, {"direction": "north-south"})
    t, fig = _timed(lambda: auroradask.quicklook(night, site="gill", night="2014-03-09"))
    t_save, _ = _timed(lambda: fig.savefig(workdir / "night.png", dpi=110))
    out["quicklook_night_s"] = t
    out["quicklook_save_s"] = t_save
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

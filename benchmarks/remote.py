"""``python -m benchmarks.remote [--latency 0.02] [--json FILE]``: remote archives.

What a remote archive costs is mostly round trips, so the archive is served from this machine
by a plain HTTP server and by an S3 server (moto), each with ``--latency`` seconds added to
every request, and compared with the same tree on the local disk:

- **discovery**: ``open_themis`` of 10 sites × 2 days (00 UT on day one to 14 UT on day two)
  over a tree of 16,800 empty minute files: only folders are listed (day folders, then the
  380 ``utHH`` folders the request touches, 140 of them absent), no file is opened;
- **end to end**: one site, ``--minutes`` real minute files (20 frames each, ~2 MB gzip),
  read (``open_themis(...).frame_status.compute()``, which reads every frame) and classified
  with the demo model (``classify(...).label.compute()``), threaded scheduler, no local cache.

Each remote figure is taken twice: as auroradask does it now (folders listed and a chunk's
files fetched 16 at a time; on S3 one listing per site-day subtree) and as the previous
release did (one folder, one file after another: the thread pools and subtree listing
switched off, which is exactly the previous code path). The discoveries of both
must find the same files. Under 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import dask
import pandas as pd

import auroradask
from auroradask.io._archive import Archive
from tests.support.archive import make_archive, make_empty_tree
from tests.support.servers import in_subprocess, s3_options, set_latency, upload

DISCOVERY = dict(start="2014-03-10T00:00", end="2014-03-11T14:00")
E2E_START = "2014-03-10T06:00"


@contextlib.contextmanager
def one_by_one():
    """The previous release's remote path: folders listed and files fetched one at a time."""
    saved = Archive.list_many, Archive.fetch_many, Archive._list_trees
    Archive.list_many = lambda self, directories: None
    Archive.fetch_many = lambda self, candidates: {}
    Archive._list_trees = lambda self, hours: None
    try:
        yield
    finally:
        Archive.list_many, Archive.fetch_many, Archive._list_trees = saved


def best_of(repeats: int, run) -> tuple[float, Any]:
    """The shortest wall time of ``repeats`` runs (the machine is shared and noisy)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - started)
    return best, out


def discovery(url: str, sites: list[str], options: dict[str, Any] | None, repeats: int):
    def run():
        frames = auroradask.open_themis(
            url, sites, DISCOVERY["start"], DISCOVERY["end"], storage_options=options, cache=False
        )
        return frames

    seconds, frames = best_of(repeats, run)
    return seconds, frames


def end_to_end(url: str, minutes: int, options: dict[str, Any] | None) -> dict[str, float]:
    end = str(pd.Timestamp(E2E_START) + pd.Timedelta(minutes=minutes))

    def frames():
        return auroradask.open_themis(
            url, "gill", E2E_START, end, storage_options=options, cache=False, chunk_minutes=5
        )

    n = minutes * 20
    with dask.config.set(scheduler="threads"):
        read_s, status = best_of(1, lambda: frames().frame_status.compute())
        assert int((status == 0).sum()) == n, "every frame must read"
        model = auroradask.demo_model()
        classify_s, _ = best_of(1, lambda: auroradask.classify(frames(), model).label.compute())
    return {
        "frames": n,
        "read_s": round(read_s, 3),
        "read_frames_per_s": round(n / read_s, 1),
        "classify_s": round(classify_s, 3),
        "classify_frames_per_s": round(n / classify_s, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.remote", description=__doc__)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--minutes", type=int, default=30, help="minute files end to end")
    parser.add_argument("--repeats", type=int, default=2, help="discovery runs (best kept)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    out: dict[str, Any] = {"latency_s": args.latency, "discovery": {}, "end_to_end": {}}
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(tempfile.TemporaryDirectory())
        tree, real = Path(work) / "empty", Path(work) / "real"
        n_files = make_empty_tree(tree)
        sites = sorted({p.name.split("_")[0] for p in tree.glob("2014/03/10/*")})
        make_archive(real, ["gill"], E2E_START, hours=1, minutes_per_hour=args.minutes)
        # the servers run in their own processes, as a remote server would
        base = stack.enter_context(in_subprocess("http", work, str(args.latency)))
        endpoint = stack.enter_context(in_subprocess("s3", "0"))
        options = s3_options(endpoint)
        upload(tree, "s3://bench/empty", options)
        upload(real, "s3://bench/real", options)
        set_latency(endpoint, args.latency)
        sources = {
            "local": (str(tree), str(real), None),
            "http": (f"{base}/empty", f"{base}/real", None),
            "s3": ("s3://bench/empty", "s3://bench/real", options),
        }
        for name, (empty_url, real_url, opts) in sources.items():
            seconds, frames = discovery(empty_url, sites, opts, args.repeats)
            entry: dict[str, Any] = {"seconds": round(seconds, 3), "files": n_files}
            e2e = {"now": end_to_end(real_url, args.minutes, opts)}
            if name != "local":
                with one_by_one():
                    before, old_frames = discovery(empty_url, sites, opts, 1)
                    e2e["previous"] = end_to_end(real_url, args.minutes, opts)
                # the same files found, the same chunks read
                assert frames.images.data.dask.keys() == old_frames.images.data.dask.keys()
                entry.update(previous_seconds=round(before, 3), speedup=round(before / seconds, 1))
                for key in ("read", "classify"):
                    e2e[f"{key}_speedup"] = round(
                        e2e["now"][f"{key}_s"]
                        and e2e["previous"][f"{key}_s"] / e2e["now"][f"{key}_s"],
                        2,
                    )
            out["discovery"][name] = entry
            out["end_to_end"][name] = e2e
            print(name, json.dumps({"discovery": entry, "end_to_end": e2e}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()

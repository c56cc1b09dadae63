"""``python -m benchmarks.overhead ARCHIVE --end TIME [--json FILE]``: where auroradask's time
goes on a LocalCluster (issue 16), on an archive ``python -m benchmarks --medium`` generated.

Runs ``open_themis → classify → to_zarr`` (demo model) with 2 workers and the workers' dask
statistical profiler on (dask's default before issue 16), 2 workers with it off
(``start_client``'s default now), and 1 worker with it off, in turn,
``--repeats`` times; for each run it records frames/s, the compute seconds of every task
prefix (from the task stream), the transfers between workers (count, seconds) and the bytes
each worker received.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from distributed import get_task_stream

import auroradask
from benchmarks.configs import _warm_worker


def run(archive: str, end: str, workers: int, profile: bool, store: str) -> dict:
    client = auroradask.start_client(
        workers=workers, dashboard_address="127.0.0.1:0", worker_profile=profile
    )
    try:
        client.run(_warm_worker)
        with get_task_stream(client) as stream:
            start = time.perf_counter()
            frames = auroradask.open_themis(archive, ["bnch"], "2014-03-10", end)
            results = auroradask.classify(frames, auroradask.demo_model())
            summary = auroradask.to_zarr(results, store)
            seconds = time.perf_counter() - start
        received = client.run(
            lambda dask_worker: sum(
                e.get("total", 0) for e in getattr(dask_worker, "transfer_incoming_log", [])
            )
        )
    finally:
        client.close()
    by_prefix: dict[str, list] = {}
    transfers = [0, 0.0]
    for task in stream.data:
        key = task["key"][0] if isinstance(task["key"], tuple) else task["key"]
        prefix = str(key).rsplit("-", 1)[0]
        for part in task["startstops"]:
            if part["action"] == "compute":
                entry = by_prefix.setdefault(prefix, [0, 0.0])
                entry[0] += 1
                entry[1] += part["stop"] - part["start"]
            elif part["action"] == "transfer":
                transfers[0] += 1
                transfers[1] += part["stop"] - part["start"]
    frames_ok = summary.status_counts.get("ok", 0)
    return {
        "workers": workers,
        "worker_profiler": profile,
        "frames": frames_ok,
        "seconds": round(seconds, 2),
        "fps": round(frames_ok / seconds, 1),
        "tasks_by_prefix": {
            k: {"n": v[0], "compute_s": round(v[1], 2)} for k, v in by_prefix.items()
        },
        "transfers": {"n": transfers[0], "seconds": round(transfers[1], 2)},
        "bytes_received_mb": {w: round(b / 2**20, 1) for w, b in received.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive")
    parser.add_argument("--end", default="2014-03-10T02:00")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    records = []
    with tempfile.TemporaryDirectory(prefix="auroradask-overhead-") as folder:
        for repeat in range(args.repeats):
            for workers, profile in ((2, True), (2, False), (1, False)):
                store = str(Path(folder) / f"r{repeat}-{workers}-{profile}.zarr")
                records.append(run(args.archive, args.end, workers, profile, store))
                print(json.dumps(records[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()

"""``python -m benchmarks.embed [--minutes N] [--repeats R] [--json FILE]``: embed against classify.

The same frames (a generated stream0 archive of real sample minutes) are classified and
embedded with the same model, each run in a new process with the threaded scheduler on
``--cores`` threads; throughput is frames per second of the whole computation (read,
preprocess, model, and for ``embed`` the extra output and its cast), peak memory the largest
resident memory of that process, sampled every 0.1 s. Runs alternate (classify, embed,
classify, ...) so that a shared machine's load falls on both alike; the ratios of the
medians are the figures to compare.

Models: the bundled demo model (its penultimate layer, 96 features) and a ResNet-50-sized
CNN with random weights (its last feature map, 2048 × 7 × 7, global-average pooled to 2048
features), as in the main benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

import auroradask
from tests.support.archive import make_archive
from tests.support.models import build_resnet50

SITE, START = "bnch", "2014-03-10T06:00"


def run_one(spec: dict) -> dict:
    """In the child process: one classify or embed of the archive, timed."""
    import dask

    frames = auroradask.open_themis(
        spec["archive"], [SITE], START, spec["end"], chunk_minutes=spec["chunk_minutes"]
    )
    model = auroradask.load_model(spec["model"])
    if spec["stage"] == "classify":
        results = auroradask.classify(frames, model)
    else:
        results = auroradask.embed(frames, model, output=spec["layer"], dtype=spec["dtype"])
    started = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=spec["cores"]):
        computed = results.compute()
    seconds = time.perf_counter() - started
    ok = int((computed["frame_status"].values == 0).sum())
    out = {"frames": ok, "seconds": round(seconds, 2), "frames_per_s": round(ok / seconds, 2)}
    if "embedding" in computed:
        out["features"] = int(computed.sizes["feature"])
    return out


def measure(spec: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.embed", "--run", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            peak = max(peak, root.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    out = process.stdout.read().strip().splitlines()
    if process.returncode != 0 or not out:
        raise RuntimeError(f"benchmark {spec} failed (exit {process.returncode})")
    return {**spec, **json.loads(out[-1]), "peak_memory_mb": round(peak / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=int, default=10, help="minute files (20 frames each)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration")
    parser.add_argument("--models", default="demo,resnet50")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="write the records to this file")
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_one(json.loads(args.run))))
        return
    workdir = Path(tempfile.mkdtemp(prefix="auroradask-embed-bench-"))
    archive = workdir / "stream0"
    make_archive(archive, [SITE], START, 1, args.minutes)
    end = f"2014-03-10T06:{args.minutes:02d}"
    models = {}
    if "demo" in args.models:
        models["demo"] = (auroradask.demo_model(), "/Concat_output_0")
    if "resnet50" in args.models:
        path = build_resnet50(str(workdir / "resnet50.onnx"))
        layers = auroradask.embedding_layers(path)
        maps = layers[[bool(s) and len(s) == 4 and s[2] != 1 for s in layers["shape"]]]
        models["resnet50"] = (path, maps["name"].iloc[-1])  # the last feature map
    records = []
    for name, (path, layer) in models.items():
        base = {"archive": str(archive), "end": end, "chunk_minutes": 2, "cores": args.cores}
        base.update(model=path, layer=layer)
        for _ in range(args.repeats):
            for stage, dtype in (("classify", None), ("embed", "float16"), ("embed", "float32")):
                spec = {**base, "stage": stage, "dtype": dtype}
                record = {**measure(spec), "model": name, "model_path": path}
                print(
                    f"{name:9s} {stage:8s} {dtype or '':8s} {record['frames_per_s']:7.2f} "
                    f"frames/s  peak {record['peak_memory_mb']:7.1f} MB",
                    flush=True,
                )
                records.append(record)
    print()
    print("| model | layer (features) | run | frames/s | × classify | peak MB | × classify |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in models:
        mine = [r for r in records if r["model"] == name]

        def median(stage, dtype, key, mine=mine):
            return statistics.median(
                r[key] for r in mine if r["stage"] == stage and r["dtype"] == dtype
            )

        rate0 = median("classify", None, "frames_per_s")
        mem0 = median("classify", None, "peak_memory_mb")
        features = next(r.get("features") for r in mine if r["stage"] == "embed")
        for stage, dtype in (("classify", None), ("embed", "float16"), ("embed", "float32")):
            rate = median(stage, dtype, "frames_per_s")
            mem = median(stage, dtype, "peak_memory_mb")
            label = stage if dtype is None else f"{stage} {dtype}"
            print(
                f"| {name} | `{mine[0]['layer']}` ({features}) | {label} | {rate:.1f} | "
                f"{rate / rate0:.2f} | {mem:.0f} | {mem / mem0:.2f} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()

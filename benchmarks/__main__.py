"""``python -m benchmarks [--quick|--medium|--full] [--repeat 3] [--json FILE]``: the table of benchmarks/README.md.

The machine (CPU, clock, BLAS and numba threading layers, library versions) is printed first
and stored in the JSON (``benchmarks/_machine.py``). With ``--repeat N`` every throughput
configuration runs N times, interleaved (ceilings, baseline, auroradask; then again), and the
figures reported are the median of the rounds with their spread; a ratio is taken within each
round (both sides minutes apart), then its median.

Every configuration runs in its own process on the same generated archive and core count;
peak memory is the largest sum of resident memory over that process and all its children,
sampled every 0.1 s. Each throughput configuration also runs at double length, to show
whether memory grows with the length of a run.

Each run starts from an empty ``runs/`` folder under the work folder: the generated archives
are kept (they are the same for every run) but no store, text file or model of an earlier
run is ever resumed or reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil

import auroradask
from benchmarks._machine import describe_machine, format_machine, summarise
from tests.support.archive import make_archive
from tests.support.models import build_resnet50

MODES = {
    # sites, hours, minute files per hour (20 frames each); double length doubles the minutes
    "quick": {"sites": ["bnch", "bnck"], "hours": 1, "minutes": 4},
    "medium": {"sites": ["bnch"], "hours": 2, "minutes": 60},  # 2 hours: 120 files, 2,400 frames
    "full": {"sites": ["bnch"], "hours": 12, "minutes": 60},  # a site-night: 720 files
}
#: models and lengths each mode runs unless --models/--lengths say otherwise: medium mode is
#: the demo model only, to stay under 8 minutes on 2 cores
DEFAULTS = {
    "quick": ("demo,resnet50", "single,double"),
    "medium": ("demo", "single,double"),
    "full": ("demo,resnet50", "single,double"),
}


def measure(spec: dict) -> dict:
    """Run one configuration in a new process; add its peak memory (all processes, MB)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.configs", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    out = process.stdout.read().strip().splitlines()
    if process.returncode != 0 or not out:
        raise RuntimeError(f"benchmark {spec['config']} failed (exit {process.returncode})")
    result = json.loads(out[-1])
    result["peak_memory_mb"] = round(peak / 2**20, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes of frames (default)")
    mode.add_argument(
        "--medium",
        action="store_true",
        help="one site x 2 hours, 2,400 frames (demo model: under 8 minutes on 2 cores)",
    )
    mode.add_argument(
        "--full", action="store_true", help="a whole site-night (takes hours on 2 cores)"
    )
    parser.add_argument("--json", help="write the records to this file")
    parser.add_argument(
        "--models", help="comma-separated: demo, resnet50 (default: both; medium: demo)"
    )
    parser.add_argument(
        "--lengths",
        help="comma-separated: single, double (double length shows whether memory grows)",
    )
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the throughput configurations, interleaved; figures are the median "
        "of the rounds with their spread (3 for figures to report; default 1)",
    )
    parser.add_argument(
        "--workdir", help="where archives and stores go (default: a temporary folder)"
    )
    args = parser.parse_args()
    machine = describe_machine()
    print(format_machine(machine), flush=True)
    mode_name = "full" if args.full else "medium" if args.medium else "quick"
    size = MODES[mode_name]
    args.models = args.models or DEFAULTS[mode_name][0]
    args.lengths = args.lengths or DEFAULTS[mode_name][1]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="auroradask-bench-"))
    # everything a run writes goes under runs/, emptied first: a reused --workdir must not
    # resume an earlier run's store (to_zarr skips the slots already written: 0 frames)
    runs = workdir / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    records = []

    lengths = {}
    for length, factor in (("single", 1), ("double", 2)):
        if length not in args.lengths.split(",") and length != "single":
            continue
        archive = workdir / f"stream0-{mode_name}-{length}"
        minutes = size["minutes"] * factor if size["hours"] == 1 else size["minutes"]
        hours = size["hours"] if size["hours"] == 1 else size["hours"] * factor
        files = make_archive(archive, size["sites"], "2014-03-10T00:00", hours, minutes)
        end = str(pd.Timestamp("2014-03-10") + pd.Timedelta(hours=hours - 1, minutes=minutes))
        lengths[length] = {
            "archive": str(archive),
            "sites": size["sites"],
            "start": "2014-03-10",
            "end": end,
            "files": len(files),
        }
        print(
            f"{length}: {len(files)} minute files ({len(files) * 20} frames) in {archive}",
            flush=True,
        )
        _warm_page_cache(files)

    models = {"demo": auroradask.demo_model()}
    if "resnet50" in args.models:
        models["resnet50"] = build_resnet50(str(runs / "resnet50-random.onnx"))
    for round_ in range(args.repeat):  # interleaved: every configuration once a round
        for model_name, model in models.items():
            if model_name in args.models.split(","):
                records += _throughput_round(model_name, model, lengths, args, runs, round_)

    spec = {
        **lengths["single"],
        "config": "preprocess_compare",
        "model": "",
        "cores": args.cores,
        "workdir": str(runs),
    }
    compare = measure(spec)
    records.append(
        {
            "model": "-",
            "config": "preprocess_dask",
            "length": "single",
            "frames": compare["frames"],
            "fps": round(compare["frames"] / compare["seconds"], 1),
            "ms_per_frame": round(1000 * compare["seconds"] / compare["frames"], 2),
            "peak_memory_mb": compare["peak_memory_mb"],
        }
    )
    records.append(
        {
            "model": "-",
            "config": "preprocess_opencv_loop",
            "length": "single",
            "frames": compare["frames"],
            "fps": round(compare["frames"] / compare["loop_seconds"], 1),
            "ms_per_frame": round(1000 * compare["loop_seconds"] / compare["frames"], 2),
            "peak_memory_mb": None,
        }
    )
    opened = measure(
        {
            **lengths["single"],
            "config": "open_cost",
            "model": "",
            "cores": args.cores,
            "workdir": str(runs),
        }
    )
    records.append(
        {
            "model": "-",
            "config": "open_10_sites_2_days",
            "length": "-",
            "frames": opened["frames"],
            "files": opened["files"],
            "seconds": round(opened["seconds"], 2),
            "fps": None,
            "peak_memory_mb": opened["peak_memory_mb"],
        }
    )

    _print_table(records, args.cores)
    summary = _summary(records)
    if args.repeat > 1:
        _print_summary(summary, args.repeat)
    if args.json:
        document = {"machine": machine, "repeat": args.repeat, "records": records}
        Path(args.json).write_text(json.dumps({**document, "summary": summary}, indent=1))


def _summary(records: list[dict]) -> list[dict]:
    """Per model, configuration and length: the median fps of the rounds and its spread, and
    for auroradask the median of each round's ratios."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if "round" in r and r["fps"] is not None:
            groups.setdefault((r["model"], r["config"], r["length"]), []).append(r)
    summary = []
    for (model, config, length), rounds in groups.items():
        row = {"model": model, "config": config, "length": length}
        row["fps"] = summarise(r["fps"] for r in rounds)
        for ratio in ("ratio_baseline", "ratio_sequence"):
            if ratio in rounds[0]:
                row[ratio] = summarise(r[ratio] for r in rounds)
        summary.append(row)
    return summary


def _print_summary(summary: list[dict], repeat: int) -> None:
    print(f"\nmedian of {repeat} interleaved rounds (lowest-highest)")
    for row in summary:
        fps = row["fps"]
        line = (
            f"{row['model']:<9} {row['config']:<23} {row['length']:<7} "
            f"{fps['median']:>8.1f} fps ({fps['low']:.1f}-{fps['high']:.1f})"
        )
        for ratio, name in (("ratio_baseline", "baseline"), ("ratio_sequence", "sequence")):
            if ratio in row:
                r = row[ratio]
                line += f"  x{r['median']:.2f} {name} ({r['low']:.2f}-{r['high']:.2f})"
        print(line)


def _warm_page_cache(files: list[str]) -> None:
    """Flush the generator's writes and read every file once before any timing.

    Without it the first configuration of the first round read files still being written
    back, from a cold cache: in a 2-round quick run on a busy machine the read ceiling was
    120 frames/s in round 1 and 878 in round 2. Every round now reads a warm cache, as a
    re-run over a mirror does (what the ceilings are for); cold reads are the remote
    benchmark's subject.
    """
    os.sync()
    for path in files:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def _throughput_round(
    model_name: str, model: str, lengths: dict, args: argparse.Namespace, runs: Path, round_: int
) -> list[dict]:
    """One round for one model: the three ceilings, then baseline and auroradask at each
    length; ratios are taken within the round."""
    records = []
    ceilings = {}
    for config in ("ceiling_read", "ceiling_preprocess", "ceiling_model"):
        spec = {
            **lengths["single"],
            "config": config,
            "model": model,
            "cores": args.cores,
            "workdir": str(runs),
        }
        result = measure(spec)
        ceilings[config] = result["frames"] / result["seconds"]
        records.append(_record(model_name, config, "single", result, round_))
    ceiling = min(ceilings.values())
    # the three stages back to back on the same cores, with no overhead at all
    pipeline = 1 / sum(1 / fps for fps in ceilings.values())
    for length in [n for n in ("single", "double") if n in args.lengths.split(",")]:
        found = {}
        for config in ("baseline", "auroradask"):
            run_dir = runs / f"{model_name}-{config}-{length}-round{round_}"
            run_dir.mkdir()
            spec = {
                **lengths[length],
                "config": config,
                "model": model,
                "cores": args.cores,
                "workdir": str(run_dir),
            }
            found[config] = _record(model_name, config, length, measure(spec), round_)
        found["auroradask"]["ratio_baseline"] = round(
            found["auroradask"]["fps"] / found["baseline"]["fps"], 2
        )
        found["auroradask"]["ratio_ceiling"] = round(found["auroradask"]["fps"] / ceiling, 2)
        found["auroradask"]["ratio_sequence"] = round(found["auroradask"]["fps"] / pipeline, 2)
        found["auroradask"]["sequence_fps"] = round(pipeline, 1)
        records += [found["baseline"], found["auroradask"]]
    return records


def _record(model: str, config: str, length: str, result: dict, round_: int = 0) -> dict:
    return {
        "round": round_,
        "model": model,
        "config": config,
        "length": length,
        "frames": result["frames"],
        "seconds": round(result["seconds"], 2),
        "fps": round(result["frames"] / result["seconds"], 1),
        "peak_memory_mb": result["peak_memory_mb"],
    }


def _print_table(records: list[dict], cores: int) -> None:
    print(f"\n{cores} cores")
    print(
        f"{'model':<9} {'config':<23} {'length':<7} {'frames':>7} {'fps':>8} {'peak MB':>8}  ratios"
    )
    for r in records:
        ratios = ""
        if "ratio_baseline" in r:
            ratios = (
                f"x{r['ratio_baseline']} baseline, x{r['ratio_ceiling']} ceiling, "
                f"x{r['ratio_sequence']} stages in sequence"
            )
        if "ms_per_frame" in r:
            ratios = f"{r['ms_per_frame']} ms/frame"
        if r["config"].startswith("open"):
            ratios = f"{r['files']} files opened in {r['seconds']} s"
        fps = "" if r["fps"] is None else r["fps"]
        mem = "" if r["peak_memory_mb"] is None else r["peak_memory_mb"]
        print(
            f"{r['model']:<9} {r['config']:<23} {r['length']:<7} {r['frames']:>7} {fps:>8} {mem:>8}  {ratios}"
        )


if __name__ == "__main__":
    main()

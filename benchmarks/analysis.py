"""``python -m benchmarks.analysis [--sites N] [--days M] [--json FILE]``: analysis at scale.

Measures, on a synthetic store of N sites x M days with structured nights
(``tests/synthetic.py``, one chunk per site-day), the two computations a study starts with:
occurrence of every class by MLT hour x month, and the event list of ``pulsating``
(min duration 5 min, max gap 30 s), against the baseline of today: the same labels as one
text file per site-day in the ``export-text`` format, read and grouped with pandas in one
process.

- **auroradask**: ``open_results`` -> ``occurrence`` and ``events``, dask's threaded
  scheduler on all cores, each run in a fresh process; also both in one pass
  (``compute=False`` + ``dask.compute``), and at smaller sizes (fewer sites, fewer days) to
  show whether time grows linearly with sites x days.
- **baseline**: ``--baseline-files`` text files (the first sites and days) are written with
  ``auroradask.export_text`` (not timed), then read with ``pandas.read_csv``, MLT from
  ``aacgmv2`` (exact once a minute of each file, interpolated between), occurrence with
  ``groupby``, events by run-length on each site's rows; its time is scaled by the number of
  site-days. Its answers are checked against auroradask's on the same subset
  (:func:`cross_check`).

Peak memory is the largest resident set of the measuring process (``VmHWM``; all of dask's
threads are in it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the synthetic-results builder

CLASS = "pulsating"
EVENTS = {"min_duration": "5min", "max_gap": "30s"}
BY = ["mlt_hour", "month"]


def _peak_mb() -> float:
    """Peak resident memory of this process (MB): VmHWM belongs to the address space made
    by exec, unlike ``ru_maxrss``, which a child inherits from the process that forked it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, **spec) -> dict:
    """Run one measurement in a fresh process; return its JSON line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.analysis",
            "--child",
            json.dumps({"mode": mode, **spec}),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------- measurements


def open_store(store: str, per_task: bool):
    """The store as ``open_results`` gives it (32 site-days per dask task by default, since
    issue 14's figures were taken at one site-day per task), or with dask chunks of 8
    site-days (8 store chunks read by one zarr call per task).

    Not ``xr.open_zarr(chunks=None)``: its in-memory cache keeps every variable that a task
    touches whole, so memory grows with the store (seen here: +0.17 MB per site-day).
    """
    import warnings

    import xarray as xr

    import auroradask

    if not per_task:
        return auroradask.open_results(store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(store, chunks={"site": 1, "time": 8 * 28_800})


def measure_auroradask(
    store: str, sites: int | None, days: int | None, together: bool, per_task: bool = False
) -> dict:
    import dask

    import auroradask

    results = open_store(store, per_task)
    if sites is not None:
        results = results.isel(site=slice(0, sites))
    if days is not None:
        results = results.isel(time=slice(0, days * 28_800))
    started = time.perf_counter()
    if together:
        occ = auroradask.occurrence(results, by=BY, compute=False)
        ev = auroradask.events(results, CLASS, compute=False, **EVENTS)
        occ, ev = dask.compute(occ, ev, optimize_graph=False)
        seconds = {"together": time.perf_counter() - started}
    else:
        occ = auroradask.occurrence(results, by=BY)
        middle = time.perf_counter()
        ev = auroradask.events(results, CLASS, **EVENTS)
        seconds = {"occurrence": middle - started, "events": time.perf_counter() - middle}
    return {
        "site_days": int(results.sizes["site"] * results.sizes["time"] // 28_800),
        "seconds": seconds,
        "total_s": time.perf_counter() - started,
        "peak_mb": _peak_mb(),
        "usable": int(occ["usable"].sum()),
        "events": len(ev),
        "counts": occ["count"].sum("class").values.tolist(),
        "event_key": _event_key(ev),
    }


def _event_key(events: pd.DataFrame) -> list:
    return [
        [str(s), str(pd.Timestamp(a)), str(pd.Timestamp(b)), int(f)]
        for s, a, b, f in zip(
            events["site"], events["start"], events["end"], events["frames"], strict=True
        )
    ]


#: How close to an MLT hour's edge (seconds of MLT) the two sides may place a slot in either
#: hour. Both sides are within this of AACGM-v2 called for each slot: auroradask within
#: 0.005 s (a cubic spline through exact values every 10 min, see ``mlt_kernel``), the
#: baseline within 0.03 s (exact values every minute, straight between them; 0.024 s at
#: worst, in June). A slot closer than this to an edge may fall either side, so the check of
#: a cell is a range, not a number: at least the slots surely in it, at most those that may
#: be. Slots are 3 s apart and edges fall anywhere, so about 7 % of the edges crossed have
#: a slot this close.
MLT_EDGE_S = 0.1


def baseline_mlt(stamp: pd.Series, lat: float, lon: float) -> np.ndarray:
    """MLT (hours) of each row of one site-day file, the way a careful pandas user gets it
    from ``aacgmv2``: exact values once a minute, straight lines between them.

    Each hour starts with ``get_aacgm_coord``: the site's magnetic longitude for that hour,
    and it sets the library's date (whose MLT otherwise keeps the coefficients of the last
    date set for 30 days, 0.14 s of MLT a day). Within 0.04 s of AACGM-v2 per slot. Not "the
    minute's MLT plus the seconds since", as this baseline first did: MLT runs at 0.84 to
    1.10 hours an hour of UT, so that put slots up to 9 s off by a minute's end, and into
    the wrong hour next to each edge.
    """
    import aacgmv2

    day = stamp.iloc[0].floor("D")
    knots = np.empty(24 * 60 + 1)
    for h in range(25):
        start = day + pd.Timedelta(hours=h)
        _, mlon, _ = aacgmv2.get_aacgm_coord(lat, lon, 110, start.to_pydatetime())
        minutes = [(start + pd.Timedelta(minutes=m)).to_pydatetime() for m in range(60)]
        minutes = minutes[: len(knots) - 60 * h]  # hour 24: its first minute only
        knots[60 * h : 60 * h + len(minutes)] = aacgmv2.convert_mlt(
            np.full(len(minutes), mlon), minutes
        )
    seconds = (stamp - day).dt.total_seconds().to_numpy()
    unwrapped = np.unwrap(knots, period=24.0)
    return np.interp(seconds, 60.0 * np.arange(knots.size), unwrapped) % 24


def measure_baseline(folder: str, files: list[str], sites: dict[str, list[float]]) -> dict:
    """Today's way: read every site-day file with pandas, group, find runs.

    Besides the counts per MLT hour x month, the slots surely in each cell and those that
    may be in it (within :data:`MLT_EDGE_S` of an hour's edge): the cross-check's range.
    """
    started = time.perf_counter()
    counts = np.zeros((24, 12, 4), dtype=np.int64)
    surely = np.zeros((24, 12), dtype=np.int64)
    maybe = np.zeros((24, 12), dtype=np.int64)
    edge = MLT_EDGE_S / 3600
    rows_by_site: dict[str, list[pd.DataFrame]] = {}
    for path in files:
        site = Path(path).name.split("_")[1]
        table = pd.read_csv(path, comment="#", dtype={"date": str, "time": str})
        stamp = pd.to_datetime(table["date"] + table["time"], format="%Y%m%d%H:%M:%S")
        mlt = baseline_mlt(stamp, *sites[site])
        table["mlt_hour"] = mlt.astype(int)
        table["month"] = stamp.dt.month
        grouped = table.groupby(["mlt_hour", "month", "prediction"]).size()
        for (h, m, k), n in grouped.items():
            counts[h, m - 1, k] += n
        low = np.floor((mlt - edge) % 24).astype(int)
        high = np.floor((mlt + edge) % 24).astype(int)
        month = table["month"].to_numpy() - 1
        np.add.at(surely, (low[low == high], month[low == high]), 1)
        np.add.at(maybe, (low, month), 1)
        np.add.at(maybe, (high[low != high], month[low != high]), 1)
        table["stamp"], table["mlt"] = stamp, mlt
        rows_by_site.setdefault(site, []).append(table[table["prediction_str"] == CLASS])
    events = []
    slot, gap = pd.Timedelta("3s"), pd.Timedelta(EVENTS["max_gap"])
    for site, parts in rows_by_site.items():
        rows = pd.concat(parts).sort_values("stamp")
        new = rows["stamp"].diff() - slot > gap
        event = new.cumsum()
        grouped = rows.groupby(event).agg(
            start=("stamp", "first"),
            last=("stamp", "last"),
            frames=("stamp", "size"),
            mean_confidence=("confidence", "mean"),
            max_confidence=("confidence", "max"),
            mlt_start=("mlt", "first"),
            mlt_end=("mlt", "last"),
        )
        grouped["end"] = grouped["last"] + slot
        grouped = grouped[grouped["end"] - grouped["start"] >= pd.Timedelta(EVENTS["min_duration"])]
        events.append(grouped.assign(site=site))
    ev = pd.concat(events).sort_values(["start", "site"], kind="stable")
    seconds = time.perf_counter() - started
    return {
        "site_days": len(files),
        "total_s": seconds,
        "peak_mb": _peak_mb(),
        "usable": int(counts.sum()),
        "events": len(ev),
        "counts": counts.sum(axis=2).tolist(),
        "surely": surely.tolist(),
        "maybe": maybe.tolist(),
        "event_key": _event_key(ev),
    }


def _child_main(spec: dict) -> None:
    mode = spec.pop("mode")
    if mode == "auroradask":
        out = measure_auroradask(**spec)
    else:
        out = measure_baseline(**spec)
    print(json.dumps(out))


# ------------------------------------------------------------------------------ driver


def build_store(path: Path, sites: list[str], days: int) -> float:
    import auroradask
    from tests.support.synthetic import synthetic_results

    started = time.perf_counter()
    auroradask.to_zarr(synthetic_results(sites, "2014-01-01", days=days), path)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analysis", description=__doc__)
    parser.add_argument("--sites", type=int, default=20, help="sites (default 20)")
    parser.add_argument("--days", type=int, default=30, help="UT days from 2014-01-01 (default 30)")
    parser.add_argument(
        "--baseline-files",
        type=int,
        default=120,
        help="site-day text files the baseline reads; its time is scaled (default 120)",
    )
    parser.add_argument(
        "--workdir", help="folder for the store and text files (default: temporary)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of the four variants and the baseline, interleaved; medians reported "
        "(default 3)",
    )
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child_main(json.loads(args.child))
        return 0

    import auroradask
    from auroradask.io._sites import THEMIS_SITES

    codes = list(THEMIS_SITES)[: args.sites]
    if len(codes) < args.sites:
        parser.error(f"--sites: at most {len(THEMIS_SITES)} (the THEMIS sites)")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="auroradask-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / f"store-{args.sites}x{args.days}.zarr"
    from benchmarks._machine import describe_machine, format_machine

    machine = describe_machine()
    print(format_machine(machine), file=sys.stderr, flush=True)
    report: dict = {
        "machine": machine,
        "sites": args.sites,
        "days": args.days,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    if not store.exists():
        print(f"writing {args.sites} sites x {args.days} days ...", file=sys.stderr, flush=True)
        report["write_s"] = build_store(store, codes, args.days)
    size_mb = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e6
    report["store_mb"] = size_mb

    # baseline subset: the first files in site, day order, written as export-text files
    per_site = max(1, min(args.days, args.baseline_files // args.sites or 1))
    n_sites = max(1, min(args.sites, -(-args.baseline_files // per_site)))
    text = work / "text"
    if text.exists():
        shutil.rmtree(text)
    opened = auroradask.open_results(store)
    subset = opened.isel(site=slice(0, n_sites), time=slice(0, per_site * 28_800))
    print(f"export-text of {n_sites} sites x {per_site} days ...", file=sys.stderr, flush=True)
    files = sorted(auroradask.export_text(subset, text))
    coords = {
        str(s): [float(a), float(o)]
        for s, a, o in zip(
            opened.site.values, opened.latitude.values, opened.longitude.values, strict=True
        )
    }
    wide = {"store": str(store), "per_task": True}
    variants = {
        "open_results": {"store": str(store), "together": False},
        "open_results_one_pass": {"store": str(store), "together": True},
        "8_days_per_task": {**wide, "together": False},
        "8_days_per_task_one_pass": {**wide, "together": True},
    }
    rounds = []  # A B C D baseline, A B C D baseline, ...: the machine's drift hits all alike
    for r in range(args.repeat):
        print(f"round {r + 1} of {args.repeat} ...", file=sys.stderr, flush=True)
        one = {k: _child("auroradask", **v, sites=None, days=None) for k, v in variants.items()}
        one["baseline"] = _child("baseline", folder=str(text), files=files, sites=coords)
        rounds.append(one)
    scaling = [
        _child("auroradask", **wide, sites=max(1, args.sites // 4), days=None, together=True),
        _child("auroradask", **wide, sites=max(1, args.sites // 2), days=None, together=True),
        _child("auroradask", **wide, sites=None, days=max(1, args.days // 2), together=True),
    ]
    same = _child("auroradask", store=str(store), sites=n_sites, days=per_site, together=False)
    report["baseline_agrees"] = cross_check(rounds[0]["baseline"], same)
    site_days = args.sites * args.days
    target = 20 * 365

    def per_site_day(run: dict) -> float:
        return run["total_s"] / run["site_days"]

    def median_run(name: str) -> dict:
        runs = sorted((one[name] for one in rounds), key=lambda run: run["total_s"])
        return runs[len(runs) // 2]

    runs = {k: median_run(k) for k in variants}
    base = median_run("baseline")
    base_per = per_site_day(base)
    speedups = {  # each round's ratio: variant and baseline measured minutes apart
        k: sorted(per_site_day(one["baseline"]) / per_site_day(one[k]) for one in rounds)
        for k in variants
    }
    report.update(
        {
            "rounds": args.repeat,
            "runs": {k: _strip(v) for k, v in runs.items()},
            "runs_total_s": {
                k: [round(one[k]["total_s"], 2) for one in rounds] for k in [*variants, "baseline"]
            },
            "scaling_8_days_one_pass": [
                *map(_strip, scaling),
                _strip(runs["8_days_per_task_one_pass"]),
            ],
            "baseline_subset": _strip(base),
            "baseline_scaled_s": base_per * site_days,
            "speedup": {k: v[len(v) // 2] for k, v in speedups.items()},
            "speedup_spread": {k: [v[0], v[-1]] for k, v in speedups.items()},
            "extrapolated_20x365_s": {
                **{k: per_site_day(v) * target for k, v in runs.items()},
                "baseline": base_per * target,
            },
        }
    )
    report["load_average_at_end"] = os.getloadavg()
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    agrees = report["baseline_agrees"]
    if not (agrees["usable"] and agrees["events"] and agrees["mlt_month_cells"]):
        print("the baseline and auroradask disagree (see 'baseline agrees')", file=sys.stderr)
        return 1
    return 0


def cross_check(base: dict, same: dict) -> dict:
    """auroradask's answers against the baseline's on the same files.

    Usable slots and events must be equal. Each MLT hour x month cell must hold at least the
    slots the baseline places surely in it and at most those it may (within
    :data:`MLT_EDGE_S` of an edge): two computations of MLT, each within a few hundredths of
    a second of AACGM-v2, can disagree only on a slot that close to an edge. ``cells`` is
    True when every cell is in its range; the largest difference and the slots that close
    to an edge are reported beside it.
    """
    got = np.array(same["counts"])
    surely, maybe = np.array(base["surely"]), np.array(base["maybe"])
    return {
        "usable": base["usable"] == same["usable"],
        "events": base["event_key"] == same["event_key"],
        "mlt_month_cells": bool(((surely <= got) & (got <= maybe)).all()),
        "mlt_month_cells_max_abs_diff": int(np.abs(np.array(base["counts"]) - got).max()),
        "slots_within_mlt_edge_s": int(maybe.sum() - base["usable"]),
        "mlt_edge_s": MLT_EDGE_S,
    }


def _strip(run: dict) -> dict:
    return {k: v for k, v in run.items() if k not in ("counts", "surely", "maybe", "event_key")}


def _print(r: dict) -> None:
    print(
        f"store: {r['sites']} sites x {r['days']} days, {r['store_mb']:.0f} MB, {r['cores']} cores"
    )
    for name, run in r["runs"].items():
        parts = " + ".join(f"{k} {v:.1f} s" for k, v in run["seconds"].items())
        low, high = r["speedup_spread"][name]
        print(
            f"auroradask, {name}: {parts} = {run['total_s']:.1f} s, peak {run['peak_mb']:.0f} MB,"
            f" {r['speedup'][name]:.1f}x the baseline ({low:.1f}-{high:.1f}x over "
            f"{r['rounds']} rounds)"
        )
    b = r["baseline_subset"]
    print(
        f"baseline: {b['site_days']} files in {b['total_s']:.1f} s, peak {b['peak_mb']:.0f} MB; "
        f"scaled to {r['sites'] * r['days']} site-days: {r['baseline_scaled_s']:.0f} s"
    )
    print("scaling (8 days per task, one pass):")
    for s in r["scaling_8_days_one_pass"]:
        print(
            f"  {s['site_days']:>6} site-days: {s['total_s']:.2f} s, "
            f"{1000 * s['total_s'] / s['site_days']:.1f} ms per site-day, peak {s['peak_mb']:.0f} MB"
        )
    e = r["extrapolated_20x365_s"]
    print("20 sites x 365 days, extrapolated: " + ", ".join(f"{k} {v:.0f} s" for k, v in e.items()))
    print(f"baseline agrees: {r['baseline_agrees']}")
    start, end = r["load_average_at_start"], r["load_average_at_end"]
    print(f"load average (1, 5, 15 min): {start} at start, {end} at the end")


if __name__ == "__main__":
    sys.exit(main())

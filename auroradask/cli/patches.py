"""``patches``: auroral patches of sites and times into a parquet table, tracks in a figure.

Thin over :func:`auroradask.open_themis` and :func:`auroradask.patches`;
:func:`add_commands` adds the subcommand to the ``auroradask`` command.
"""

from __future__ import annotations

import argparse

import numpy as np

import auroradask

from .options import (
    FIGURE,
    add_frames_options,
    add_out,
    existing_file,
    frames_request,
    non_negative_float,
    output_file,
    positive_float,
    positive_int,
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``patches`` subcommand to ``commands``."""
    run = commands.add_parser(
        "patches",
        help="detect, georeference and track auroral patches into a parquet table",
        description="Detect auroral patches in every frame (running background removed, "
        "threshold within the field of view, connected regions), georeference them with a "
        "skymap and link them into tracks. Writes one row per patch per frame (parquet) and "
        "one row per track beside it (<out>-tracks.parquet). With no data options: the "
        "bundled sample (gill, 2014-03-10 06:00-06:06 UT).",
    )
    data = run.add_argument_group("data")
    add_frames_options(data, chunk_minutes=True)
    geo = run.add_argument_group("geometry")
    geo.add_argument(
        "--skymap",
        type=existing_file,
        help="skymap .sav: field of view, km² and latitude/longitude (default: an ideal "
        "fisheye circle, no geographic columns)",
    )
    geo.add_argument(
        "--altitude", type=positive_float, default=110.0, help="emission altitude km (90, 110, 150)"
    )
    geo.add_argument(
        "--min-elevation", type=float, default=15.0, help="field of view limit (default 15°)"
    )
    det = run.add_argument_group("detection")
    det.add_argument(
        "--background", default="min", choices=("min", "median", "none"), help="(default min)"
    )
    det.add_argument(
        "--window", type=positive_int, default=21, help="background frames (default 21)"
    )
    det.add_argument(
        "--threshold",
        default="otsu",
        help="otsu (default), relative, or counts above the background",
    )
    det.add_argument("--relative", type=float, help="with --threshold relative (default 0.1)")
    det.add_argument("--floor", type=float, default=500.0, help="lowest Otsu level (counts)")
    det.add_argument(
        "--min-area", type=positive_int, default=10, help="smallest patch, px (default 10)"
    )
    det.add_argument(
        "--smooth", type=non_negative_float, default=1.0, help="Gaussian sigma px (default 1)"
    )
    trk = run.add_argument_group("tracking")
    trk.add_argument(
        "--max-distance", type=positive_float, default=6.0, help="px per frame (default 6)"
    )
    trk.add_argument("--max-gap", type=int, default=3, help="missed frames (default 3)")
    out = run.add_argument_group("output")
    add_out(
        out,
        "patch table to write (parquet; the tracks go beside it)",
        type=output_file(".parquet"),
        metavar="patches.parquet",
        old=(),
    )
    out.add_argument("--plot", metavar="tracks.png", type=FIGURE, help="tracks drawn on a frame")
    run.set_defaults(func=cmd_patches)


def _threshold(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


def cmd_patches(args: argparse.Namespace) -> int:
    request = frames_request(args, "patches")
    frames = auroradask.open_themis(
        request["source"],
        request["site"],
        request["start"],
        request["end"],
        chunk_minutes=args.chunk_minutes,
        cache=args.cache,
    )
    result = auroradask.patches(
        frames,
        skymap=args.skymap,
        altitude_km=args.altitude,
        min_elevation=args.min_elevation,
        background=args.background,
        window=args.window,
        threshold=_threshold(args.threshold),
        relative=args.relative,
        floor=args.floor,
        min_area=args.min_area,
        smooth=args.smooth,
        max_distance=args.max_distance,
        max_gap=args.max_gap,
    )
    tracks_path = _tracks_path(args.out)
    result.to_parquet(args.out, tracks_path)
    ok = int((result.counts.values >= 0).sum())
    print(
        f"{ok} frames: {len(result.table)} patches in {len(result.tracks)} tracks "
        f"-> {args.out}, {tracks_path}"
    )
    if args.plot:
        under = {}  # each site's tracks on its frame with the most patches
        for site in map(str, frames["site"].values):
            busiest = int(np.argmax(result.counts.sel(site=site).values))
            under[site] = frames["images"].sel(site=site).isel(time=busiest).values
        result.plot_tracks(args.plot, frame=under)
        print(f"tracks plot: {args.plot}")
    return 0


def _tracks_path(out: str) -> str:
    stem = out[: -len(".parquet")] if out.endswith(".parquet") else out
    return f"{stem}-tracks.parquet"

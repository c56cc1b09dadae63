"""``auroradask quicklook | movie | montage | mosaic``: see what the model saw.

Thin over :func:`auroradask.quicklook`, :func:`auroradask.quicklooks`,
:func:`auroradask.movie`, :func:`auroradask.class_montage`, :func:`auroradask.mosaic` and
:func:`auroradask.mosaic_movie`; :func:`add_commands` adds the subcommands to the
``auroradask`` command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

import auroradask

from ..errors import ArgumentError
from .options import (
    FIGURE,
    add_frames_options,
    add_out,
    existing_file,
    fraction,
    frames_request,
    one_site,
    output_file,
    output_folder,
    positive_float,
    positive_int,
    site_list,
    ut_time,
)

_FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``quicklook``, ``movie`` and ``montage`` subcommands to ``commands``."""
    quick = commands.add_parser(
        "quicklook",
        help="keogram, labels and confidence of a night (a figure, or a folder of them)",
        description="Draw a site's night: the keogram (stored with the results, else computed "
        "from --source) over the label strip and the confidence, in UT. With -o FIG.png: one "
        "site and night. With -o FOLDER: every site and night with frames (or those given; "
        "a night without a frame is skipped and named), plus FOLDER/index.html to page "
        "through them.",
    )
    quick.add_argument("store", help="results store: path or fsspec URL")
    quick.add_argument("--group", help="group inside the store")
    quick.add_argument("--source", help="stream0 archive to compute keograms the store lacks")
    quick.add_argument(
        "--site",
        action="extend",
        type=site_list,
        help="site codes, comma-separated or repeated (several in the folder form)",
    )
    quick.add_argument(
        "--night",
        action="append",
        type=ut_time,
        help="date the night starts, YYYY-MM-DD, or a UT time inside it, YYYY-MM-DDTHH:MM "
        "(repeatable)",
    )
    quick.add_argument(
        "--skymap",
        type=existing_file,
        help="skymap .sav: keogram along the meridian, in elevation",
    )
    quick.add_argument(
        "--span",
        choices=("written", "night"),
        default="written",
        help="time axis: the written slots (default) or the whole 24 h",
    )
    add_out(quick, "FIG.png|.pdf|.svg, or a FOLDER", type=_figure_or_folder)
    quick.set_defaults(func=cmd_quicklook)

    film = commands.add_parser(
        "movie",
        help="a video of the frames with labels, beside the keogram with a cursor",
        description="Encode a site's frames from --start to --end as a video (H.264 by "
        "ffmpeg from imageio-ffmpeg): each frame with its time, label and confidence (from "
        "--store) beside the keogram of the interval with a moving cursor. Frames are read "
        "and drawn in parallel, encoded in order. With no data options: the bundled sample "
        "(gill, 2014-03-10 06:00-06:06 UT).",
    )
    add_frames_options(film)
    film.add_argument("--store", help="results store: labels, confidence, stored keogram")
    film.add_argument("--group", help="group inside the store")
    film.add_argument(
        "--speedup",
        type=positive_float,
        default=60.0,
        help="times faster than real time (default 60)",
    )
    film.add_argument("--height", type=positive_int, default=512, help="pixels, multiple of 16")
    film.add_argument(
        "--skymap",
        type=existing_file,
        help="skymap .sav: keogram along the geographic meridian",
    )
    film.add_argument(
        "--chunk-minutes",
        type=positive_int,
        default=2,
        help="minute files read per task (default 2: 40 frames, bounded memory)",
    )
    add_out(film, "the video to write (.mp4)", type=output_file(".mp4"), metavar="night.mp4")
    film.set_defaults(func=cmd_movie)

    grid = commands.add_parser(
        "montage",
        help="a grid of frames the model gave one class (random, most or least confident)",
        description="Pick frames that the store labelled --class and draw them in a grid, "
        "reading only those frames from --source.",
    )
    grid.add_argument("store", help="results store: path or fsspec URL")
    grid.add_argument("--group", help="group inside the store")
    grid.add_argument("--source", required=True, help="stream0 archive holding the frames")
    grid.add_argument("--class", dest="cls", required=True, help="class name")
    grid.add_argument("-n", type=positive_int, default=32, help="frames (default 32)")
    grid.add_argument(
        "--pick", choices=("random", "most", "least"), default="random", help="(default random)"
    )
    grid.add_argument("--seed", type=int, default=0, help="for --pick random (default 0)")
    grid.add_argument(
        "--site",
        action="extend",
        type=site_list,
        help="only these sites, comma-separated or repeated",
    )
    grid.add_argument("--min-confidence", type=fraction, help="only frames at least this confident")
    grid.add_argument("--columns", type=positive_int, default=8, help="tiles per row (default 8)")
    add_out(grid, "figure (.png, .pdf, .svg)", type=FIGURE)
    grid.set_defaults(func=cmd_montage)
    _add_mosaic(commands)


def _add_mosaic(commands: argparse._SubParsersAction) -> None:
    mosaic = commands.add_parser(
        "mosaic",
        help="several sites' frames on a map at one time (or a movie), outlined in label colours",
        description="Project each site's frame at --time onto geographic latitude and longitude "
        "with the skymap valid then (from the --skymaps tree), at --altitude km, each field "
        "of view outlined in the colour of its label in --store with the label and "
        "confidence. With -o VIDEO.mp4 and --start/--end: a movie of the mosaic instead, "
        "drawn in parallel as 'auroradask movie' is.",
    )
    mosaic.add_argument("--source", required=True, help="stream0 root: local path or fsspec URL")
    mosaic.add_argument(
        "--site",
        action="extend",
        type=site_list,
        required=True,
        help="site codes, comma-separated or repeated (--site atha,gako)",
    )
    mosaic.add_argument(
        "--skymaps",
        required=True,
        help="skymap tree (<site>/<site>_YYYYMMDD/themis_skymap_*.sav): folder or fsspec URL",
    )
    mosaic.add_argument("--time", type=ut_time, help="UT time of a figure, YYYY-MM-DDTHH:MM[:SS]")
    mosaic.add_argument("--start", type=ut_time, help="UT start of a movie (-o .mp4), inclusive")
    mosaic.add_argument("--end", type=ut_time, help="UT end of a movie, exclusive")
    mosaic.add_argument(
        "--altitude",
        type=positive_float,
        default=110.0,
        help="mapping altitude in km, one the skymaps have: 90, 110 or 150 (default 110)",
    )
    mosaic.add_argument(
        "--min-elevation",
        type=_elevation,
        default=10.0,
        help="leave out pixels that see the sky lower than this, degrees (default 10)",
    )
    mosaic.add_argument("--store", help="results store: the label and confidence of each site")
    mosaic.add_argument("--group", help="group inside the results store")
    mosaic.add_argument(
        "--speedup", type=positive_float, default=60.0, help="movie: times real time (default 60)"
    )
    mosaic.add_argument("--height", type=positive_int, default=512, help="movie: pixels (x16)")
    add_out(
        mosaic,
        "figure (.png, .pdf, .svg) or movie (.mp4)",
        type=output_file(*_FIGURE_SUFFIXES, ".mp4"),
    )
    mosaic.set_defaults(func=cmd_mosaic)


def _elevation(value: str) -> float:
    """An argparse type: degrees from 0 to 90 (an elevation cut)."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 <= number < 90:
        raise argparse.ArgumentTypeError(f"expected degrees from 0 to 90, got {value!r}")
    return number


def _figure_or_folder(value: str) -> str:
    """-o of quicklook: a figure file (one site and night) or a folder (every one)."""
    if Path(value).suffix:
        return FIGURE(value)
    return output_folder(value)


def _keogram_options(args: argparse.Namespace) -> dict:
    return {"skymap": args.skymap} if args.skymap else {}


def cmd_quicklook(args: argparse.Namespace) -> int:
    out = Path(args.out)
    options = {"span": args.span, **_keogram_options(args)}
    if out.suffix.lower() in _FIGURE_SUFFIXES:
        if not args.site or len(args.site) != 1 or not args.night or len(args.night) != 1:
            raise ArgumentError(
                "--site, --night: a figure (-o FIG.png) shows one site and one night; give a "
                "folder as -o for several"
            )
        auroradask.quicklook(
            args.store,
            site=args.site[0],
            night=args.night[0],
            source=args.source,
            group=args.group,
            path=out,
            **options,
        )
        night = args.night[0]
        timed = "T" in night or " " in night.strip()
        which = f"the night holding {night} UT" if timed else f"night of {night}"
        print(f"quicklook of {args.site[0]}, {which} -> {out}")
        return 0
    if out.suffix:
        raise ArgumentError(
            f"--output: {str(out)!r} must end in .png, .pdf or .svg, or be a folder"
        )
    count, passed = 0, []

    def progress(site, night, path):
        nonlocal count
        count += 1
        print(f"{site} {night} -> {path}", file=sys.stderr)

    def skipped(site, night, reason):
        passed.append(f"{site} {night}")
        print(f"{site} {night}: skipped, {reason}", file=sys.stderr)

    index = auroradask.quicklooks(
        args.store,
        out,
        sites=args.site,
        nights=args.night,
        source=args.source,
        group=args.group,
        progress=progress,
        skipped=skipped,
        **options,
    )
    without = f"; {len(passed)} without frames skipped ({', '.join(passed)})" if passed else ""
    print(f"{count} quicklooks -> {out}{without}; open {index}")
    return 0


def cmd_movie(args: argparse.Namespace) -> int:
    request = frames_request(args, "movie")
    if args.site is not None:
        one_site(args, "movie")  # a movie shows one site
    request["site"] = request["site"][0]
    frames = auroradask.open_themis(
        request["source"],
        request["site"],
        request["start"],
        request["end"],
        chunk_minutes=args.chunk_minutes,
    )
    total = frames.sizes["time"]

    def progress(written):
        print(f"\r{written} video frames", end="", file=sys.stderr, flush=True)

    info = auroradask.movie(
        frames,
        args.out,
        results=args.store,
        group=args.group,
        speedup=args.speedup,
        height=args.height,
        progress=progress,
        **_keogram_options(args),
    )
    print(file=sys.stderr)
    print(
        f"{info.data_frames} of {total} slots as {info.frames} video frames "
        f"({info.size[0]}x{info.size[1]}, {info.fps:g} fps) -> {info.path}"
    )
    return 0


def cmd_montage(args: argparse.Namespace) -> int:
    if Path(args.out).suffix.lower() not in _FIGURE_SUFFIXES:
        raise ArgumentError(f"--output: {args.out!r} must end in .png, .pdf or .svg")
    auroradask.class_montage(
        args.store,
        args.source,
        args.cls,
        n=args.n,
        pick=args.pick,
        seed=args.seed,
        sites=args.site,
        min_confidence=args.min_confidence,
        columns=args.columns,
        group=args.group,
        path=args.out,
    )
    print(f"{args.pick} frames labelled {args.cls} -> {args.out}")
    return 0


def _mosaic_span(args: argparse.Namespace) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The frames a mosaic reads: the minute holding --time (a figure), or --start to --end
    (a movie); the wrong combination for -o is an argument error, before any read."""
    movie = Path(args.out).suffix.lower() == ".mp4"
    if movie:
        if args.time or not (args.start and args.end):
            raise ArgumentError("--start, --end: a movie (-o .mp4) needs both, and no --time")
        start, end = pd.Timestamp(args.start), pd.Timestamp(args.end)
        if not end > start:
            raise ArgumentError(f"--end: {args.end} is not after --start {args.start}")
        return start, end
    if not args.time or args.start or args.end:
        raise ArgumentError("--time: a figure shows one time; give --time (--start/--end: .mp4)")
    minute = pd.Timestamp(args.time).floor("min")
    return minute, minute + pd.Timedelta(minutes=1)


def cmd_mosaic(args: argparse.Namespace) -> int:
    start, end = _mosaic_span(args)
    frames = auroradask.open_themis(args.source, args.site, start, end, chunk_minutes=1)
    skymaps = auroradask.open_skymaps(args.skymaps)
    common = {
        "skymaps": skymaps,
        "altitude": args.altitude,
        "results": args.store,
        "group": args.group,
        "min_elevation": args.min_elevation,
    }
    if Path(args.out).suffix.lower() != ".mp4":
        auroradask.mosaic(frames, args.time, path=args.out, **common)
        print(f"mosaic of {', '.join(args.site)} at {args.time} UT -> {args.out}")
        return 0

    def progress(written):
        print(f"\r{written} video frames", end="", file=sys.stderr, flush=True)

    info = auroradask.mosaic_movie(
        frames, args.out, speedup=args.speedup, height=args.height, progress=progress, **common
    )
    print(file=sys.stderr)
    print(
        f"mosaic movie of {', '.join(args.site)}: {info.data_frames} slots as {info.frames} "
        f"video frames ({info.size[0]}x{info.size[1]}, {info.fps:g} fps) -> {info.path}"
    )
    return 0

"""``auroradask label``: a page to label a night by hand, and merging labellers' sheets.

Thin over :func:`auroradask.label_page` and :func:`auroradask.merge_labels`;
:func:`add_commands` adds the subcommand to the ``auroradask`` command.
"""

from __future__ import annotations

import argparse
import json

import auroradask

from ..errors import ArgumentError
from ..labelling._images import DEFAULT_THUMBNAILS
from .options import add_out, existing_file, one_site, output_file, positive_int, site_list, ut_time


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``label`` subcommand to ``commands``."""
    label = commands.add_parser(
        "label",
        help="a page to label a night on its keogram; --merge: several people's sheets",
        description="Write a self-contained HTML page (open it from disk, no server, no "
        "network) to label a site's night: drag on the keogram, press 1-9; the page saves "
        "an interval sheet that 'auroradask evaluate' reads and a per-frame table for "
        "fit_head. With --merge: combine several labellers' sheets into one and report "
        "their agreement (Cohen's kappa, per pair, over all classes and per class).",
    )
    label.add_argument(
        "store",
        nargs="?",
        help="results store (path or URL); with --merge, optional: gives the merged "
        "intervals' UT times",
    )
    label.add_argument("--group", help="group inside the store")
    label.add_argument("--site", action="extend", type=site_list, help="site code (one)")
    label.add_argument(
        "--night",
        type=ut_time,
        help="date the night starts, YYYY-MM-DD, or a UT time inside it",
    )
    label.add_argument(
        "--source",
        dest="archive",
        help="stream0 archive: thumbnails, and the keogram if the store has none",
    )
    label.add_argument(
        "--classes", help="comma-separated classes for keys 1-9 (default: the store's)"
    )
    label.add_argument(
        "--thumbnails",
        default=DEFAULT_THUMBNAILS,
        metavar="N|SIZE",
        help="frames with a thumbnail: a count, or the page size they may fill "
        f"(default {DEFAULT_THUMBNAILS}; 0: none)",
    )
    label.add_argument(
        "--skymap", type=existing_file, help="skymap .sav: a keogram computed along the meridian"
    )
    label.add_argument(
        "--merge", nargs="+", metavar="SHEET", help="interval sheets (.csv, .xlsx) to merge"
    )
    label.add_argument(
        "--labellers", help="with --merge: comma-separated names (default: Labeller column)"
    )
    label.add_argument(
        "--min-votes",
        type=positive_int,
        default=1,
        help="with --merge: fewest labellers that must give a frame's class (default 1)",
    )
    label.add_argument(
        "--report",
        metavar="FILE.json",
        type=output_file(".json"),
        help="with --merge: the agreement as JSON",
    )
    add_out(
        label,
        "page.html, or with --merge the merged sheet .csv",
        type=output_file(".html", ".csv"),
        old=(),
    )
    label.set_defaults(func=cmd_label)


def cmd_label(args: argparse.Namespace) -> int:
    if args.merge:
        return _merge(args)
    given = [f"--{n}" for n in ("labellers", "report") if getattr(args, n)]
    if given:
        raise ArgumentError(f"{', '.join(given)}: only with --merge")
    missing = [
        n
        for n, v in (("STORE", args.store), ("--site", args.site), ("--night", args.night))
        if not v
    ]
    if missing:
        raise ArgumentError(
            f"label: {', '.join(missing)} required to make a page (or give --merge)"
        )
    info = auroradask.label_page(
        args.store,
        one_site(args, "label"),
        args.night,
        out=args.out,
        classes=[c for c in args.classes.split(",") if c.strip()] if args.classes else None,
        archive=args.archive,
        thumbnails=args.thumbnails,
        group=args.group,
        **({"skymap": args.skymap} if args.skymap else {}),
    )
    print(info)
    for day in info.partial_days:
        print(
            f"note: the store holds UT day {day} only in part; evaluate the per-frame table "
            "the page saves (sheet frame numbers need whole days)"
        )
    print(f"open {info.path} in a browser")
    return 0


def _merge(args: argparse.Namespace) -> int:
    page_only = [
        f"--{n}" for n in ("site", "night", "archive", "classes", "skymap") if getattr(args, n)
    ]
    if page_only:
        raise ArgumentError(f"{', '.join(page_only)}: not with --merge (they make a page)")
    if not args.out.lower().endswith(".csv"):
        raise ArgumentError(f"-o/--out: the merged sheet is a .csv, got {args.out!r}")
    merged = auroradask.merge_labels(
        args.merge,
        labellers=args.labellers.split(",") if args.labellers else None,
        min_votes=args.min_votes,
        store=args.store,
        group=args.group,
    )
    print(merged.to_text())
    merged.sheet.to_csv(args.out, index=False)
    print(f"\nmerged sheet: {len(merged.sheet)} intervals -> {args.out}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(merged.to_dict(), f, indent=2)
            f.write("\n")
        print(f"report: {args.report}")
    return 0

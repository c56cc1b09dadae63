"""``auroradask occurrence | events | timeline``: analysis of a results store.

Each command is a thin layer over the Python API (:func:`auroradask.occurrence`,
:func:`auroradask.events`, :func:`auroradask.plot_timeline` and the other plots): it opens
the store, passes the options through, shows a progress bar on stderr (none with -q), and writes a table
or a figure. Bad arguments (unknown class or site, empty selection, unknown output type)
raise :class:`auroradask.errors.ArgumentError`, which the command line turns into exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import auroradask

from ..errors import ArgumentError
from .options import (
    FIGURE,
    add_out,
    duration,
    fraction,
    one_site,
    output_file,
    positive_float,
    site_list,
    slots_or_duration,
    ut_time,
)


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="results store: path or fsspec URL")
    parser.add_argument("--group", help="group inside the store")


def _usable_arguments(parser: argparse.ArgumentParser) -> None:
    usable = parser.add_argument_group("usable slots")
    usable.add_argument(
        "--min-confidence",
        type=fraction,
        help="lowest confidence (probability of the label) that counts, 0..1",
    )
    usable.add_argument(
        "--exclude",
        help="comma-separated classes whose slots are not usable (e.g. bad_viewing)",
    )
    usable.add_argument(
        "--smooth",
        type=slots_or_duration,
        help="smooth labels first: most common label in a window of N slots or a duration (30s)",
    )


def _smooth(value: int | str | None) -> int | str | None:
    return value  # parsed by options.slots_or_duration: slots (int) or a duration


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``occurrence``, ``events`` and ``timeline`` subcommands to ``commands``."""
    occurrence = commands.add_parser(
        "occurrence",
        help="counts and rates of classes over usable slots, grouped (e.g. MLT hour x month)",
        description="Occurrence of classes over usable slots (written, classified, confident "
        "enough, not excluded), grouped; the usable counts are written beside the rates.",
    )
    _store_arguments(occurrence)
    occurrence.add_argument(
        "--class",
        dest="classes",
        help="comma-separated classes to report (default: all not excluded)",
    )
    occurrence.add_argument(
        "--by",
        default="mlt_hour",
        help="comma-separated groupings: site, year, month, doy, ut_hour, mlt_hour (or mlt), "
        "mlat, season (default mlt_hour); mlat,mlt pools the sites on an MLAT x MLT grid",
    )
    occurrence.add_argument("--freq", help="also bin time at a pandas frequency: 1D, MS, 1h")
    occurrence.add_argument(
        "--altitude",
        type=positive_float,
        default=110.0,
        help="km, for mlt_hour and mlat (default 110)",
    )
    occurrence.add_argument(
        "--mlat-bin",
        type=positive_float,
        default=1.0,
        help="degrees of magnetic latitude per mlat row (default 1)",
    )
    _usable_arguments(occurrence)
    add_out(occurrence, "table to write: .csv (long form) or .nc", type=output_file(".csv", ".nc"))
    occurrence.add_argument(
        "--plot",
        metavar="FIG.png",
        type=FIGURE,
        help="also draw the rate as a figure (a polar dial by mlat and mlt)",
    )
    occurrence.set_defaults(func=cmd_occurrence)

    events = commands.add_parser(
        "events",
        help="intervals of a class per site, whole across chunks and days",
        description="Events of a class: runs of usable slots of the class, joined across "
        "gaps of at most --max-gap, at least --min-duration long.",
    )
    _store_arguments(events)
    events.add_argument("--class", dest="cls", required=True, help="class name")
    events.add_argument(
        "--min-duration",
        default="0s",
        type=duration,
        help="shortest event kept (e.g. 5min; default 0s)",
    )
    events.add_argument(
        "--max-gap",
        default="0s",
        type=duration,
        help="longest gap bridged inside an event (e.g. 30s)",
    )
    events.add_argument(
        "--altitude",
        type=positive_float,
        default=110.0,
        help="km, for the MLT columns (default 110)",
    )
    _usable_arguments(events)
    add_out(events, "event table to write (.csv)", type=output_file(".csv"))
    events.add_argument(
        "--plot", metavar="FIG.png", type=FIGURE, help="also draw the events per site"
    )
    events.set_defaults(func=cmd_events)

    timeline = commands.add_parser(
        "timeline",
        help="figure of one site's labels and confidence through one night (UT)",
        description="Draw a site's labels through the night starting on --night: the 24 h "
        "UT centred on local midnight.",
    )
    _store_arguments(timeline)
    timeline.add_argument(
        "--site", required=True, action="extend", type=site_list, help="site code (one)"
    )
    timeline.add_argument(
        "--night",
        required=True,
        type=ut_time,
        help="date the night starts, YYYY-MM-DD, or a UT time inside it, YYYY-MM-DDTHH:MM",
    )
    _usable_arguments(timeline)
    add_out(timeline, "figure to write (.png, .pdf, .svg)", type=FIGURE)
    timeline.set_defaults(func=cmd_timeline)


def _open(args: argparse.Namespace):
    return auroradask.open_results(args.store, group=args.group)


def cmd_occurrence(args: argparse.Namespace) -> int:
    suffix = Path(args.out).suffix.lower()
    results = _open(args)
    table = auroradask.occurrence(
        results,
        by=args.by,
        freq=args.freq,
        classes=_split(args.classes),
        min_confidence=args.min_confidence,
        exclude=_split(args.exclude),
        smooth=_smooth(args.smooth),
        altitude_km=args.altitude,
        mlat_bin=args.mlat_bin,
        progress=not getattr(args, "quiet", False),
    )
    usable = int(table["usable"].sum())
    if usable == 0:
        raise ArgumentError(
            f"store: no usable slot in {args.store} with these options (min-confidence "
            f"{args.min_confidence}, exclude {args.exclude})"
        )
    if suffix == ".csv":
        order = list(table["count"].dims)  # class first, then the groupings as given
        table.to_dataframe(dim_order=order).reset_index().to_csv(args.out, index=False)
    else:
        table.to_netcdf(args.out)
    hours = usable * 3 / 3600
    print(
        f"occurrence of {', '.join(map(str, table['class'].values))} by "
        f"{args.by or '(all)'}{f' and {args.freq}' if args.freq else ''}: {usable} usable "
        f"slots ({hours:.1f} h) -> {args.out}"
    )
    if args.plot:
        dims = [d for d in table["count"].dims if d != "class"]
        if not dims:
            raise ArgumentError("--plot: the table has no grouping to plot (give --by or --freq)")
        cls = str(table["class"].values[0]) if table.sizes["class"] == 1 else None
        if cls is None:
            names = list(map(str, table["class"].values))
            cls = "pulsating" if "pulsating" in names else names[0]
        x, y = dims[0], (dims[1] if len(dims) > 1 else None)
        if {"mlat", "mlt_hour"} <= set(dims):  # the survey's dial; other groupings summed
            figure = auroradask.plot_occurrence_dial(table, cls)
        else:
            figure = auroradask.plot_occurrence(table, cls, x=x, y=y)
        figure.savefig(args.plot, dpi=120)
        print(f"figure of {cls} -> {args.plot}")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    results = _open(args)
    table = auroradask.events(
        results,
        args.cls,
        min_duration=args.min_duration,
        max_gap=args.max_gap,
        min_confidence=args.min_confidence,
        exclude=_split(args.exclude),
        smooth=_smooth(args.smooth),
        altitude_km=args.altitude,
        progress=not getattr(args, "quiet", False),
    )
    written = table.assign(duration=table["duration"].dt.total_seconds())
    written = written.rename(columns={"duration": "duration_s"})
    written.to_csv(args.out, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    hours = table["duration"].sum() / pd.Timedelta(hours=1) if len(table) else 0.0
    print(
        f"{len(table)} events of {args.cls} at {table['site'].nunique()} sites, "
        f"{hours:.1f} h in all -> {args.out}"
    )
    if args.plot:
        auroradask.plot_events(table, sites=[str(s) for s in results["site"].values]).savefig(
            args.plot, dpi=120
        )
        print(f"figure -> {args.plot}")
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    site = one_site(args, "timeline")
    results = _open(args)
    figure = auroradask.plot_timeline(
        results,
        site,
        args.night,
        smooth=_smooth(args.smooth),
        min_confidence=args.min_confidence,
        exclude=_split(args.exclude),
    )
    figure.savefig(args.out, dpi=120)
    print(f"timeline of {site}, night of {args.night} -> {args.out}")
    return 0

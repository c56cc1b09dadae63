"""``import-text`` and ``evaluate``: legacy text results in, human labels against a store.

Thin over :func:`auroradask.import_text`, :func:`auroradask.to_zarr` and
:func:`auroradask.evaluate`; :func:`add_commands` adds both to the ``auroradask`` command.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import auroradask

from .options import FIGURE, add_out, fraction, output_file, output_store


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``import-text`` and ``evaluate`` subcommands to ``commands``."""
    imp = commands.add_parser(
        "import-text",
        help="classifications text files (the published classifier's format) into a store",
        description="Read YYYYMMDD_<site>_..._classifications.txt files (searched recursively "
        "in folders) into a results store, one site-day per chunk. Resumable, and extendable "
        "with later days and new sites of the same producer.",
    )
    imp.add_argument("paths", nargs="+", metavar="FOLDER", help="folder(s) or file(s) to import")
    add_out(imp, "Zarr store path or URL to write", type=output_store, old=())
    imp.add_argument("--group", help="group inside the store")
    imp.add_argument(
        "--classes",
        help="all class names in index order, comma-separated (default: those in the files)",
    )
    imp.add_argument(
        "--producer",
        help="what made the files (default: the producer line of their comments: the "
        "first that holds no date and time and names neither the site nor the day; files "
        "that differ in such lines are refused unless --producer says they are one)",
    )
    imp.set_defaults(func=cmd_import_text)

    ev = commands.add_parser(
        "evaluate",
        help="a store against human labels or another store: confusion table, kappa",
        description="Compare a results store with a truth: an interval sheet (.xlsx or .csv: "
        "Station, Date, Start frame, End frame, Classification), a per-frame table (site, "
        "time, label), an interval table (site, start, end, label) or another store.",
    )
    ev.add_argument("store", help="results store path or URL")
    ev.add_argument("truth", help="sheet, table (.xlsx, .csv) or store")
    ev.add_argument("--group", help="group inside the results store")
    ev.add_argument(
        "--mapping",
        metavar="FILE|NAME",
        help="truth code -> class: a JSON file or a preset "
        f"({', '.join(auroradask.MAPPINGS)}); default: codes are class names",
    )
    ev.add_argument("--sheet", metavar="NAME", help="worksheet of an .xlsx truth (default: first)")
    ev.add_argument(
        "--min-confidence",
        type=fraction,
        metavar="X",
        help="compare only frames whose confidence is at least X",
    )
    add_out(
        ev,
        "write the full report as JSON",
        type=output_file(".json"),
        metavar="report.json",
        required=False,
    )
    ev.add_argument(
        "--plot", metavar="confusion.png", type=FIGURE, help="write the confusion-matrix plot"
    )
    ev.add_argument(
        "--sweep", action="store_true", help="print agreement and frames kept per min confidence"
    )
    ev.add_argument(
        "--sweep-plot", metavar="sweep.png", type=FIGURE, help="write the confidence-sweep plot"
    )
    ev.set_defaults(func=cmd_evaluate)


def cmd_import_text(args: argparse.Namespace) -> int:
    results = auroradask.import_text(
        args.paths,
        classes=args.classes.split(",") if args.classes else None,
        producer=args.producer,
    )
    files = json.loads(results.attrs["import_files"])
    days = np.unique(results["time"].values.astype("datetime64[D]"))
    print(
        f"{len(files)} files, {sum(f['rows'] for f in files)} rows: sites "
        f"{', '.join(map(str, results['site'].values))}; "
        f"{len(days)} UT days, {days[0]} to {days[-1]}"
    )
    print(f"producer: {results.attrs['model_file'] or '(none)'}")
    created = sorted(f["created"] for f in files if f.get("created"))
    if created:  # provenance: when the files were made (the published classifier says)
        print(f"files created {created[0]} to {created[-1]}")
    print(f"classes: {', '.join(f'{i}={c}' for i, c in enumerate(results['class'].values))}")
    summary = auroradask.to_zarr(
        results, args.out, group=args.group, progress=not getattr(args, "quiet", False)
    )
    print(
        f"wrote {summary.written} slots into {args.out}"
        + (f" ({summary.skipped} already there)" if summary.skipped else "")
    )
    print(
        "per class: " + (", ".join(f"{k} {v}" for k, v in summary.label_counts.items()) or "none")
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    results = auroradask.open_results(args.store, group=args.group)
    evaluation = auroradask.evaluate(
        results,
        args.truth,
        mapping=args.mapping,
        min_confidence=args.min_confidence,
        sheet=args.sheet,
    )
    evaluation.results["source"] = args.store
    print(evaluation.to_text())
    if args.sweep:
        print()
        print(evaluation.sweep().round(3).to_string(index=False, na_rep="-"))
    if args.out:
        evaluation.to_json(args.out)
        print(f"\nreport: {args.out}")
    if args.plot:
        evaluation.plot_confusion(args.plot)
        print(f"confusion plot: {args.plot}")
    if args.sweep_plot:
        evaluation.plot_sweep(args.sweep_plot)
        print(f"sweep plot: {args.sweep_plot}")
    return 0

"""auroradask: classify THEMIS all-sky camera frames on a Dask cluster, and analyse the results.

Subcommands: ``classify`` (sites × dates × model → Zarr store), ``info STORE`` and
``export-text STORE OUTDIR``. Every option maps to an argument of the Python API; this file
holds no logic the API lacks. Exit codes: 0 success; 2 bad arguments (argparse's, and the
API's ArgumentError, ModelError and StoreError: the request does not fit); 1 any other
failure (another AuroradaskError in one line; a bug with its traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext

import pandas as pd

import auroradask

from ..errors import (
    ArgumentError,
    AuroradaskError,
    ModelError,
    StoreError,
    StoreLockedError,
)
from . import analysis, batch, embed, evaluation, label, model, patches, visual
from .options import (
    BATCH_HELP,
    UsageError,
    add_cluster_options,
    add_frames_options,
    add_out,
    batch_size,
    check_required,
    configure_logging,
    existing_file,
    frames_request,
    non_negative_float,
    output_folder,
    output_store,
    print_summary,
    threads_for,
    worker_logging,
)

DEFAULT_OUT = "auroradask-results.zarr"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        raise UsageError(f"{self.prog}: {message}")


EPILOG = """\
Run "auroradask COMMAND --help" for a command's options. -v/-q work before or after the
command. Exit codes: 0 done; 2 bad arguments or a request that does not fit; 1 a failure
while running; 130 interrupted (run the same command again to resume)."""


def _verbosity_options(parser: argparse.ArgumentParser, default) -> None:
    """-v/-q on the top level (defaults) and on every subcommand (only when given)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="more messages: -v shows Dask's information, -vv debugging",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if default is argparse.SUPPRESS else False,
        help="errors and results only: no progress bar, no warnings",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="auroradask",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {auroradask.__version__}")
    _verbosity_options(parser, 0)
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )
    _add_classify(commands)
    _add_store_commands(commands)
    evaluation.add_commands(commands)
    analysis.add_commands(commands)
    patches.add_commands(commands)
    model.add_commands(commands)
    embed.add_commands(commands)
    visual.add_commands(commands)
    label.add_commands(commands)
    for command in _all_commands(commands):
        _verbosity_options(command, argparse.SUPPRESS)
    return parser


def _all_commands(commands: argparse._SubParsersAction):
    """Every command and sub-command (``model check`` too): -v/-q work anywhere."""
    for command in commands.choices.values():
        yield command
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from _all_commands(action)


def _add_classify(commands) -> None:
    run = commands.add_parser(
        "classify",
        help="classify the frames of sites and dates into a Zarr store",
        description="Classify THEMIS frames into a Zarr store. With no arguments: the bundled "
        "sample (gill, 2014-03-10 06:00-06:06 UT) with the demo model into "
        f"./{DEFAULT_OUT}.",
    )
    data = run.add_argument_group("data")
    add_frames_options(data, chunk_minutes=True)
    model = run.add_argument_group("model")
    model.add_argument(
        "--model", help="ONNX model with a model card (default: the bundled demo model)"
    )
    model.add_argument("--classes", help="comma-separated class names, overriding the card")
    model.add_argument(
        "--preset", help="preprocessing preset name, overriding the card (themis-pa, pfrr-pa)"
    )
    model.add_argument(
        "--skymaps",
        metavar="URL|PATH",
        help="skymap tree (<site>/<site>_YYYYMMDD/themis_skymap_*.sav): the skymap valid "
        "for each site and time; frames before a site's first skymap are an error",
    )
    model.add_argument(
        "--skymap",
        type=existing_file,
        help="elevation map: skymap .sav or .npy (default: an ideal fisheye circle)",
    )
    model.add_argument(
        "--batch-size",
        type=batch_size,
        default="auto",
        help=BATCH_HELP,
    )
    model.add_argument(
        "--providers", default="cpu", help="onnxruntime providers: cpu (default) or cuda"
    )
    output = run.add_argument_group("output")
    add_out(
        output,
        f"Zarr store path or URL (default ./{DEFAULT_OUT})",
        type=output_store,
        default=DEFAULT_OUT,
        required=False,
        old=(),
    )
    output.add_argument("--group", help="group inside the store (one per model)")
    output.add_argument(
        "--patch-counts",
        action="store_true",
        help="also store patch_count(site, time): auroral patches per frame, detected with "
        "auroradask patches' defaults in the same field of view (--skymap)",
    )
    output.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be read and written, and how long it would take at the rate "
        "measured on a few chunks here; write nothing",
    )
    output.add_argument(
        "--no-keogram",
        action="store_true",
        help="store no keogram (by default the zenith column of every frame is stored, "
        "0.5 kB a frame, for quicklooks without the archive; a store keeps the variables "
        "it was created with)",
    )
    cluster = run.add_argument_group("cluster")
    add_cluster_options(cluster)
    batch.add_options(cluster)
    cluster.add_argument(
        "--keep-dashboard",
        nargs="?",
        type=non_negative_float,
        const=float("inf"),
        metavar="SECONDS",
        help="keep the cluster and its dashboard up after the run, until Ctrl-C (or for "
        "SECONDS), to look at a short run",
    )
    run.set_defaults(func=cmd_classify)


def _add_store_commands(commands) -> None:
    info = commands.add_parser(
        "info",
        help="sites, time span, counts per class, provenance of a store",
        description="Describe a results store.",
    )
    info.add_argument("store", help="Zarr store path or URL")
    info.add_argument("--group", help="group inside the store")
    info.add_argument(
        "--json", action="store_true", help="print the description as JSON (for scripts)"
    )
    info.set_defaults(func=cmd_info)

    export = commands.add_parser(
        "export-text",
        help="one text file per site and UT day, as the published classifier wrote them",
        description="Write OUTDIR/YYYY/MM/DD/YYYYMMDD_<site>_classifications.txt files.",
    )
    export.add_argument("store", help="Zarr store path or URL")
    export.add_argument("outdir", nargs="?", type=output_folder, help=argparse.SUPPRESS)
    add_out(export, "folder to write into", type=output_folder, required=False, old=())
    export.add_argument("--group", help="group inside the store")
    export.set_defaults(func=cmd_export_text)

    upgrade = commands.add_parser(
        "upgrade",
        help="rewrite a first-release store in today's layout (one chunk per site-day)",
        description="Rewrite a store written by auroradask 0.1 in place, safely: the new store "
        "is written beside it and swapped in; a killed upgrade is finished by running it again.",
    )
    upgrade.add_argument("store", help="Zarr store path (local)")
    upgrade.add_argument("--group", help="group inside the store")
    upgrade.set_defaults(func=cmd_upgrade)


def _frames_request(args: argparse.Namespace) -> dict:
    try:
        return frames_request(args, "classify")
    except ArgumentError as error:  # a usage error: the options, not the data
        raise UsageError(str(error)) from None


def cmd_classify(args: argparse.Namespace) -> int:
    if args.dry_run and args.keep_dashboard:
        raise UsageError("classify: --dry-run starts no cluster, so --keep-dashboard has none")
    request = _frames_request(args)
    frames = auroradask.open_themis(
        request["source"],
        request["site"],
        request["start"],
        request["end"],
        chunk_minutes=args.chunk_minutes,
        cache=args.cache,
    )
    model = auroradask.load_model(
        args.model or auroradask.demo_model(),
        classes=args.classes.split(",") if args.classes else None,
        preset=args.preset,
        batch_size=args.batch_size,
        providers=args.providers,
    )
    if args.skymaps and args.skymap:
        raise UsageError("classify: give --skymap or --skymaps, not both")
    skymaps = auroradask.open_skymaps(args.skymaps, cache=args.cache) if args.skymaps else None
    keogram = not args.no_keogram
    if keogram and _store_lacks(args.out, args.group, "keogram"):
        # a store keeps the variables it was created with: continuing one made without a
        # keogram (before keograms, or with --no-keogram) must not fail on the default
        logging.getLogger("auroradask").warning(
            "%s keeps no keogram; classifying without one", args.out
        )
        keogram = False
    results = auroradask.classify(
        frames, model, elevation=args.skymap or "circle", skymaps=skymaps, keogram=keogram
    )
    if args.patch_counts:
        if skymaps is not None:
            raise UsageError("classify: --patch-counts takes one --skymap, not a --skymaps tree")
        skymap = args.skymap if args.skymap and args.skymap.endswith(".sav") else None
        counts = auroradask.patch_counts(frames, elevation=args.skymap, skymap=skymap)
        results = results.assign(patch_count=counts)
    if args.skymap or skymaps is not None:
        # reads up to 20 frames of each site: a flipped or wrong skymap is reported, not
        # silently used (an imager's own skymap always passes; another's may not)
        report = auroradask.check_skymap(
            frames, args.skymap or "circle", skymaps, raise_error=False
        )
        for site, result in report.items():
            if not result["ok"]:
                logging.getLogger("auroradask").warning(
                    "site %s: skymap %s does not line up with the frames' dark corners (%s "
                    "pixels disagree; %s it would be %s): flipped, turned or not this imager's",
                    site,
                    result["skymap"],
                    result["mismatch"],
                    result["best_other"],
                    result["best_other_mismatch"],
                )
    total = frames.sizes["site"] * frames.sizes["time"]
    print(
        f"{total} frame slots: {', '.join(frames['site'].values)}, "
        f"{pd.Timestamp(frames.time.values[0])} to {pd.Timestamp(frames.time.values[-1])} UT, "
        f"model {model.name}"
    )
    on_batch = batch.chosen(args)
    if args.dry_run:
        return batch.dry_run(results, args) if on_batch else _dry_run(results, args)

    if on_batch:
        client = batch.start_client(args, model)
    else:
        if args.threads_per_worker is None:
            args.threads_per_worker = threads_for(model, args)
        client = auroradask.start_client(
            args.scheduler,
            workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            memory_limit=args.memory_limit,
            dashboard_address=args.dashboard_address,
        )
    try:
        worker_logging(client, args.log_level)
        page = auroradask.dashboard_page(client)
        print(f"dashboard: {auroradask.dashboard_link(client) or 'none'}", flush=True)
        if page:
            print(f"auroradask page: {page}", flush=True)
        report = nullcontext()
        if args.performance_report:
            from distributed import performance_report

            report = performance_report(filename=args.performance_report)
        with report:
            summary = auroradask.to_zarr(
                results, args.out, group=args.group, progress=not args.quiet
            )
        print_summary(summary, args.out)
        if args.keep_dashboard:
            _keep_dashboard(page or auroradask.dashboard_link(client), args.keep_dashboard)
    finally:
        client.close()
    return 0


def _dry_run(results, args: argparse.Namespace) -> int:
    plan = auroradask.plan_write(results, args.out, group=args.group)
    if args.threads_per_worker is None:
        args.threads_per_worker = 1  # a big model's one worker × cores threads: the same total
    threads = args.threads_per_worker * (
        args.workers or max(1, (os.cpu_count() or 1) // args.threads_per_worker)
    )
    print("dry run: nothing is read beyond the measured chunks, nothing is written")
    print(
        f"store: {plan.store} ({'holds ' + str(plan.in_store) + ' of these slots' if plan.exists else 'new'})"
    )
    print(
        f"to do: {plan.to_do} of {plan.total} slots "
        + "("
        + ", ".join(f"{s} {n}" for s, n in plan.site_to_do.items())
        + "), "
        f"in at most {plan.minute_files} minute files"
    )
    seconds = plan.estimate_seconds(threads)
    if not plan.to_do:
        print("nothing to do: every slot is in the store already")
    elif seconds is None:
        print("time: not measured")
    else:
        where = "the scheduler's threads" if args.scheduler else f"{threads} threads"
        rate = plan.frames_per_second
        print(
            f"measured {plan.measured_chunks} of {plan.chunks_to_do} chunks on one thread, "
            f"spread over the request ({plan.measured_frames} frames in "
            f"{plan.measured_slots} slots, {plan.measured_seconds:.1f} s, model loading "
            "included"
            + (f"; {rate:.1f} frames/s where there are frames" if rate else "; no frame in them")
            + f"): about {_duration(seconds)} on {where}"
            + (" each" if args.scheduler else "")
        )
    return 0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m} min" if h else (f"{m} min {s} s" if m else f"{s} s")


def _keep_dashboard(link: str | None, seconds: float) -> None:
    forever = seconds == float("inf")
    try:  # the line inside: a Ctrl-C right after it is read still ends the wait normally
        print(
            f"dashboard kept open at {link or '(none)'} "
            + ("until Ctrl-C" if forever else f"for {seconds:g} s (Ctrl-C ends it sooner)"),
            flush=True,
        )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
    except KeyboardInterrupt:  # the run is done and written: this is the normal way out
        print("dashboard closed", flush=True)


def _store_lacks(store: str, group: str | None, name: str) -> bool:
    """Whether ``store`` exists and holds results without the variable ``name``."""
    try:
        return name not in auroradask.open_results(store, group=group).data_vars
    except (auroradask.SourceNotFoundError, auroradask.StoreError):
        return False  # no store yet, or one whose creation the write will finish first


def cmd_info(args: argparse.Namespace) -> int:
    info = auroradask.describe(auroradask.open_results(args.store, group=args.group))
    if args.json:
        print(json.dumps({"store": args.store, **info}, indent=2, default=str))
        return 0
    print(f"store: {args.store}")
    print(f"sites: {', '.join(info['sites'])}")
    print(f"time span written: {info['first']} to {info['last']} ({info['slots_written']} slots)")
    print("per class: " + ", ".join(f"{k} {v}" for k, v in info["label_counts"].items()))
    print("frame status: " + ", ".join(f"{k} {v}" for k, v in info["status_counts"].items()))
    for key, value in info["provenance"].items():
        print(f"{key}: {value}")
    return 0


def cmd_export_text(args: argparse.Namespace) -> int:
    if args.outdir is not None:  # the first release's positional OUTDIR
        print(
            "auroradask: export-text STORE OUTDIR is deprecated and goes in the next release; "
            "use -o/--out OUTDIR",
            file=sys.stderr,
        )
    out = args.out or args.outdir
    if out is None:
        raise UsageError("auroradask export-text: the following arguments are required: -o/--out")
    files = auroradask.export_text(auroradask.open_results(args.store, group=args.group), out)
    print(f"wrote {len(files)} files under {out}")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    summary = auroradask.upgrade_store(args.store, group=args.group)
    print(f"upgraded {args.store}: {summary.written} slots in chunks of one site-day")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.quiet and args.verbose:  # one on each side of the command: argparse allows it
            raise UsageError(f"{parser.prog}: -q/--quiet and -v/--verbose contradict each other")
        check_required(args)
        args.log_level = configure_logging(args.verbose, args.quiet)
        return args.func(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except (ArgumentError, ModelError, StoreError) as error:
        if isinstance(error, StoreLockedError):  # not the request's fault: try again later
            print(f"auroradask: {error}", file=sys.stderr)
            return 1
        print(f"auroradask: {error}".splitlines()[0], file=sys.stderr)
        return 2
    except AuroradaskError as error:  # a failure auroradask recognised: one line
        print(f"auroradask: failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("auroradask: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    # anything else is a bug: Python prints its traceback and exits 1


if __name__ == "__main__":
    sys.exit(main())

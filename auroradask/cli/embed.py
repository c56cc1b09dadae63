"""``auroradask embed``: what a model sees (any tensor of its graph) into a results store.

Thin over :func:`auroradask.embed` and :func:`auroradask.to_zarr`: the store holds the
results of ``classify`` plus ``embedding(site, time, feature)``, with the same rules
(resumable, one Zarr chunk per site-day). ``--list-layers`` prints the tensors that can be
named, without reading data. :func:`add_commands` adds the subcommand.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

import pandas as pd

import auroradask

from ..models._embed import EMBEDDING_DTYPES
from .options import (
    BATCH_HELP,
    UsageError,
    add_cluster_options,
    add_frames_options,
    add_out,
    batch_size,
    deprecated,
    existing_file,
    frames_request,
    output_store,
    print_summary,
    threads_for,
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``embed`` subcommand to ``commands``."""
    run = commands.add_parser(
        "embed",
        help="store what a model sees at a layer (and its labels) for heads and clusters",
        description="Classify frames and store the activations of one tensor of the model "
        "(averaged over its spatial axes when it is a feature map) as embedding(site, time, "
        "feature) beside the results, for auroradask.fit_head and auroradask.cluster. "
        "--list-layers prints the tensors that can be named. With no data options: the "
        "bundled sample (gill, 2014-03-10 06:00-06:06 UT).",
    )
    data = run.add_argument_group("data")
    add_frames_options(data, chunk_minutes=True)
    model = run.add_argument_group("model")
    model.add_argument("--model", help="ONNX model with a card (default: the bundled demo model)")
    model.add_argument(
        "--tensor", help="tensor of the graph to store (see --list-layers), e.g. /Concat_output_0"
    )
    deprecated(model, "--output", "--tensor", dest="tensor")
    model.add_argument(
        "--dtype", default="float16", choices=EMBEDDING_DTYPES, help="(default float16)"
    )
    model.add_argument(
        "--list-layers", action="store_true", help="print the tensors that can be named; no data"
    )
    model.add_argument(
        "--skymap",
        type=existing_file,
        help="elevation map: skymap .sav or .npy (default: a circle)",
    )
    model.add_argument("--skymaps", metavar="URL|PATH", help="skymap tree (as for classify)")
    model.add_argument("--batch-size", type=batch_size, default="auto", help=BATCH_HELP)
    model.add_argument("--providers", default="cpu", help="onnxruntime providers: cpu or cuda")
    output = run.add_argument_group("output")
    add_out(output, "Zarr store path or URL", type=output_store, required=False, old=())
    output.add_argument("--group", help="group inside the store")
    add_cluster_options(run.add_argument_group("cluster"))
    run.set_defaults(func=cmd_embed)


def cmd_embed(args: argparse.Namespace) -> int:
    model_path = args.model or auroradask.demo_model()
    if args.list_layers:
        layers = auroradask.embedding_layers(model_path)
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(layers.to_string(index=False))
        return 0
    missing = [
        flag for flag, n in (("--tensor", "tensor"), ("-o/--out", "out")) if not getattr(args, n)
    ]
    if missing:
        raise UsageError(f"embed: {' '.join(missing)} required (or --list-layers)")
    if args.skymaps and args.skymap:
        raise UsageError("embed: give --skymap or --skymaps, not both")
    request = frames_request(args, "embed")
    frames = auroradask.open_themis(
        request["source"],
        request["site"],
        request["start"],
        request["end"],
        chunk_minutes=args.chunk_minutes,
        cache=args.cache,
    )
    model = auroradask.load_model(model_path, batch_size=args.batch_size, providers=args.providers)
    skymaps = auroradask.open_skymaps(args.skymaps, cache=args.cache) if args.skymaps else None
    results = auroradask.embed(
        frames,
        model,
        output=args.tensor,
        dtype=args.dtype,
        elevation=args.skymap or "circle",
        skymaps=skymaps,
    )
    total = frames.sizes["site"] * frames.sizes["time"]
    print(
        f"{total} frame slots, model {model.name}, layer {args.tensor} "
        f"({results.sizes['feature']} features, {args.dtype})"
    )
    client = auroradask.start_client(
        args.scheduler,
        workers=args.workers,
        threads_per_worker=(
            args.threads_per_worker
            if args.threads_per_worker is not None
            else threads_for(model, args)
        ),
        memory_limit=args.memory_limit,
        dashboard_address=args.dashboard_address,
    )
    try:
        print(f"dashboard: {auroradask.dashboard_link(client) or 'none'}", flush=True)
        report = nullcontext()
        if args.performance_report:
            from distributed import performance_report

            report = performance_report(filename=args.performance_report)
        with report:
            summary = auroradask.to_zarr(
                results, args.out, group=args.group, progress=not getattr(args, "quiet", False)
            )
    finally:
        client.close()
    print_summary(summary, args.out)
    return 0

"""``model convert|check|quantize``: bring a PyTorch, Keras or TensorFlow model, with numbers.

Thin over :func:`auroradask.convert_model`, :func:`auroradask.check_model` and
:func:`auroradask.quantize_model`; :func:`add_commands` adds ``auroradask model ...``.
Frames come from a stream0 archive (``SOURCE --site --start --end``; without --site and
--start, the first hour the archive holds when its first day holds one site) or, by default,
the bundled sample.
"""

from __future__ import annotations

import argparse

import pandas as pd

import auroradask

from ..errors import ArgumentError
from ..models._compare import source_frames
from ..models._convert import CONVERT_TOLERANCE
from .options import (
    BATCH_HELP,
    add_frames_options,
    add_out,
    batch_size,
    deprecated,
    existing_file,
    output_file,
    positive_int,
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``model`` subcommand (``convert``, ``check``, ``quantize``) to ``commands``."""
    model = commands.add_parser(
        "model",
        help="convert a PyTorch/Keras/TensorFlow model to ONNX, check it, quantise it to int8",
        description="Bring your own model: convert it to ONNX with its model card, check it "
        "on real frames, quantise it to int8; each step reports what changed.",
    )
    actions = model.add_subparsers(dest="model_command", required=True, parser_class=type(model))

    convert = actions.add_parser(
        "convert",
        help="PyTorch / Keras / TensorFlow model → ONNX with its card, checked for agreement",
        description="Convert SRC to ONNX, write the model card into it, run SRC and the ONNX "
        "model on the same preprocessed frames, and refuse to write a model whose "
        "probabilities differ by more than --tolerance (unless --force). SRC: a TorchScript "
        "file (.pt/.pth/.ts), a torch.export file (.pt2), module:callable or file.py:callable "
        "building a torch.nn.Module, a Keras .keras/.h5 file, or a TensorFlow SavedModel folder.",
    )
    convert.add_argument("src", help="the source model")
    add_out(
        convert, "the ONNX model to write", type=output_file(".onnx"), metavar="model.onnx", old=()
    )
    convert.add_argument(
        "--classes", required=True, help="comma-separated class names, in output order"
    )
    convert.add_argument("--preset", default="themis-pa", help="preprocessing preset (themis-pa)")
    convert.add_argument(
        "--layout",
        choices=("NCHW", "NHWC"),
        help="the input layout SRC takes (default: NCHW for PyTorch, NHWC for Keras/TF)",
    )
    convert.add_argument(
        "--logits", action="store_true", help="SRC outputs logits (no final softmax)"
    )
    convert.add_argument("--description", default="", help="free text for the model card")
    convert.add_argument(
        "--tolerance",
        type=float,
        default=CONVERT_TOLERANCE,
        help=f"largest accepted probability difference (default {CONVERT_TOLERANCE:g})",
    )
    convert.add_argument(
        "--force", action="store_true", help="write the model even if it disagrees"
    )
    convert.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    _add_frames_options(convert, "--frames", "frames to compare on")
    convert.set_defaults(func=cmd_convert)

    check = actions.add_parser(
        "check",
        help="card, graph inputs/outputs, preset, frames/s per core, label counts",
        description="Describe MODEL and run it on real frames (default: the bundled sample).",
    )
    check.add_argument("model", help="ONNX model")
    check.add_argument("--classes", help="comma-separated class names, overriding the card")
    check.add_argument("--preset", help="preprocessing preset, overriding the card")
    check.add_argument("--batch-size", type=batch_size, default="auto", help=BATCH_HELP)
    check.add_argument("--repeats", type=positive_int, default=3, help="timed runs, best kept (3)")
    _add_frames_options(check, "--frames", "frames to run on")
    check.set_defaults(func=cmd_check)

    quantize = actions.add_parser(
        "quantize",
        help="static int8 quantisation calibrated on real frames, checked on held-out frames",
        description="Quantise MODEL to int8 (onnxruntime static QDQ, per-channel weights), "
        "calibrated on the first --frames valid frames of the calibration source; report "
        "label agreement, largest probability difference and speed ratio on the others.",
    )
    quantize.add_argument("model", help="float ONNX model with a card")
    add_out(
        quantize,
        "the int8 model to write",
        type=output_file(".onnx"),
        metavar="model-int8.onnx",
        old=(),
    )
    quantize.add_argument(
        "--calibration-frames",
        dest="n_frames",
        type=positive_int,
        default=40,
        help="calibration frames, the first valid ones in time (default 40)",
    )
    deprecated(quantize, "--frames", "--calibration-frames", dest="n_frames", type=positive_int)
    quantize.add_argument(
        "--repeats", type=positive_int, default=3, help="timed runs, best kept (3)"
    )
    _add_frames_options(quantize, "--calibration", "frames to calibrate and compare on")
    quantize.set_defaults(func=cmd_quantize)


def _add_frames_options(parser, old: str, what: str) -> None:
    """The frames a model command runs on: ``--source`` as everywhere (``old``, the first
    release's spelling, is a deprecated alias)."""
    group = parser.add_argument_group("frames")
    add_frames_options(
        group,
        source_help=f"{what}: stream0 root, local path or fsspec URL (default: the bundled "
        "sample, 120 real frames); without --site/--start, the first hour of frames it holds "
        "when its first day holds one site",
    )
    deprecated(group, old, "--source", dest="source")
    group.add_argument(
        "--skymap",
        type=existing_file,
        help="elevation map: skymap .sav or .npy (default: an ideal fisheye circle)",
    )


def _frames(args: argparse.Namespace, flag: str):
    if args.source is None:
        if args.site or args.start or args.end:
            raise ArgumentError(f"{flag[2:]}: --site/--start/--end need a source (--source)")
        return None
    frames = source_frames(
        args.source, args.site, args.start, args.end, cache=args.cache, what=flag[2:]
    )
    if not (args.site and args.start):  # found in the source: say what
        times = frames["time"].values
        print(
            f"{flag[2:]}: {', '.join(map(str, frames['site'].values))}, "
            f"{pd.Timestamp(times[0]):%Y-%m-%d %H:%M} to "
            f"{pd.Timestamp(times[-1]) + pd.Timedelta(seconds=3):%Y-%m-%d %H:%M} UT "
            f"(what {args.source} holds first)"
        )
    return frames


def cmd_convert(args: argparse.Namespace) -> int:
    report = auroradask.convert_model(
        args.src,
        args.out,
        classes=args.classes.split(","),
        preset=args.preset,
        layout=args.layout,
        outputs="logits" if args.logits else "probabilities",
        description=args.description,
        frames=_frames(args, "--frames"),
        elevation=args.skymap or "circle",
        tolerance=args.tolerance,
        force=args.force,
        opset=args.opset,
    )
    print(report.summary())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    report = auroradask.check_model(
        args.model,
        _frames(args, "--frames"),
        elevation=args.skymap or "circle",
        batch_size=args.batch_size,
        repeats=args.repeats,
        classes=args.classes.split(",") if args.classes else None,
        preset=args.preset,
    )
    print(report.summary())
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    report = auroradask.quantize_model(
        args.model,
        args.out,
        calibration=_frames(args, "--calibration"),
        calibration_frames=args.n_frames,
        elevation=args.skymap or "circle",
        repeats=args.repeats,
    )
    print(report.summary())
    return 0

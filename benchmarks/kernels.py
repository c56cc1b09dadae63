"""``python -m benchmarks.kernels [--json FILE]``: per-frame cost of reading and preprocessing,
new kernels against the ones they replaced, measured in the same process (issue 16).

- **preprocess**: ``preprocess_frames`` (compiled kernel, one channel as the model stage uses it,
  and three channels) against ``_preprocess_frames_reference`` (the numpy kernel it replaced) on
  the bundled real frames, one thread; outputs are checked equal.
- **preprocess, issue 32**: the same one-channel call with the compiled kernel as it was before
  issue 32 (``_clahe_numba.py`` of commit ``b6098e7``, loaded from git and swapped in for the
  measurement) against today's,
  interleaved (before, after, before, after, ...) so that a change in the machine's load hits
  both; outputs are checked equal.
- **read**: ``read_minute_file`` (ISA-L inflate, one-pass byte swap) against the reader of commit
  ``1cb21ea`` (zlib, before issue 16), loaded from git, on the bundled gzip minute files.
- **read, in parts** (issue 32): the same files' inflate alone, through ISA-L exactly as
  ``decompress`` calls it and through the standard library's zlib, and the parsing and byte
  swap of the inflated bytes alone (``parse_frames``): what a faster reader could still win
  without a faster inflate.
- **first call**: the compiled kernel's first call in a fresh process (loads the cached machine
  code, or compiles it where there is no cache yet).

Times are CPU seconds of this process (``time.process_time``), the best of ``--repeats``: on a
shared machine they move less than wall time. Takes about a minute.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

import auroradask
import auroradask.preprocessing._clahe_numba as clahe_numba
from auroradask.io._stream0 import decompress, parse_frames, read_minute_file
from auroradask.preprocessing._preprocess import (
    _preprocess_frames_reference,
    field_of_view,
    get_preset,
    preprocess_frames,
)
from auroradask.skymaps._skymap import circle_elevation

from ._machine import describe_machine, format_machine

BEFORE = "1cb21ea"  # main before issue 16
BEFORE_ISSUE32 = "b6098e7"  # main before issue 32's kernel change


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _interleaved(before, after, repeats: int) -> tuple[float, float]:
    """The best CPU seconds of ``before`` and of ``after``, run alternately ``repeats`` times."""
    best_before = best_after = float("inf")
    for _ in range(repeats):
        best_before = min(best_before, _best(before, 1))
        best_after = min(best_after, _best(after, 1))
    return best_before, best_after


def _git_module(commit: str, path: str, name: str, replace=()):
    """The module at ``path`` as it was at ``commit``, imported as ``name``; None without git."""
    root = Path(__file__).parent.parent
    try:
        source = subprocess.run(
            ["git", "show", f"{commit}:{path}"],
            cwd=root,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for old, new in replace:
        source = source.replace(old, new)
    path = Path(auroradask.__file__).parent / "io" / f"{name.rsplit('.', 1)[-1]}.py"
    path.write_text(source)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        path.unlink()
    return module


def _with_kernel(kernel, fn):
    """``fn`` run with ``kernel`` in place of today's compiled preprocessing kernel."""
    current = clahe_numba.clahe_u8_masked_stack
    clahe_numba.clahe_u8_masked_stack = kernel
    try:
        return fn()
    finally:
        clahe_numba.clahe_u8_masked_stack = current


def _previous_reader():
    """``read_minute_file`` as it was at :data:`BEFORE`, or None without git."""
    # it lived at the package's top; its neighbours have since moved into rooms (io/, ...)
    module = _git_module(
        BEFORE,
        "auroradask/_frames.py",
        "auroradask.io._frames_before_issue16",
        replace=[("from ._schema", "from .._schema"), ("from .errors", "from ..errors")],
    )
    return None if module is None else module.read_minute_file


def _previous_kernel():
    """The compiled kernel as it was at :data:`BEFORE_ISSUE32` (no numba cache), or None."""
    module = _git_module(
        BEFORE_ISSUE32,
        "auroradask/preprocessing/_clahe_numba.py",
        "auroradask.io._clahe_before_issue32",
        replace=[("@njit(cache=True, ", "@njit(")],
    )
    return None if module is None else module.clahe_u8_masked_stack


def read_parts(raw: list[tuple[bytes, str]], frames: int, repeats: int) -> dict[str, float]:
    """ms a frame of the reader's inflate (ISA-L, and zlib for comparison) and of its parsing
    and byte swap, apart: the inflate is the floor under any reader change that keeps it."""
    inflated = [decompress(r, f)[0] for r, f in raw]
    assert all(zlib.decompress(r, wbits=31) == d for (r, _), d in zip(raw, inflated, strict=True))
    return {
        "read_inflate_isal_ms": 1000
        * _best(lambda: [decompress(r, f) for r, f in raw], repeats)
        / frames,
        "read_inflate_zlib_ms": 1000
        * _best(lambda: [zlib.decompress(r, wbits=31) for r, _ in raw], repeats)
        / frames,
        "read_parse_ms": 1000
        * _best(lambda: [parse_frames(d) for d in inflated], repeats)
        / frames,
    }


def first_call_seconds() -> float:
    """The compiled kernel's first call, in a fresh process."""
    code = (
        "import time, numpy as np; from auroradask.preprocessing._preprocess import preprocess_frames, "
        "get_preset; f = np.zeros((1, 256, 256), np.uint16); f[0, 100:150] = 500; "
        "t = time.perf_counter(); preprocess_frames(f, np.ones((256, 256), bool), "
        "get_preset('themis-pa')); print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the records to this file")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    machine = describe_machine()
    print(format_machine(machine))
    first = first_call_seconds()
    files = sorted(
        glob.glob(os.path.join(auroradask.sample_archive(), "**", "*.pgm.gz"), recursive=True)
    )
    raw = [(Path(f).read_bytes(), f) for f in files]
    frames = np.concatenate([read_minute_file(r, f).images for r, f in raw])
    fov = field_of_view(circle_elevation(), 15)
    preset = get_preset("themis-pa")
    n = len(frames)
    new1 = preprocess_frames(frames, fov, preset, channels=1)
    new3 = preprocess_frames(frames, fov, preset)
    old = _preprocess_frames_reference(frames, fov, preset)
    assert np.array_equal(new3, old) and np.array_equal(np.broadcast_to(new1, old.shape), old)
    records = {
        "frames": n,
        "preprocess_numpy_ms": 1000
        * _best(lambda: _preprocess_frames_reference(frames, fov, preset), args.repeats)
        / n,
        "preprocess_compiled_3ch_ms": 1000
        * _best(lambda: preprocess_frames(frames, fov, preset), args.repeats)
        / n,
        "preprocess_compiled_1ch_ms": 1000
        * _best(lambda: preprocess_frames(frames, fov, preset, channels=1), args.repeats)
        / n,
        "first_call_s": first,
    }

    def one_channel():
        return preprocess_frames(frames, fov, preset, channels=1)

    previous_kernel = _previous_kernel()
    if previous_kernel is not None:
        assert np.array_equal(_with_kernel(previous_kernel, one_channel), new1)
        before, after = _interleaved(
            lambda: _with_kernel(previous_kernel, one_channel), one_channel, args.repeats
        )
        records["preprocess_before_issue32_1ch_ms"] = 1000 * before / n
        records["preprocess_after_issue32_1ch_ms"] = 1000 * after / n
        records["preprocess_ratio_issue32"] = before / after
    records["preprocess_ratio_3ch"] = (
        records["preprocess_numpy_ms"] / records["preprocess_compiled_3ch_ms"]
    )
    records["preprocess_ratio_1ch"] = (
        records["preprocess_numpy_ms"] / records["preprocess_compiled_1ch_ms"]
    )
    previous = _previous_reader()
    records["read_ms"] = (
        1000 * _best(lambda: [read_minute_file(r, f) for r, f in raw], args.repeats) / n
    )
    if previous is not None:
        for r, f in raw:
            a, b = read_minute_file(r, f), previous(r, f)
            assert np.array_equal(a.images, b.images) and a.problem == b.problem
        records["read_before_ms"] = (
            1000 * _best(lambda: [previous(r, f) for r, f in raw], args.repeats) / n
        )
        records["read_ratio"] = records["read_before_ms"] / records["read_ms"]
    records.update(read_parts(raw, n, args.repeats))
    records = {k: round(v, 3) if isinstance(v, float) else v for k, v in records.items()}
    for key, value in records.items():
        print(f"{key:<28} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, **records}, indent=1))


if __name__ == "__main__":
    main()

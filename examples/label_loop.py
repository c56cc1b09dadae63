"""The labelling loop: label an hour in the page, evaluate the model against it, fit a head.

1. classify (with ``embed``: the model's labels and its penultimate layer in one pass) whole
   UT days into one store, with the keogram, so that sheet frame numbers count;
2. ``label_page``: one self-contained page per night, to open from disk and label in;
3. the labels: here a **stand-in labeller** writes the sheet the page would save (with
   :func:`auroradask.label_sheet`, the same numbers and times): an hour a night, each minute
   called ``other_aurora`` where the zenith is brighter than the hour's median, ``no_aurora``
   otherwise. Give ``--truth`` the sheets you saved from the pages instead;
4. ``evaluate`` the model against the labels;
5. ``fit_head``: a ridge head on the embeddings of the labelled frames, cross-validated with
   whole nights held out, written as one ONNX model that ``classify`` runs.

Without ``--source`` it writes two nights (an hour each, gill, 2014-03-10 and -11 06-07 UT)
of the bundled real frames cycled (``tests/support/archive.py``) under ``--out`` (default
``auroradask-figures/label-loop``)::

    python examples/label_loop.py --out /tmp/label-loop
    python examples/label_loop.py --source /data/themis/stream0 --site gill \\
        --night 2014-03-09 --night 2014-03-10 --truth a.csv --truth b.csv --out /tmp/gill

The demo model was trained on a synthetic sky, not on real frames: it calls the sample's
cloudy frames ``bad_viewing``, so its agreement with a labeller's aurora classes is nil.
That is what the loop is for: the head learns the labeller's classes from the same network.
(The two generated nights are the same six real minutes cycled, so their cross-validated
accuracy, 1.000, only shows that the loop runs; real nights measure generalisation.)

It ran in 80 s on the shared 2-core development machine (load 4-5), archive included; the
pages are 10.7 MB each (an hour, every frame a thumbnail).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import auroradask

LAYER = "/Concat_output_0"  # the demo model's penultimate layer (96 features)
HOUR = ("06:00", "07:00")  # the hour the stand-in labels, UT


def generated_archive(work: Path) -> tuple[str, str, list[str]]:
    """Two nights of gill, 06-07 UT, made from the bundled minutes (about 240 MB)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.archive import make_archive

    root = work / "stream0"
    for day in ("2014-03-10", "2014-03-11"):
        make_archive(root, ["gill"], f"{day}T{HOUR[0]}", hours=1)
    return str(root), "gill", ["2014-03-09", "2014-03-10"]


def stand_in_sheet(store: str, site: str, nights: list[str]) -> pd.DataFrame:
    """What a labeller might save: minute by minute, bright zenith or not (see the top)."""
    results = auroradask.open_results(store)
    sheets = []
    for night in nights:
        day = pd.Timestamp(night) + pd.Timedelta(days=1)
        start, end = (day + pd.Timedelta(f"{h}:00") for h in HOUR)
        keo = results["keogram"].sel(site=site, time=slice(start, end - pd.Timedelta("3s")))
        zenith = keo.isel(keogram_row=slice(96, 160)).mean("keogram_row").to_series()
        zenith = zenith[zenith > 0]  # slots without a frame are zeros
        minute = zenith.groupby(zenith.index.floor("1min")).mean()
        bright = minute > minute.median()
        intervals = [
            (t, t + pd.Timedelta("57s"), "other_aurora" if b else "no_aurora")
            for t, b in bright.items()
        ]
        sheets.append(auroradask.label_sheet(store, site, intervals, labeller="stand-in"))
    sheet = pd.concat(sheets, ignore_index=True)
    # neighbouring minutes of one class are one interval, as the page saves them
    run = (
        (sheet["Classification"] != sheet["Classification"].shift())
        | (sheet["Date"] != sheet["Date"].shift())
        | (sheet["Start frame"] != sheet["End frame"].shift() + 1)
    ).cumsum()
    return sheet.groupby(run).agg(
        {
            "Station": "first",
            "Date": "first",
            "Start frame": "first",
            "End frame": "last",
            "Start UT": "first",
            "End UT": "last",
            "Classification": "first",
            "Labeller": "first",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="stream0 archive (default: two generated nights)")
    parser.add_argument("--site", help="site code (with --source)")
    parser.add_argument("--night", action="append", help="night (YYYY-MM-DD), repeatable")
    parser.add_argument("--truth", action="append", help="sheets saved from the pages")
    parser.add_argument("--model", default=auroradask.demo_model())
    parser.add_argument("--layer", default=LAYER, help="tensor to embed (embedding_layers)")
    parser.add_argument(
        "-o", "--out", "--workdir", default="auroradask-figures/label-loop", help="output folder"
    )
    args = parser.parse_args()
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    if args.source:
        if not (args.site and args.night):
            parser.error("--source needs --site and --night")
        source, site, nights = args.source, args.site, args.night
    else:
        source, site, nights = generated_archive(work)
        print(f"no --source: two hours of the bundled frames, cycled, under {source}")

    # 1. whole UT days of the nights: the model's labels, embeddings and keogram, one pass
    first = pd.Timestamp(min(nights)) + pd.Timedelta(days=1)
    last = pd.Timestamp(max(nights)) + pd.Timedelta(days=1)
    frames = auroradask.open_themis(source, site, f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}")
    embedded = auroradask.embed(frames, args.model, output=args.layer)
    embedded["keogram"] = auroradask.keogram(frames).drop_vars(["pixel_row", "pixel_col"])
    store = os.fspath(work / "results.zarr")
    summary = auroradask.to_zarr(embedded, store)
    done = summary.status_counts.get("ok", 0)
    print(
        f"classified and embedded {done} frames -> {store} ({summary.skipped} slots there already)"
    )

    # 2. a page per night: open it from disk, drag on the keogram, press 1-9, save
    for night in nights:
        info = auroradask.label_page(
            store, site, night, out=work / f"{site}_{night}.html", archive=source
        )
        print(f"page: {info}")

    # 3. the labels: your saved sheets, or the stand-in's
    if args.truth:
        truth = pd.concat([pd.read_csv(t, dtype=str) for t in args.truth], ignore_index=True)
    else:
        truth = stand_in_sheet(store, site, nights)
        print(f"stand-in labeller: {len(truth)} intervals over an hour a night")
    sheet = work / "labels.csv"
    truth.to_csv(sheet, index=False)

    # 4. the model against the labels
    evaluation = auroradask.evaluate(store, sheet)
    print(f"\nthe model against the labels ({sheet}):")
    print(evaluation.to_text())

    # 5. a head that learns the labeller's classes from the model's embeddings
    head = os.fspath(work / "head.onnx")
    fit = auroradask.fit_head(store, sheet, kind="ridge", path=head)
    print()
    print(fit.summary())
    print(f"head -> {head} (auroradask classify --model {head})")
    chance = np.bincount(fit.frames["truth"]).max() / len(fit.frames)
    print(f"(the most common class alone would score {chance:.3f})")
    if not args.source:
        print(
            "the two generated nights are the same six real minutes cycled: a night held out "
            "is one the head has seen, so this accuracy shows the loop runs, not that it "
            "generalises; label real nights for that"
        )


if __name__ == "__main__":
    main()
